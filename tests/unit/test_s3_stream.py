"""storage.s3.ObjectStream, the streaming read of Pipe mode: a body cut off mid-way goes on with
a ranged GET of the same object version from the byte it reached. A real botocore client talks
to a small HTTP server on loopback that breaks its first answer after half the body (moto's
server cannot be told to break a connection)."""

from __future__ import annotations

import http.server
import random
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from trainforge.errors import StorageError
from trainforge.storage.location import parse_location
from trainforge.storage.s3 import ObjectStream

BODY = random.Random(9).randbytes(300_000)
ETAG = '"0123456789abcdef"'


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str | None]]
    breaks: int
    cut: float  # the part of the body sent before a break

    def do_GET(self) -> None:
        self.seen.append(
            {"range": self.headers.get("Range"), "if-match": self.headers.get("If-Match")}
        )
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
        part = BODY[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(part)))
        self.send_header("ETag", ETAG)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        self.end_headers()
        if type(self).breaks > 0:
            type(self).breaks -= 1
            self.wfile.write(part[: int(len(part) * self.cut)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(part)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[Handler]]]:
    handler = type("Breaking", (Handler,), {"seen": [], "breaks": 0, "cut": 0.5})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _read_all(stream: ObjectStream) -> bytes:
    data = bytearray()
    for _ in range(10_000):
        chunk = stream.read(64 * 1024)
        if not chunk:
            return bytes(data)
        data += chunk
    raise AssertionError("the stream never ended")


def test_a_body_cut_off_goes_on_from_where_it_broke_each_time(
    server: tuple[str, type[Handler]],
) -> None:
    endpoint, handler = server
    handler.breaks = 2
    stream = ObjectStream(_client(endpoint), parse_location("s3://bucket/data/obj.bin"))
    try:
        assert _read_all(stream) == BODY
    finally:
        stream.close()
    assert len(handler.seen) == 3
    assert handler.seen[0] == {"range": None, "if-match": None}
    first_break = int(str(handler.seen[1]["range"]).removeprefix("bytes=").rstrip("-"))
    assert 0 < first_break <= len(BODY) // 2
    assert handler.seen[1]["if-match"] == ETAG
    assert handler.seen[2]["if-match"] == ETAG


def test_a_body_that_keeps_breaking_without_progress_is_a_storage_error(
    server: tuple[str, type[Handler]],
) -> None:
    endpoint, handler = server
    handler.breaks, handler.cut = ObjectStream.RETRIES + 1, 0.0
    stream = ObjectStream(_client(endpoint), parse_location("s3://bucket/data/obj.bin"))
    try:
        with pytest.raises(StorageError, match=r"cannot read s3://bucket/data/obj.bin past byte"):
            _read_all(stream)
    finally:
        stream.close()
    assert len(handler.seen) == ObjectStream.RETRIES + 1
