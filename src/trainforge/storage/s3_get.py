"""The plain GET of an S3 object on urllib3, signed by botocore's own S3 SigV4 signer.

Staging thousands of small objects through a full botocore ``get_object`` call costs more CPU than
the bytes themselves (the event hooks, the model-driven parsing, the retry handler). For the plain
case (a 200 or 206 answer, an unencoded body) this module builds the request itself: botocore's
``S3SigV4Auth`` signs an ``AWSRequest`` and a shared urllib3 pool sends it, so neither the wire
nor the signature is ours to get right.

It owns only that GET. Anything else (a redirect, an error answer, a broken connection) raises
``GetUnavailable`` and ``storage.s3`` falls back to botocore's client, which knows every corner of
S3. It must not import boto3 (``storage.s3`` owns the client and hands over the bucket's base URL,
the region and the credentials it resolved).

Connections are checked out of the pool for one request and handed back (or closed, when a
request stops part-way), so concurrent downloads, one per job, never touch each other's sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlsplit

import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import HTTPError

from trainforge.errors import TrainforgeError

_READ_CHUNK = 1 << 20
# Bodies up to this size are read in one piece (one read, no streaming machinery).
WHOLE_BODY_MAX = 1 << 20


class GetUnavailable(TrainforgeError):
    """This GET needs the full client."""


class ObjectGetter:
    """GETs of objects on one shared, thread-safe urllib3 pool."""

    def __init__(self, max_connections: int, timeout: float = 60.0) -> None:
        # retries=False: a failure is handed back to botocore, whose retry policy is the one
        # the rest of the store uses; redirects likewise (S3 redirects name another region).
        self._http = urllib3.PoolManager(
            num_pools=8,
            maxsize=max_connections,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
        # The pool, path and Host of each bucket's base URL, worked out once: a GET of a small
        # object costs little more than its request line and headers.
        self._bases: dict[str, tuple[HTTPConnectionPool, str, str]] = {}

    def _pool(self, base_url: str) -> tuple[HTTPConnectionPool, str, str]:
        found = self._bases.get(base_url)
        if found is None:
            parts = urlsplit(base_url)
            # The Host header as HTTP clients send it (and botocore signs it): no default port.
            default = {"http": ":80", "https": ":443"}.get(parts.scheme, "")
            host = parts.netloc.removesuffix(default) if default else parts.netloc
            found = (self._http.connection_from_url(base_url), parts.path, host)
            self._bases[base_url] = found
        return found

    def get(
        self,
        base_url: str,
        key: str,
        credentials: ReadOnlyCredentials,
        region: str,
        byte_range: tuple[int, int] | None,
        sink: Callable[[bytes], None],
        whole: bool = False,
    ) -> int:
        """Stream the object (or its inclusive ``byte_range``) into ``sink``; returns its size.
        ``whole``: the body is small enough to read in one piece before ``sink`` sees it.

        Whatever ``sink`` raises (a cancelled job) stops the read and goes up unchanged."""
        pool, base_path, host = self._pool(base_url)
        quoted = quote(key, safe="/~")
        request = AWSRequest(method="GET", url=base_url + quoted, headers={"Host": host})
        if byte_range is not None:
            request.headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        S3SigV4Auth(credentials, "s3", region).add_auth(request)
        try:
            response = pool.urlopen(
                "GET",
                base_path + quoted,
                headers=dict(request.headers.items()),
                preload_content=whole,
                decode_content=False,
                redirect=False,
                retries=False,
            )
        except HTTPError as exc:
            raise GetUnavailable(str(exc)) from exc
        complete = False
        try:
            if response.status not in (200, 206) or response.headers.get("Content-Encoding"):
                raise GetUnavailable(f"HTTP {response.status}")
            if whole:
                body = response.data
                sink(body)
                complete = True
                return len(body)
            expected = response.headers.get("Content-Length")
            total = 0
            while chunk := response.read(_READ_CHUNK):
                sink(chunk)
                total += len(chunk)
            if expected is not None and total != int(expected):
                raise GetUnavailable(f"short body: {total} of {expected} bytes")
            complete = True
            return total
        except HTTPError as exc:
            raise GetUnavailable(str(exc)) from exc
        finally:
            if not complete:
                # A connection left mid-response cannot carry the next request.
                response.close()
            response.release_conn()
