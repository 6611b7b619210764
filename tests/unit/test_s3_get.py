"""The lean S3 GET on urllib3: what goes on the wire is what botocore's S3 signer signed, bodies
are read however HTTP/1.1 frames them, anything unusual is handed back to the full client, and a
GET stopped part-way leaves the shared pool usable. A loopback server stands in for S3 here; the
same GETs against a real S3 endpoint are in tests/integration/test_s3_staging.py."""

from __future__ import annotations

import socket
import threading
from urllib.parse import unquote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from trainforge.errors import StorageCancelled
from trainforge.storage.s3_get import GetUnavailable, ObjectGetter

CREDENTIALS = ReadOnlyCredentials("AKIDEXAMPLE", "secret/KEY+x", "session-token/with+chars=")


class _LoopbackServer:
    """Answers the requests of each connection it accepts with the given raw responses in turn,
    their first bytes dribbled out in small pieces; it records each request's head."""

    def __init__(self, responses: list[bytes], connections: int = 1) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.responses = list(responses)
        self.connections = connections
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            for _ in range(self.connections):
                conn, _ = self.sock.accept()
                with conn:
                    self._answer(conn)
        finally:
            self.sock.close()

    def _answer(self, conn: socket.socket) -> None:
        try:
            while self.responses:
                data = b""
                while b"\r\n\r\n" not in data:
                    more = conn.recv(4096)
                    if not more:
                        return
                    data += more
                self.requests.append(data)
                response = self.responses.pop(0)
                for i in range(0, 252, 7):
                    conn.sendall(response[i : i + 7])
                conn.sendall(response[252:])
        except OSError:
            pass  # the client hung up early, as it should on a refusal

    def stop(self) -> None:
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def _get(
    getter: ObjectGetter,
    server: _LoopbackServer,
    key: str = "key",
    byte_range: tuple[int, int] | None = None,
    whole: bool = False,
) -> bytes:
    received = bytearray()
    getter.get(
        f"http://127.0.0.1:{server.port}/bucket/",
        key,
        CREDENTIALS,
        "us-west-2",
        byte_range,
        received.extend,
        whole=whole,
    )
    return bytes(received)


def _ok(body: bytes, status: str = "200 OK") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n" % (status.encode(), len(body)) + body


def _head(raw: bytes) -> tuple[str, str, dict[str, str]]:
    lines = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return method, target, headers


def test_the_request_on_the_wire_carries_the_signature_of_what_was_sent() -> None:
    server = _LoopbackServer([_ok(b"abc")])
    assert _get(ObjectGetter(4), server, key="dir with space/kéy~x+y.csv") == b"abc"
    server.stop()
    method, target, headers = _head(server.requests[0])
    assert method == "GET"
    assert unquote(target) == "/bucket/dir with space/kéy~x+y.csv"
    assert headers["X-Amz-Security-Token"] == CREDENTIALS.token
    # Sign the request as the server received it (path, Host, date) with botocore's S3 signer:
    # it must give the signature that arrived.
    received = AWSRequest(method=method, url=f"http://{headers['Host']}{target}")
    for name in ("X-Amz-Date", "X-Amz-Content-SHA256", "X-Amz-Security-Token"):
        received.headers[name] = headers[name]
    received.context["timestamp"] = headers["X-Amz-Date"]
    signer = S3SigV4Auth(CREDENTIALS, "s3", "us-west-2")
    canonical = signer.canonical_request(received)
    expected = signer.signature(signer.string_to_sign(received, canonical), received)
    assert headers["Authorization"].endswith(f"Signature={expected}")
    assert "/us-west-2/s3/aws4_request" in headers["Authorization"]


@pytest.mark.parametrize("whole", [False, True])
def test_reads_a_body_split_across_reads_and_reuses_the_connection(whole: bool) -> None:
    body = bytes(range(256)) * 40
    server = _LoopbackServer([_ok(body), _ok(body[:10])])
    getter = ObjectGetter(4)
    assert _get(getter, server, whole=whole) == body
    assert _get(getter, server, whole=whole) == body[:10]  # the same kept-alive connection
    server.stop()


def test_range_header_is_sent() -> None:
    server = _LoopbackServer([_ok(b"abc", "206 Partial Content")])
    assert _get(ObjectGetter(4), server, byte_range=(10, 12)) == b"abc"
    server.stop()
    assert _head(server.requests[0])[2]["Range"] == "bytes=10-12"


def test_a_chunked_body_is_read_whole() -> None:
    server = _LoopbackServer(
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"]
    )
    assert _get(ObjectGetter(4), server) == b"abcde"
    server.stop()


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!",
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc",
        b"not HTTP at all\r\n\r\n",
    ],
)
@pytest.mark.parametrize("whole", [False, True])
def test_anything_unusual_is_handed_back(response: bytes, whole: bool) -> None:
    server = _LoopbackServer([response])
    with pytest.raises(GetUnavailable):
        _get(ObjectGetter(4), server, whole=whole)
    server.stop()


def test_a_get_stopped_part_way_leaves_the_pool_usable() -> None:
    body = b"x" * (3 << 20)
    server = _LoopbackServer([_ok(body), _ok(b"next")], connections=2)
    getter = ObjectGetter(4)

    def sink(chunk: bytes) -> None:
        raise StorageCancelled()

    with pytest.raises(StorageCancelled):
        getter.get(
            f"http://127.0.0.1:{server.port}/bucket/", "key", CREDENTIALS, "us-east-1", None, sink
        )
    # The half-read connection was closed, not handed back: the next GET opens a new one.
    assert _get(getter, server) == b"next"
    server.stop()
