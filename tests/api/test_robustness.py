"""Issue 7, points 5, 6, 7 and 9, against a real `trainforge serve` over raw HTTP: malformed input
gets a 400 with an AWS error, never a 500 (deep nesting, null members, numbers no type holds,
tokens of no page); one large request neither holds up the others nor costs more than its
refusal; a body over 16 MiB is answered with the size error; clients that hold connections open
without sending are cut off, and connections beyond the cap are refused, each with a log line."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server_support import RunningServer, start_server

LOGS = "Logs_20140328"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("robust-home")
    running = start_server(
        home,
        DOCKER_HOST="unix:///nonexistent/docker.sock",
        TRAINFORGE_HTTP_HEADER_TIMEOUT_SECONDS="1",
        TRAINFORGE_HTTP_BODY_TIMEOUT_SECONDS="1",
        TRAINFORGE_HTTP_MAX_CONNECTIONS="40",
    )
    yield running
    running.stop()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_aws_error(status: int, headers: dict[str, str], body: dict[str, Any], code: str) -> None:
    assert status == 400, body
    assert headers["x-amzn-errortype"] == code
    assert body["__type"] == code
    assert body["message"]


@pytest.mark.parametrize("depth", [400, 600, 5000])
def test_deep_nesting_is_a_serialization_error(server: RunningServer, depth: int) -> None:
    body = '{"TrainingJobName": "j", "HyperParameters": {"a": ' + nested(depth) + "}}"
    status, headers, answer = server.raw("SageMaker.CreateTrainingJob", body)
    assert_aws_error(status, headers, answer, "SerializationException")
    assert answer["message"] == "The request body is nested more than 32 levels deep."


def test_nesting_that_only_looks_deep_inside_a_string_is_fine(server: RunningServer) -> None:
    body = json.dumps({"TrainingJobName": "[" * 100})
    status, headers, answer = server.raw("SageMaker.DescribeTrainingJob", body)
    assert_aws_error(status, headers, answer, "ValidationException")
    assert "trainingJobName" in answer["message"]


def test_null_members_are_absent(server: RunningServer) -> None:
    status, _, answer = server.raw(
        "SageMaker.ListTrainingJobs", '{"MaxResults": null, "NextToken": null}'
    )
    assert status == 200, answer
    status, headers, answer = server.raw(
        f"{LOGS}.DescribeLogStreams",
        '{"logGroupName": "/aws/sagemaker/TrainingJobs", "limit": null}',
    )
    assert_aws_error(status, headers, answer, "ResourceNotFoundException")
    status, headers, answer = server.raw(
        "SageMaker.DescribeTrainingJob", '{"TrainingJobName": null}'
    )
    assert_aws_error(status, headers, answer, "ValidationException")
    assert "Value null at 'trainingJobName' failed to satisfy constraint" in answer["message"]


@pytest.mark.parametrize("value", ["1e30", str(2**70), "-1e300", "1.5"])
def test_numbers_no_long_holds_are_refused_naming_the_member(
    server: RunningServer, value: str
) -> None:
    body = '{"logGroupName": "/aws/sagemaker/TrainingJobs", "startTime": ' + value + "}"
    status, _headers, answer = server.raw(f"{LOGS}.FilterLogEvents", body)
    assert status == 400, answer
    assert "'startTime'" in answer["message"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_a_serialization_error(server: RunningServer, constant: str) -> None:
    status, headers, answer = server.raw(
        "SageMaker.ListTrainingJobs", '{"CreationTimeAfter": ' + constant + "}"
    )
    assert_aws_error(status, headers, answer, "SerializationException")


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        ("SageMaker.ListTrainingJobs", {"NextToken": "eyJrIjpbW10sIngiXSwicyI6IkNyZWF0aW9uVGltZSIsImQiOnRydWV9"}, "ValidationException"),
        (f"{LOGS}.GetLogEvents", {"logGroupName": "g", "logStreamName": "s", "nextToken": "f/" + "9" * 30}, "ResourceNotFoundException"),
        (f"{LOGS}.FilterLogEvents", {"logGroupName": "/aws/sagemaker/TrainingJobs", "nextToken": "eyJvIjogMWUzMDB9"}, "InvalidParameterException"),
    ],
)  # fmt: skip
def test_tokens_of_no_page_are_refused(
    server: RunningServer, target: str, body: dict[str, Any], code: str
) -> None:
    status, _headers, answer = server.raw(target, json.dumps(body))
    assert status == 400, answer
    assert answer["__type"] in (code, "InvalidParameterException", "ResourceNotFoundException")


def _post(port: int, target: str, body: bytes, results: list[tuple[str, float, int]]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request(
        "POST",
        "/",
        body=body,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    response = connection.getresponse()
    response.read()
    results.append((target, time.monotonic(), response.status))
    connection.close()


@pytest.mark.parametrize(
    ("target", "body"),
    [
        (
            f"{LOGS}.FilterLogEvents",
            {"logGroupName": "g", "logStreamNames": [f"s-{i}" for i in range(1_000_000)]},
        ),
        (
            "SageMaker.AddTags",
            {
                "ResourceArn": "arn:aws:sagemaker:us-east-1:000000000000:training-job/x",
                "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(300_000)],
            },
        ),
    ],
)
def test_one_large_request_does_not_hold_up_the_others(
    server: RunningServer, target: str, body: dict[str, Any]
) -> None:
    payload = json.dumps(body).encode()
    results: list[tuple[str, float, int]] = []
    big = threading.Thread(target=_post, args=(server.port, target, payload, results))
    big.start()
    time.sleep(0.05)
    describe = json.dumps({"TrainingJobName": "nope"}).encode()
    _post(server.port, "SageMaker.DescribeTrainingJob", describe, results)
    big.join(60)
    # The small request was answered first, while the large one was in flight.
    assert [r[0] for r in results] == ["SageMaker.DescribeTrainingJob", target]
    assert results[1][2] == 400
    status, _, answer = server.raw(target, payload)
    assert status == 400
    # The list is refused whole for its length, not walked member by member.
    assert "Member must have length less than or equal to" in answer["message"]
    assert len(answer["message"]) < 3000


def test_a_body_over_16_mib_gets_the_size_error(server: RunningServer) -> None:
    body = b'{"TrainingJobName": "' + b"x" * (17 << 20) + b'"}'
    status, headers, answer = server.raw("SageMaker.DescribeTrainingJob", body)
    assert status == 413
    assert headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
    assert answer["message"] == (
        "The request body is larger than the 16777216 bytes trainforge accepts."
    )
    # Announced by Content-Length, it is refused without being sent.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Length", str(1 << 30))
    connection.putheader("X-Amz-Target", "SageMaker.ListTrainingJobs")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    connection.close()


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (no answer is owed to half a request)."""
    sock.settimeout(15)
    try:
        while sock.recv(1024):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_slow_clients_are_cut_off_with_a_log_line(server: RunningServer) -> None:
    sockets = []
    try:
        for i in range(30):
            sock = socket.create_connection(("127.0.0.1", server.port))
            # Half a request line, or a request whose body never comes.
            if i % 2:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
            else:
                sock.sendall(
                    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                    b"X-Amz-Target: SageMaker.ListTrainingJobs\r\n\r\n{"
                )
            sockets.append(sock)
        assert all(_closed_by_server(sock) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
    assert server.raw("SageMaker.ListTrainingJobs", "{}")[0] == 200
    log = server.logs()
    assert "did not send its request headers within 1 s" in log
    assert "did not send its request body within 1 s" in log


def test_connections_beyond_the_cap_are_refused_with_a_log_line(server: RunningServer) -> None:
    sockets = []
    refused = 0
    try:
        for _ in range(60):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sockets.append(sock)
        for sock in sockets:
            sock.settimeout(0.5)
            try:
                if sock.recv(64).startswith(b"HTTP/1.1 503"):
                    refused += 1
            except TimeoutError:
                pass
    finally:
        for sock in sockets:
            sock.close()
    assert refused >= 20
    assert "refusing a connection: 40 connections are open" in server.logs()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if server.raw("SageMaker.ListTrainingJobs", "{}")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server stopped answering")
