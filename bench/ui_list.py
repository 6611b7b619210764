"""Benchmark 14: the dashboard's jobs list with 10,000 stored jobs, opened in headless Chromium
(Debian's, through its chromedriver): time to first contentful paint and time until the first
page of jobs is on screen, both read from the browser's own Performance API
(``first-contentful-paint`` and the page's ``tf-data`` mark, from the navigation's start). Each
run is a fresh navigation; the first ones load the assets, the rest find them in the cache as a
user coming back would. Also what an open page of a running job costs the server: its CPU
time with the page open, less its CPU time with the same job running and no page open."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Row, busybox_image, noop_request, percentile, trainforge_server
from bench.describe_load import _populate_store

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _timings(driver: Any, url: str) -> tuple[float, float]:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    script = (
        "const p = performance.getEntriesByName('first-contentful-paint')[0];"
        "const d = performance.getEntriesByName('tf-data')[0];"
        "return p && d ? [p.startTime, d.startTime] : null;"
    )
    fcp, data = WebDriverWait(driver, 30, poll_frequency=0.02).until(
        lambda d: d.execute_script(script)
    )
    return float(fcp), float(data)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


RUNNING_SCRIPT = "i=0; while true; do i=$((i+1)); echo step $i loss=$((1000 / i)); sleep 1; done"
WINDOW_SECONDS = 30.0


def _server_cpu(server: Any, seconds: float) -> float:
    before, started = _cpu_seconds(server.proc.pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_seconds(server.proc.pid) - before) / (time.monotonic() - started)


def _page_cost(driver: Any, server: Any, home: Path) -> tuple[float, float]:
    """(server CPU share with the running job's page open, without it)."""
    sm = server.client("sagemaker")
    request = noop_request("ui-bench-running", busybox_image(), home / "out")
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["/bin/sh", "-c", RUNNING_SCRIPT]
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:loss", "Regex": "loss=([0-9]+)"}
    ]
    sm.create_training_job(**request)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (
            sm.describe_training_job(TrainingJobName="ui-bench-running")["SecondaryStatus"]
            == "Training"
        ):
            break
        time.sleep(0.2)
    try:
        driver.get("about:blank")
        time.sleep(3)
        without = _server_cpu(server, WINDOW_SECONDS)
        driver.get(server.url + "/ui/jobs/ui-bench-running")
        time.sleep(3)
        with_page = _server_cpu(server, WINDOW_SECONDS)
    finally:
        sm.stop_training_job(TrainingJobName="ui-bench-running")
    return with_page, without


def ui_list(count: int, runs: int) -> list[Row]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        return [
            Row(
                "14",
                "dashboard list",
                "not run",
                "—",
                "—",
                "p95 ≤ 300 ms",
                None,
                ["chromium and chromium-driver are not installed (apt-get install them)"],
            )
        ]
    runs = max(runs, 20)
    with tempfile.TemporaryDirectory(prefix="tf-ui-") as tmp:
        home = Path(tmp)
        _populate_store(home, count)
        with trainforge_server(home) as server:
            driver = _browser()
            try:
                _timings(driver, server.url + "/ui/")  # warm-up
                fcps, datas = [], []
                for _ in range(runs):
                    fcp, data = _timings(driver, server.url + "/ui/")
                    fcps.append(fcp)
                    datas.append(data)
                cpu = _page_cost(driver, server, home)
            finally:
                driver.quit()
    p95_fcp, p95_data = percentile(fcps, 95), percentile(datas, 95)
    notes = [
        f"{runs} navigations; first contentful paint p50 {percentile(fcps, 50):.0f} ms, "
        f"first page of jobs p50 {percentile(datas, 50):.0f} ms",
        f"server CPU with a running job: {cpu[1] * 100:.2f} % without its page open, "
        f"{cpu[0] * 100:.2f} % with it ({WINDOW_SECONDS:.0f} s each)",
    ]
    page = max(cpu[0] - cpu[1], 0.0)
    return [
        Row(
            "14a",
            f"dashboard jobs list, {count:,} stored jobs: p95 first contentful paint",
            f"{p95_fcp:.0f} ms",
            "—",
            "—",
            "p95 ≤ 300 ms",
            p95_fcp <= 300,
            notes,
        ),
        Row(
            "14b",
            "the same: p95 time until the first page of jobs is shown",
            f"{p95_data:.0f} ms",
            "—",
            "—",
            "p95 ≤ 300 ms",
            p95_data <= 300,
        ),
        Row(
            "14c",
            "server CPU that an open page of a running job adds (polling every 2 s)",
            f"{page * 100:.2f} %",
            f"{cpu[1] * 100:.2f} % (the job alone)",
            "—",
            "≤ 1 %",
            page <= 0.01,
        ),
    ]
