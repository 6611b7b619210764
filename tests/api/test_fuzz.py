"""Issue 7's fuzz suite: requests generated from the botocore models and mutated (tests/fuzz.py)
against a real `trainforge serve`, and SigV4-signed requests with mangled auth headers against
one that checks signatures. Every answer is below 500 and AWS-shaped, and the server still
answers at the end. Bounded here; ``make fuzz`` runs 10,000 (TRAINFORGE_FUZZ_EXAMPLES)."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import api_request, cbor_request, header_text, query_request
from tests.server_support import RunningServer, start_server
from trainforge.aws import cbor

EXAMPLES = int(os.environ.get("TRAINFORGE_FUZZ_EXAMPLES", "400"))
KEY = ("AKIDFUZZ", "fuzz-secret")


class Connection:
    """One kept-alive connection, opened again whenever the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.count = 0

    def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            self.count += 1
            if response.will_close:
                self.conn.close()
                self.conn = None
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def check_answer(status: int, headers: dict[str, str], data: bytes) -> None:
    assert status < 500, (status, data[:500])
    assert "x-amzn-requestid" in headers or status == 200, headers
    if status >= 400:
        body: Any = json.loads(data)
        assert isinstance(body.get("__type"), str) and body["__type"], body
        assert isinstance(body.get("message"), str) and body["message"], body
        assert headers["x-amzn-errortype"] == body["__type"]


def still_answers(server: RunningServer) -> None:
    status, _, body = server.raw(
        "SageMaker.DescribeTrainingJob", json.dumps({"TrainingJobName": "fuzz-missing"})
    )
    assert (status, body["__type"]) == (400, "ValidationException")
    assert "Internal" not in server.logs()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("fuzz-home")
    # An engine that is not there: a request that passes validation makes a job that fails.
    running = start_server(home, DOCKER_HOST="unix:///nonexistent/docker.sock")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def signing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("fuzz-auth-home")
    running = start_server(
        home,
        DOCKER_HOST="unix:///nonexistent/docker.sock",
        TRAINFORGE_ACCESS_KEYS=f"{KEY[0]}:{KEY[1]}",
    )
    yield running
    running.stop()


def test_mutated_requests_never_get_a_5xx(server: RunningServer) -> None:
    connection = Connection(server.port)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(api_request(), st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
    def one(request: tuple[str, dict[str, str], bytes], method: str) -> None:
        path, headers, body = request
        status, answer_headers, data = connection.send(method, path, headers, body)
        if (method, path) == ("GET", "/ping") or status == 200:
            return
        check_answer(status, answer_headers, data)

    try:
        one()
    finally:
        connection.close()
    assert connection.count >= EXAMPLES
    still_answers(server)


def test_mutated_cbor_requests_never_get_a_5xx(server: RunningServer) -> None:
    connection = Connection(server.port)

    @settings(
        max_examples=max(EXAMPLES // 4, 50),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cbor_request())
    def one(request: tuple[str, dict[str, str], bytes]) -> None:
        path, headers, body = request
        status, answer_headers, data = connection.send("POST", path, headers, body)
        assert status < 500, (status, data[:500])
        assert answer_headers["smithy-protocol"] == "rpc-v2-cbor"
        answer = cbor.decode(data)
        if status >= 400:
            assert isinstance(answer.get("__type"), str) and answer["__type"], answer
            assert isinstance(answer.get("message"), str) and answer["message"], answer

    try:
        one()
    finally:
        connection.close()
    still_answers(server)


def test_mutated_query_requests_never_get_a_5xx(server: RunningServer) -> None:
    connection = Connection(server.port)
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}

    @settings(
        max_examples=max(EXAMPLES // 4, 50),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(query_request())
    def one(body: bytes) -> None:
        status, answer_headers, data = connection.send("POST", "/", headers, body)
        assert status < 500, (status, data[:500])
        root = ElementTree.fromstring(data)
        if status >= 400:
            assert root.tag.endswith("ErrorResponse"), data[:500]
            code = root.find("./{*}Error/{*}Code")
            message = root.find("./{*}Error/{*}Message")
            assert code is not None and code.text, data[:500]
            assert message is not None and message.text, data[:500]
            assert answer_headers["x-amzn-requestid"]

    try:
        one()
    finally:
        connection.close()
    still_answers(server)


def _signed(server: RunningServer, body: bytes) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=server.url + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "SageMaker.ListTrainingJobs",
        },
    )
    SigV4Auth(Credentials(*KEY), "sagemaker", "us-east-1").add_auth(request)
    return {k: str(v) for k, v in request.headers.items()}


def test_mangled_signatures_never_get_a_5xx(signing_server: RunningServer) -> None:
    connection = Connection(signing_server.port)
    body = b"{}"
    good = _signed(signing_server, body)
    try:
        assert connection.send("POST", "/", good, body)[0] == 200
    except BaseException:
        connection.close()
        raise

    @settings(
        max_examples=max(EXAMPLES // 4, 50),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.sampled_from(["Authorization", "X-Amz-Date", "X-Amz-Content-SHA256", "Host"]),
        st.one_of(
            header_text,
            st.sampled_from(
                [
                    "AWS4-HMAC-SHA256 Credential=AKIDFUZZ/20260101/us-east-1/sagemaker/aws4_request",
                    "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
                    "AWS4-HMAC-SHA256 Credential=AKIDFUZZ/x/y/z/w, SignedHeaders=host;x, Signature=00",
                    "20261301T990000Z",
                    "99999999T999999Z",
                    "",
                ]
            ),
        ),
        st.booleans(),
    )
    def one(header: str, value: str, drop: bool) -> None:
        headers = dict(good)
        if drop:
            headers.pop(header, None)
        else:
            headers[header] = value
        status, answer_headers, data = connection.send("POST", "/", headers, body)
        if status != 200:
            check_answer(status, answer_headers, data)

    try:
        one()
        assert connection.send("POST", "/", _signed(signing_server, body), body)[0] == 200
    finally:
        connection.close()
    assert "Internal" not in signing_server.logs()
