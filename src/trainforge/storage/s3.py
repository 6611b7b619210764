"""S3 and S3-compatible endpoints: the only module that builds boto3's S3 client.

Configuration is the standard AWS one (``AWS_ENDPOINT_URL_S3``, profiles, environment
credentials). Downloads run on a thread pool: small objects one GET each, large ones as ranged
GETs written in place with ``pwrite``, so a 1 GiB object and two thousand 4 KiB ones both keep
every connection busy.

A GET goes out on a lean path (``storage.s3_get``): the bucket's base URL is learned once from
botocore (so the endpoint, the addressing style and the region are botocore's), each request is
signed by botocore's S3 SigV4 signer and sent on a urllib3 pool that the store's downloads share.
That costs a fraction of a full botocore call's CPU per object. Anything unusual (a redirect, an
error, an expired token) falls back to the regular ``get_object`` call, which knows S3's
corners.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from trainforge.errors import StorageCancelled, StorageError
from trainforge.storage.base import Download, ObjectInfo, ShouldStop, Stream
from trainforge.storage.location import Location
from trainforge.storage.s3_get import WHOLE_BODY_MAX, GetUnavailable, ObjectGetter

_MiB = 1 << 20
_READ_CHUNK = 1 * _MiB
_PROBE_KEY = "trainforge-url-probe"


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Error")
        message = error.get("Message") or ""
        return f"{code}: {message}".rstrip(": ")
    return str(exc)


class S3Store:
    def __init__(
        self,
        region: str,
        max_workers: int = 16,
        part_size: int = 8 * _MiB,
        multipart_threshold: int = 16 * _MiB,
    ) -> None:
        self.max_workers = max_workers
        self.part_size = part_size
        self.multipart_threshold = multipart_threshold
        custom_endpoint = bool(
            os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        )
        config = Config(
            max_pool_connections=max_workers + 4,
            retries={"max_attempts": 5, "mode": "standard"},
            # S3-compatible servers (MinIO, moto, Ceph) expect path-style addressing.
            s3={"addressing_style": "path"} if custom_endpoint else {},
        )
        self.session = boto3.session.Session()
        self.client = self.session.client("s3", region_name=region, config=config)
        self._lean = ObjectGetter(max_connections=max_workers + 4)
        self._bases: dict[str, str] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- listing and small reads ---------------------------------------------------------------

    def list(self, prefix: Location) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=prefix.bucket, Prefix=prefix.key):
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"], int(item["Size"]))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list {prefix}: {_describe(exc)}") from exc

    def read_bytes(self, location: Location, max_bytes: int) -> bytes:
        try:
            response = self.client.get_object(
                Bucket=location.bucket, Key=location.key, Range=f"bytes=0-{max_bytes - 1}"
            )
            return bytes(response["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot read {location}: {_describe(exc)}") from exc

    def open_stream(self, location: Location) -> Stream:
        return ObjectStream(self.client, location)

    # -- downloads -----------------------------------------------------------------------------

    def download(self, items: Sequence[Download], should_stop: ShouldStop) -> int:
        cancelled = threading.Event()

        def stop() -> bool:
            if cancelled.is_set():
                return True
            if should_stop():
                cancelled.set()
                return True
            return False

        tasks: list[tuple[Download, int | None, int | None]] = []
        for item in items:
            item.dest.parent.mkdir(parents=True, exist_ok=True)
            if item.size >= self.multipart_threshold:
                fd = os.open(item.dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.ftruncate(fd, item.size)
                finally:
                    os.close(fd)
                for start in range(0, item.size, self.part_size):
                    end = min(start + self.part_size, item.size) - 1
                    tasks.append((item, start, end))
            else:
                tasks.append((item, None, None))
        # Largest first: the long ranged GETs start early and small objects fill the gaps.
        tasks.sort(key=lambda t: -(t[0].size if t[1] is None or t[2] is None else t[2] - t[1] + 1))
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="s3-get") as pool:
            futures: list[Future[int]] = [
                pool.submit(self._fetch, item, start, end, stop) for item, start, end in tasks
            ]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if pending:
                # One download failed: the rest are abandoned, not waited for.
                cancelled.set()
                wait(pending)
        errors = [e for e in (f.exception() for f in futures) if e is not None]
        real = [e for e in errors if not isinstance(e, StorageCancelled)]
        if real:
            raise real[0]
        if errors or cancelled.is_set():
            raise StorageCancelled()
        return sum(f.result() for f in futures)

    def _fetch(self, item: Download, start: int | None, end: int | None, stop: ShouldStop) -> int:
        if stop():
            raise StorageCancelled()
        ranged = start is not None
        flags = os.O_WRONLY if ranged else os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            fd = os.open(item.dest, flags, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot write {item.dest}: {exc.strerror}") from exc
        try:
            try:
                return self._fetch_lean(item, start, end, fd, stop)
            except GetUnavailable:
                return self._fetch_botocore(item, start, end, fd, stop)
        except OSError as exc:
            raise StorageError(f"cannot write {item.dest}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def _buffer(self) -> memoryview:
        buffer: memoryview | None = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = memoryview(bytearray(_READ_CHUNK))
            self._local.buffer = buffer
        return buffer

    def _base_url(self, bucket: str) -> str:
        """The URL of the bucket's root as botocore builds it (endpoint, style, region)."""
        with self._lock:
            base = self._bases.get(bucket)
        if base is None:
            url = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": _PROBE_KEY}, ExpiresIn=60
            )
            base = url.split("?", 1)[0][: -len(_PROBE_KEY)]
            with self._lock:
                self._bases[bucket] = base
        return base

    def _fetch_lean(
        self, item: Download, start: int | None, end: int | None, fd: int, stop: ShouldStop
    ) -> int:
        credentials = self.session.get_credentials()
        if credentials is None:
            raise GetUnavailable("no credentials")
        offset = start or 0
        written = 0

        def sink(chunk: bytes) -> None:
            nonlocal written
            os.pwrite(fd, chunk, offset + written)
            written += len(chunk)
            if stop():
                raise StorageCancelled()

        try:
            base = self._base_url(item.source.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise GetUnavailable(str(exc)) from exc
        self._lean.get(
            base,
            item.source.key,
            credentials.get_frozen_credentials(),
            self.client.meta.region_name,
            (start, end) if start is not None and end is not None else None,
            sink,
            whole=start is None and item.size <= WHOLE_BODY_MAX,
        )
        return written

    def _fetch_botocore(
        self, item: Download, start: int | None, end: int | None, fd: int, stop: ShouldStop
    ) -> int:
        kwargs: dict[str, Any] = {"Bucket": item.source.bucket, "Key": item.source.key}
        if start is not None:
            kwargs["Range"] = f"bytes={start}-{end}"
        try:
            body = self.client.get_object(**kwargs)["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot download {item.source}: {_describe(exc)}") from exc
        try:
            return self._copy(body, fd, start or 0, stop)
        except BotoCoreError as exc:
            raise StorageError(f"cannot download {item.source}: {exc}") from exc
        finally:
            body.close()

    def _copy(self, stream: Any, fd: int, offset: int, stop: ShouldStop) -> int:
        buffer = self._buffer()
        written = 0
        while True:
            count = stream.readinto(buffer)
            if not count:
                return written
            os.pwrite(fd, buffer[:count], offset + written)
            written += count
            if stop():
                raise StorageCancelled()

    # -- uploads -------------------------------------------------------------------------------

    def upload_file(self, path: Path, dest: Location) -> None:
        config = TransferConfig(
            multipart_threshold=64 * _MiB,
            multipart_chunksize=16 * _MiB,
            max_concurrency=self.max_workers,
        )
        try:
            self.client.upload_file(str(path), dest.bucket, dest.key, Config=config)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot upload to {dest}: {_describe(exc)}") from exc
        except Exception as exc:
            # s3transfer wraps failures in its own exception types.
            raise StorageError(f"cannot upload to {dest}: {exc}") from exc

    def delete(self, location: Location) -> None:
        try:
            self.client.delete_object(Bucket=location.bucket, Key=location.key)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot remove {location}: {_describe(exc)}") from exc


class ObjectStream:
    """An object's bytes as one GET streams them. A read that fails part-way (a reset
    connection, a short body) goes on with a ranged GET from the byte it reached, of the same
    version of the object (If-Match its ETag); it gives up after a few failures in a row."""

    RETRIES = 3

    def __init__(self, client: Any, location: Location) -> None:
        self._client = client
        self._location = location
        self._offset = 0
        self._etag: str | None = None
        self._body = self._get()

    def _get(self) -> Any:
        kwargs: dict[str, Any] = {"Bucket": self._location.bucket, "Key": self._location.key}
        if self._offset:
            kwargs["Range"] = f"bytes={self._offset}-"
        if self._etag:
            kwargs["IfMatch"] = self._etag
        try:
            response = self._client.get_object(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot read {self._location}: {_describe(exc)}") from exc
        self._etag = response.get("ETag") or self._etag
        return response["Body"]

    def read(self, size: int) -> bytes:
        failures = 0  # in a row, without a byte read between them
        while True:
            try:
                data = bytes(self._body.read(size))
            except (BotoCoreError, OSError) as exc:
                self.close()
                failures += 1
                if failures > self.RETRIES:
                    raise StorageError(
                        f"cannot read {self._location} past byte {self._offset}: {exc}"
                    ) from exc
                self._body = self._get()
                continue
            self._offset += len(data)
            return data

    def close(self) -> None:
        with contextlib.suppress(BotoCoreError, OSError):
            self._body.close()


def caller_credentials_env() -> dict[str, str]:
    """The caller's resolved AWS credentials as environment variables (empty when none)."""
    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        return {}
    frozen = credentials.get_frozen_credentials()
    env = {
        "AWS_ACCESS_KEY_ID": str(frozen.access_key),
        "AWS_SECRET_ACCESS_KEY": str(frozen.secret_key),
    }
    if frozen.token:
        env["AWS_SESSION_TOKEN"] = frozen.token
    return env


class MissingCredentials(StorageError):
    """No AWS credentials anywhere the standard configuration looks."""


@dataclass(frozen=True)
class AccessReport:
    """What one real request to S3 showed: where it went, as whom, and what it found."""

    endpoint: str
    access_key: str | None
    found: str


def check_access(region: str, bucket: str | None = None) -> AccessReport:
    """One real request with the caller's configuration: ``HeadBucket`` on ``bucket``, else
    ``ListBuckets``. Raises ``StorageError`` with S3's own code and message when it is refused,
    and when the endpoint cannot be reached or no credentials are found. Fails fast: one attempt,
    short timeouts (a health check must not wait out five retries)."""
    custom_endpoint = bool(
        os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    config = Config(
        connect_timeout=5,
        read_timeout=10,
        retries={"max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": "path"} if custom_endpoint else {},
    )
    session = boto3.session.Session()
    client = session.client("s3", region_name=region, config=config)
    credentials = session.get_credentials()
    access_key = credentials.get_frozen_credentials().access_key if credentials else None
    endpoint = str(client.meta.endpoint_url)
    if access_key is None:
        raise MissingCredentials(f"no AWS credentials found (S3 endpoint {endpoint})")
    try:
        if bucket:
            client.head_bucket(Bucket=bucket)
            found = f"bucket {bucket} is there"
        else:
            count = len(client.list_buckets().get("Buckets", []))
            found = f"{count} bucket{'' if count == 1 else 's'}"
    except ClientError as exc:
        # HeadBucket has no body: its 403 and 404 come without S3's code or message.
        code = exc.response.get("Error", {}).get("Code", "")
        if bucket and code in ("403", "404"):
            meaning = {"403": "Forbidden", "404": "NoSuchBucket"}[code]
            raise StorageError(f"HeadBucket {bucket}: {meaning} (HTTP {code})") from exc
        raise StorageError(_describe(exc)) from exc
    except BotoCoreError as exc:
        raise StorageError(_describe(exc)) from exc
    return AccessReport(endpoint, access_key, found)
