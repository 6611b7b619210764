"""The lean S3 GET signs exactly as botocore's S3 SigV4 signer does, and reads responses the way
HTTP/1.1 frames them (body split across reads, keep-alive or close, refusals handed back)."""

from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from trainforge.storage.s3_lean import Credentials, LeanGetter, LeanUnavailable, signed_get_headers

NOW = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("token", [None, "session-token/with+chars="])
@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("127.0.0.1:9000", "/bucket/data/part-00.bin"),
        ("bucket.s3.us-west-2.amazonaws.com", "/dir%20with%20space/k%C3%A9y~x.csv"),
    ],
)
def test_signature_matches_botocore(
    monkeypatch: pytest.MonkeyPatch, token: str | None, host: str, path: str
) -> None:
    ours = signed_get_headers(
        host, path, Credentials("AKIDEXAMPLE", "secret/KEY+x", token), "us-west-2", NOW
    )
    request = AWSRequest(method="GET", url=f"http://{host}{path}")

    class FrozenDatetime(dt.datetime):
        @classmethod
        def utcnow(cls) -> dt.datetime:  # type: ignore[override]
            return NOW.replace(tzinfo=None)

        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
            return NOW if tz else NOW.replace(tzinfo=None)

    monkeypatch.setattr("botocore.auth.datetime.datetime", FrozenDatetime)
    S3SigV4Auth(BotoCredentials("AKIDEXAMPLE", "secret/KEY+x", token), "s3", "us-west-2").add_auth(
        request
    )
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]


class _OneShotServer:
    """A loopback server that answers each connection with the given raw responses in turn."""

    def __init__(self, responses: list[bytes]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.responses = responses
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                for response in self.responses:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(4096)
                    self.requests.append(data)
                    for i in range(0, len(response), 7):  # dribble it out in small pieces
                        conn.sendall(response[i : i + 7])
        except OSError:
            pass  # the client hung up early, as it should on a refusal
        finally:
            self.sock.close()


def _get(server: _OneShotServer, byte_range: tuple[int, int] | None = None) -> bytes:
    received = bytearray()
    getter = LeanGetter()
    getter.get(
        f"http://127.0.0.1:{server.port}/bucket/",
        "key",
        Credentials("a", "b", None),
        "us-east-1",
        byte_range,
        received.extend,
        memoryview(bytearray(1 << 16)),
    )
    getter.close()
    return bytes(received)


def test_reads_a_body_split_across_reads() -> None:
    body = bytes(range(256)) * 40
    server = _OneShotServer([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body])
    assert _get(server) == body
    assert server.requests[0].startswith(b"GET /bucket/key HTTP/1.1\r\n")


def test_range_header_is_sent() -> None:
    server = _OneShotServer(
        [b"HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"]
    )
    assert _get(server, (10, 12)) == b"abc"
    assert b"range: bytes=10-12\r\n" in server.requests[0]


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!",
        b"HTTP/1.1 301 Moved Permanently\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ],
)
def test_anything_unusual_is_handed_back(response: bytes) -> None:
    server = _OneShotServer([response])
    with pytest.raises(LeanUnavailable):
        _get(server)
