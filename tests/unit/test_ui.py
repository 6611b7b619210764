"""The dashboard's pure parts: sessions and CSRF tokens, the log cursor, the run-again request,
and a rule of its scripts (text only, never markup)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from trainforge.errors import ValidationError
from trainforge.settings import AccessKey
from trainforge.ui import data
from trainforge.ui.auth import Sessions

ASSETS = Path(__file__).resolve().parents[2] / "src" / "trainforge" / "ui" / "assets"


def test_a_session_needs_a_right_key_and_its_secret() -> None:
    sessions = Sessions((AccessKey("alice", "s3cret"), AccessKey("bob", "other")))
    assert sessions.required
    assert sessions.login("alice", "other") is None
    assert sessions.login("carol", "s3cret") is None
    assert sessions.session(None) is None
    assert sessions.session("made-up") is None
    token = sessions.login("bob", "other")
    assert token is not None
    session = sessions.session(token)
    assert session is not None and session.user == "bob"
    assert sessions.csrf_ok(session, session.csrf)
    assert not sessions.csrf_ok(session, None)
    assert not sessions.csrf_ok(session, session.csrf + "x")
    sessions.logout(token)
    assert sessions.session(token) is None


def test_an_expired_session_is_gone() -> None:
    sessions = Sessions((AccessKey("alice", "s3cret"),), lifetime=-1)
    token = sessions.login("alice", "s3cret")
    assert sessions.session(token) is None


def test_without_keys_every_browser_shares_one_anonymous_session() -> None:
    sessions = Sessions(())
    assert not sessions.required
    one, two = sessions.session(None), sessions.session("anything")
    assert one is two and one is not None
    assert sessions.login("alice", "s3cret") is None
    assert not sessions.csrf_ok(one, "")


@pytest.mark.parametrize("cursor", ["not base64!", "W10=", "eyJhIjogMX0="])
def test_a_log_cursor_this_server_did_not_give_is_refused(cursor: str) -> None:
    def call(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("no call for a bad cursor")

    with pytest.raises(ValidationError):
        data.log_tail(call, "job", cursor)


def test_run_again_takes_back_only_what_create_accepts() -> None:
    describe = {
        "TrainingJobName": "a",
        "TrainingJobArn": "arn:x",
        "TrainingJobStatus": "Completed",
        "HyperParameters": {"lr": "0.1"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/a/output/model.tar.gz"},
    }
    assert data.request_of(describe) == {
        "TrainingJobName": "a",
        "HyperParameters": {"lr": "0.1"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }


def test_the_scripts_never_insert_markup() -> None:
    """What a job shows goes into the page as text: no innerHTML, outerHTML,
    insertAdjacentHTML, document.write or eval anywhere in the dashboard's scripts."""
    pattern = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(")
    offenders = [p.name for p in ASSETS.glob("*.js") if pattern.search(p.read_text())]
    assert offenders == []
    # No inline script or style: the Content-Security-Policy forbids them.
    for page in ASSETS.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), page.name
        assert " style=" not in text and "<style" not in text, page.name


def test_trainforge_ui_names_the_configured_servers_dashboard() -> None:
    from trainforge.cli.main import dashboard_url
    from trainforge.settings import load_settings

    assert dashboard_url(load_settings({"TRAINFORGE_PORT": "9000"})) == "http://127.0.0.1:9000/ui/"
    remote = load_settings({"TRAINFORGE_SERVER_URL": "http://gpu-box:8443/"})
    assert dashboard_url(remote) == "http://gpu-box:8443/ui/"
    anywhere = load_settings({"TRAINFORGE_HOST": "0.0.0.0", "TRAINFORGE_PORT": "8443"})
    assert dashboard_url(anywhere) == "http://127.0.0.1:8443/ui/"


def test_a_long_job_is_charted_over_longer_periods() -> None:
    assert data._period(60) == 1
    assert data._period(2000) == 1
    assert data._period(2001) == 5
    assert data._period(30 * 2000) == 30
    assert data._period(3 * 86400) == 180  # 1440 points of 3 minutes
    assert 3 * 86400 / data._period(3 * 86400) <= data.MAX_POINTS


def test_data_inside_a_page_cannot_end_its_block() -> None:
    import json

    from trainforge.ui.routes import _data_block

    value = {"name": "</script><script>alert(1)</script>", "x": "a & b > c"}
    block = _data_block(value).decode()
    inner = block.removeprefix('<script type="application/json" id="tf-first">')
    inner = inner.removesuffix("</script>")
    assert "<" not in inner and ">" not in inner and "&" not in inner
    assert json.loads(inner) == value


def test_the_log_tail_starts_at_each_hosts_end_and_follows_it() -> None:
    asked: list[dict[str, Any]] = []

    def call(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "DescribeLogStreams":
            return {"logStreams": [{"logStreamName": "job/algo-1-1700000000"}]}
        asked.append(params)
        full = len(asked) == 1
        events = [{"timestamp": i, "message": f"line {i}"} for i in range(data.LOG_BATCH)]
        return {"events": events if full else [], "nextForwardToken": f"f/{len(asked)}"}

    first = data.log_tail(call, "job", None)
    assert "nextToken" not in asked[0] and not asked[0].get("startFromHead")
    assert first["earlier"] and not first["more"]
    assert {line["host"] for line in first["lines"]} == {"algo-1"}
    second = data.log_tail(call, "job", first["cursor"])
    assert asked[1]["nextToken"] == "f/1"
    assert second["lines"] == [] and not second["earlier"]
