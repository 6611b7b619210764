"""A lean GET for S3 objects: SigV4-signed HTTP/1.1 on one kept-alive socket per thread, the body
read straight into a reused buffer. Staging thousands of small objects through a full botocore
call costs more CPU than the bytes themselves; this costs a few tens of microseconds a request.

It serves only the plain case: a 200/206 answer with a Content-Length. Anything else (a redirect,
an error, a chunked body, a broken connection) raises ``LeanUnavailable`` and the caller uses
botocore, which knows every corner of S3. Signatures are checked against botocore's own signer in
the tests. No boto3 here: ``storage.s3`` owns the client and hands this module what it learned
from botocore (the bucket's base URL, the region, the credentials).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

# A GET has no body: its payload hash is the hash of nothing (valid over http and https alike).
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()
_HEADER_LIMIT = 64 * 1024


class LeanUnavailable(Exception):
    """This GET needs the full client."""


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def signed_get_headers(
    host: str, path: str, credentials: Credentials, region: str, now: dt.datetime
) -> dict[str, str]:
    """The headers of a SigV4-signed S3 GET of ``path`` (already URI-encoded, as sent)."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    date = stamp[:8]
    headers = {
        "host": host,
        "x-amz-content-sha256": EMPTY_PAYLOAD_SHA256,
        "x-amz-date": stamp,
    }
    if credentials.token:
        headers["x-amz-security-token"] = credentials.token
    names = sorted(headers)
    canonical = "\n".join(
        [
            "GET",
            path,
            "",
            "".join(f"{name}:{headers[name]}\n" for name in names),
            ";".join(names),
            EMPTY_PAYLOAD_SHA256,
        ]
    )
    scope = f"{date}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    signature = hmac.new(
        signing_key(credentials.secret_key, date, region), to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


class LeanGetter:
    """GETs of objects under one endpoint; thread-safe, one connection per thread."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._local = threading.local()
        self._tls = ssl.create_default_context()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def _connection(self, scheme: str, host: str, port: int) -> socket.socket:
        key = (scheme, host, port)
        conns: dict[tuple[str, str, int], socket.socket] = getattr(self._local, "conns", {})
        self._local.conns = conns
        sock = conns.get(key)
        if sock is None:
            raw = socket.create_connection((host, port), timeout=self.timeout)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = self._tls.wrap_socket(raw, server_hostname=host) if scheme == "https" else raw
            conns[key] = sock
            with self._lock:
                self._open.add(sock)
        return sock

    def _drop(self, scheme: str, host: str, port: int) -> None:
        conns = getattr(self._local, "conns", {})
        sock = conns.pop((scheme, host, port), None)
        if sock is not None:
            with self._lock:
                self._open.discard(sock)
            sock.close()

    def close(self) -> None:
        """Close every kept-alive connection (of every thread)."""
        with self._lock:
            socks, self._open = self._open, set()
        for sock in socks:
            sock.close()
        self._local = threading.local()

    def get(
        self,
        base_url: str,
        key: str,
        credentials: Credentials,
        region: str,
        byte_range: tuple[int, int] | None,
        sink: Callable[[memoryview], None],
        buffer: memoryview,
    ) -> int:
        """Stream the object (or its inclusive ``byte_range``) into ``sink``; returns its size."""
        parts = urlsplit(base_url + quote(key, safe="/~"))
        scheme = parts.scheme
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        path = parts.path or "/"
        headers = signed_get_headers(
            host_header, path, credentials, region, dt.datetime.now(dt.UTC)
        )
        if byte_range is not None:
            headers["range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        request = f"GET {path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        try:
            sock = self._connection(scheme, host, port)
            sock.sendall((request + "\r\n").encode("latin-1"))
            size, closing = self._read_response(sock, sink, buffer)
            if closing:
                self._drop(scheme, host, port)
            return size
        except (OSError, ValueError) as exc:
            self._drop(scheme, host, port)
            raise LeanUnavailable(str(exc)) from exc
        except BaseException:
            # Whatever stopped the read (a refusal, a cancelled job) leaves the connection
            # mid-response: it cannot be reused.
            self._drop(scheme, host, port)
            raise

    @staticmethod
    def _read_response(
        sock: socket.socket, sink: Callable[[memoryview], None], buffer: memoryview
    ) -> tuple[int, bool]:
        head = bytearray()
        window = buffer[:_HEADER_LIMIT]
        while (end := head.find(b"\r\n\r\n")) < 0:
            if len(head) > _HEADER_LIMIT:
                raise LeanUnavailable("response headers too long")
            count = sock.recv_into(window)
            if not count:
                raise LeanUnavailable("connection closed")
            head += window[:count]
        lines = bytes(head[:end]).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if status not in (200, 206) or "content-length" not in fields:
            raise LeanUnavailable(f"HTTP {status}")
        remaining = int(fields["content-length"])
        body = memoryview(bytes(head[end + 4 :]))
        total = 0
        if body:
            total = min(len(body), remaining)
            sink(body[:total])
            remaining -= total
        while remaining > 0:
            count = sock.recv_into(buffer, min(len(buffer), remaining))
            if not count:
                raise LeanUnavailable("connection closed mid-body")
            sink(buffer[:count])
            total += count
            remaining -= count
        return total, fields.get("connection", "").lower() == "close"
