"""The dashboard in a real browser: Debian's chromium, driven by Selenium through the system's
chromedriver (nothing downloads a browser or a driver), against a real `trainforge serve` with
access keys configured, real containers and moto's S3. One server and three jobs for the module:
one completed (metric lines and an XSS line), one failed, one running until the page stops it.
Each test saves a screenshot under test-artifacts/ui/."""

from __future__ import annotations

import io
import json
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.server_support import RunningServer, start_server, wait_for_job
from tests.support import job_request, unique_name

pytestmark = pytest.mark.docker

KEY_ID, SECRET = "ui-tester", "ui-tester-secret"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
XSS = "<script>alert(1)</script>"
DEFINITIONS = [{"Name": "train:loss", "Regex": "loss=([0-9.]+)"}]
COMPLETES = f"echo 'loss=0.9'; sleep 1; echo 'loss=0.5'; echo '{XSS}'; sleep 1; echo 'loss=0.25'"
FAILS = "echo 'about to fail'; echo 'boom: bad input' > /opt/ml/output/failure; exit 3"
# Prints a numbered line every 0.3 s until SIGTERM, then saves its model and exits 0.
RUNS = (
    "trap 'echo saved > /opt/ml/model/saved.txt; echo stopping; exit 0' TERM; i=0; "
    "while true; do i=$((i+1)); echo tick-$i loss=$i; sleep 0.3; done"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("ui-home")
    running = start_server(
        home,
        TRAINFORGE_ACCESS_KEYS=f"{KEY_ID}:{SECRET}",
        TRAINFORGE_INSTANCE_METRICS_SECONDS="1",
        TRAINFORGE_STOP_GRACE_SECONDS="10",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sm(server: RunningServer) -> Any:
    return boto3.client(
        "sagemaker",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def jobs(sm: Any, s3_endpoint: str, images: dict[str, str]) -> dict[str, str]:
    """Three jobs: completed, failed and running (the running one still running)."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"tf-ui-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    names = {}
    for kind, script in (("done", COMPLETES), ("failed", FAILS), ("running", RUNS)):
        request = job_request(
            images["busybox"],
            f"s3://{bucket}/out",
            name=unique_name(f"ui-{kind}"),
            entrypoint=["/bin/sh", "-c", script],
            HyperParameters={"lr": "0.01" if kind == "done" else "0.1", "epochs": "3"},
        )
        request["AlgorithmSpecification"]["MetricDefinitions"] = DEFINITIONS
        sm.create_training_job(**request)
        names[kind] = request["TrainingJobName"]
    assert wait_for_job(sm, names["done"])["TrainingJobStatus"] == "Completed"
    assert wait_for_job(sm, names["failed"])["TrainingJobStatus"] == "Failed"
    wait_for_job(sm, names["running"], statuses=("InProgress",))
    names["bucket"] = bucket
    return names


def _chrome() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1500",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(
        service=Service(executable_path="/usr/bin/chromedriver"), options=options
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with pytest.MonkeyPatch.context() as mp:
        # Selenium Manager must not run: the driver's path is given, and it may not go online.
        mp.setenv("SE_OFFLINE", "true")
        driver = _chrome()
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture
def signed_in(browser: WebDriver, server: RunningServer) -> WebDriver:
    """The browser with a session: each test stands alone, whichever ran before it."""
    browser.get(server.url + "/ui/login")
    if browser.get_cookie("trainforge_ui") is None:
        _login(browser, server, KEY_ID, SECRET)
        _wait(browser, lambda d: d.get_cookie("trainforge_ui") is not None)
    return browser


@pytest.fixture
def shot(browser: WebDriver, request: pytest.FixtureRequest) -> Iterator[None]:
    """A screenshot of the page as the test left it, passed or failed."""
    yield
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))


def _wait(driver: WebDriver, what: Callable[[WebDriver], Any], timeout: float = 30) -> Any:
    # A page redraws what it shows as it refreshes: an element gone stale is looked up again.
    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(what)


def _click(driver: WebDriver, css: str) -> None:
    """Click what ``css`` finds, again if the page redrew it in between."""

    def click(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    WebDriverWait(
        driver, 30, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(click)


def _login(driver: WebDriver, server: RunningServer, key_id: str, secret: str) -> None:
    driver.get(server.url + "/ui/login")
    driver.find_element(By.ID, "access_key_id").send_keys(key_id)
    driver.find_element(By.ID, "secret_access_key").send_keys(secret)
    driver.find_element(By.ID, "submit").click()


def test_login_is_required_and_refuses_wrong_keys(
    server: RunningServer, jobs: dict[str, str], browser: WebDriver, shot: None
) -> None:
    # No session: the page sends the browser to the login, the data answers 401 and no job.
    browser.get(server.url + "/ui/login")
    browser.delete_all_cookies()
    browser.get(server.url + "/ui/")
    _wait(browser, lambda d: "/ui/login" in d.current_url)
    done = jobs["done"]
    for method, path in (
        ("GET", "/ui/api/jobs"),
        ("GET", "/ui/api/session"),
        ("GET", f"/ui/api/jobs/{done}"),
        ("GET", f"/ui/api/jobs/{done}/logs"),
        ("GET", f"/ui/api/jobs/{done}/metrics"),
        ("POST", f"/ui/api/jobs/{jobs['running']}/stop"),
    ):
        request = urllib.request.Request(
            server.url + path, data=b"{}" if method == "POST" else None, method=method
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401, path
        assert done.encode() not in refused.value.read(), path

    _login(browser, server, KEY_ID, "not-the-secret")
    _wait(browser, lambda d: d.find_element(By.ID, "failed").is_displayed())
    assert browser.get_cookie("trainforge_ui") is None

    _login(browser, server, KEY_ID, SECRET)
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-name="{jobs["done"]}"]'))
    cookie = browser.get_cookie("trainforge_ui")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"


def test_list_shows_jobs_in_their_states_and_filters(
    server: RunningServer, jobs: dict[str, str], signed_in: WebDriver, shot: None
) -> None:
    browser = signed_in
    browser.get(server.url + "/ui/")

    def states(d: WebDriver) -> dict[str, str]:
        # Read in one go: the page redraws its rows while a job runs.
        return dict(
            d.execute_script(
                "return [...document.querySelectorAll('#jobs tbody tr[data-name]')]"
                ".map(r => [r.dataset.name, r.dataset.status])"
            )
        )

    wanted = {jobs["done"]: "Completed", jobs["failed"]: "Failed", jobs["running"]: "InProgress"}
    _wait(browser, lambda d: states(d) == wanted)
    row = browser.execute_script(
        "return document.querySelector(arguments[0]).textContent",
        f'tr[data-name="{jobs["running"]}"]',
    )
    assert "ml.m5.large \u00d7 1" in row

    Select(browser.find_element(By.ID, "status")).select_by_visible_text("Failed")
    _wait(browser, lambda d: states(d) == {jobs["failed"]: "Failed"})
    Select(browser.find_element(By.ID, "status")).select_by_visible_text("All")
    browser.find_element(By.ID, "search").send_keys(jobs["done"])
    _wait(browser, lambda d: states(d) == {jobs["done"]: "Completed"})


def _log_lines(driver: WebDriver) -> list[str]:
    return [
        str(t)
        for t in driver.execute_script(
            "return [...document.querySelectorAll('#log .line')].map(e => e.textContent)"
        )
    ]


def test_a_running_job_shows_new_log_lines_as_they_come(
    server: RunningServer, jobs: dict[str, str], signed_in: WebDriver, shot: None
) -> None:
    browser = signed_in
    browser.get(f"{server.url}/ui/jobs/{jobs['running']}")
    first = _wait(browser, lambda d: [line for line in _log_lines(d) if "tick-" in line])
    seen = max(int(line.split("tick-")[1].split()[0]) for line in first)
    # Without a reload, lines printed after the page opened appear.
    _wait(browser, lambda d: any(f"tick-{seen + 3} " in line for line in _log_lines(d)))
    assert browser.find_element(By.ID, "stop").is_displayed()
    assert all("algo-1" in line for line in _log_lines(browser))


def test_a_chart_holds_the_jobs_metric_points(
    server: RunningServer, jobs: dict[str, str], signed_in: WebDriver, shot: None
) -> None:
    browser = signed_in
    browser.get(f"{server.url}/ui/jobs/{jobs['done']}")
    chart = '.chart[data-metric="train:loss"] svg'
    svg = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, chart))[0]
    assert svg.get_attribute("data-points") == "3"
    assert len(svg.find_elements(By.TAG_NAME, "circle")) == 3
    summary = browser.find_element(By.ID, "summary").text
    assert "lr=0.01" in summary
    assert f"s3://{jobs['bucket']}/out/{jobs['done']}/output/model.tar.gz" in summary


def test_a_script_log_line_shows_as_text(
    server: RunningServer, jobs: dict[str, str], signed_in: WebDriver, shot: None
) -> None:
    browser = signed_in
    browser.get(f"{server.url}/ui/jobs/{jobs['done']}")
    _wait(browser, lambda d: any(XSS in line for line in _log_lines(d)))
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    scripts = browser.execute_script(
        "return [...document.scripts].filter(s => s.textContent.includes('alert(1)')).length"
    )
    assert scripts == 0


def test_a_failed_job_shows_its_failure_reason(
    server: RunningServer, jobs: dict[str, str], signed_in: WebDriver, shot: None
) -> None:
    browser = signed_in
    browser.get(f"{server.url}/ui/jobs/{jobs['failed']}")
    failure = _wait(
        browser,
        lambda d: (
            d.find_element(By.ID, "failure").is_displayed() and d.find_element(By.ID, "failure")
        ),
    )
    assert "boom: bad input" in failure.text
    assert not browser.find_element(By.ID, "stop").is_displayed()


def test_stop_from_the_page_ends_stopped_with_artifacts(
    server: RunningServer,
    jobs: dict[str, str],
    sm: Any,
    s3_endpoint: str,
    signed_in: WebDriver,
    shot: None,
) -> None:
    browser = signed_in
    name = jobs["running"]
    # The page's Stop needs the session's CSRF token: a bare POST with the cookie is refused.
    cookie = browser.get_cookie("trainforge_ui")
    assert cookie is not None
    forged = urllib.request.Request(
        f"{server.url}/ui/api/jobs/{name}/stop",
        data=b"{}",
        method="POST",
        headers={"Cookie": f"trainforge_ui={cookie['value']}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    assert refused.value.code == 403

    browser.get(f"{server.url}/ui/jobs/{name}")
    button = _wait(
        browser,
        lambda d: d.find_element(By.ID, "stop").is_displayed() and d.find_element(By.ID, "stop"),
    )
    button.click()
    alert = _wait(browser, lambda d: d.switch_to.alert)
    assert name in alert.text
    alert.dismiss()  # asked, and declined: nothing happens
    time.sleep(0.5)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
    button.click()
    _wait(browser, lambda d: d.switch_to.alert).accept()

    described = wait_for_job(sm, name)
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "Stopped"
    _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#status .status").text == "Stopped")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    body = s3.get_object(Bucket=jobs["bucket"], Key=f"out/{name}/output/model.tar.gz")[
        "Body"
    ].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        saved = archive.extractfile("saved.txt")
        assert saved is not None and saved.read() == b"saved\n"
    _wait(browser, lambda d: "model.tar.gz" in d.find_element(By.ID, "summary").text)


def test_compare_overlays_curves_and_highlights_differences(
    server: RunningServer, jobs: dict[str, str], signed_in: WebDriver, shot: None
) -> None:
    browser = signed_in
    done, running = jobs["done"], jobs["running"]
    browser.get(f"{server.url}/ui/")
    for name in (done, running):
        _click(browser, f'tr[data-name="{name}"] input')
    browser.find_element(By.ID, "compare").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '.chart[data-metric="train:loss"]'))
    rows = {
        r.find_element(By.TAG_NAME, "th").text: r.get_attribute("class")
        for r in browser.find_elements(By.CSS_SELECTOR, "#params tbody tr")
    }
    assert rows["lr"] == "diff"  # 0.01 against 0.1
    assert rows["epochs"] in (None, "")  # 3 and 3
    legend = browser.find_element(By.CSS_SELECTOR, '.chart[data-metric="train:loss"] .legend').text
    assert done in legend and running in legend


def test_run_again_creates_a_new_job_from_the_request(
    server: RunningServer, jobs: dict[str, str], sm: Any, signed_in: WebDriver, shot: None
) -> None:
    browser = signed_in
    browser.get(f"{server.url}/ui/jobs/{jobs['done']}")
    _wait(browser, lambda d: d.find_element(By.ID, "request").text.strip().startswith("{"))
    browser.find_element(By.ID, "again").click()
    text = _wait(browser, lambda d: d.find_element(By.ID, "rerunjson").get_attribute("value"))
    request = json.loads(text)
    assert request["HyperParameters"] == {"lr": "0.01", "epochs": "3"}
    new_name = request["TrainingJobName"]
    assert new_name != jobs["done"]
    browser.find_element(By.ID, "rerunsubmit").click()
    _wait(browser, lambda d: d.current_url.endswith(f"/ui/jobs/{new_name}"))
    described = wait_for_job(sm, new_name)
    assert described["TrainingJobStatus"] == "Completed"
    assert described["HyperParameters"] == {"lr": "0.01", "epochs": "3"}
