"""Where data lives: an S3 URI (any S3-compatible endpoint) or a local path, parsed once.

Accepted forms: ``s3://bucket/key``, ``https://bucket.s3[.region].amazonaws.com/key``,
``https://s3[.region].amazonaws.com/bucket/key``, ``file:///abs/path`` and ``/abs/path``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from trainforge.errors import TrainforgeError


class Scheme(enum.StrEnum):
    S3 = "s3"
    FILE = "file"


@dataclass(frozen=True)
class Location:
    scheme: Scheme
    bucket: str
    key: str

    @property
    def is_local(self) -> bool:
        return self.scheme is Scheme.FILE

    @property
    def path(self) -> str:
        """The local path of a file location."""
        return self.key

    def child(self, suffix: str) -> Location:
        """This location joined with ``suffix`` by exactly one slash."""
        base = self.key.rstrip("/")
        joined = f"{base}/{suffix.lstrip('/')}" if base else suffix.lstrip("/")
        if self.is_local and not joined.startswith("/"):
            joined = "/" + joined
        return Location(self.scheme, self.bucket, joined)

    def __str__(self) -> str:
        if self.is_local:
            return f"file://{self.key}"
        return f"s3://{self.bucket}/{self.key}"


class BadLocation(TrainforgeError, ValueError):
    """Not an S3 URI or a local path that a channel or an output can use."""


def parse_location(uri: str) -> Location:
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket:
            raise BadLocation(f"no bucket in {uri!r}")
        return Location(Scheme.S3, bucket, key)
    if uri.startswith("file://"):
        path = unquote(uri[len("file://") :])
        if not path.startswith("/"):
            raise BadLocation(f"a file:// URI needs an absolute path: {uri!r}")
        return Location(Scheme.FILE, "", path)
    if uri.startswith("/"):
        return Location(Scheme.FILE, "", uri)
    if uri.startswith("https://"):
        parts = urlsplit(uri)
        host = parts.hostname or ""
        path = unquote(parts.path.lstrip("/"))
        if host == "s3.amazonaws.com" or (
            host.startswith("s3.") and host.endswith(".amazonaws.com")
        ):
            bucket, _, key = path.partition("/")
            if bucket:
                return Location(Scheme.S3, bucket, key)
        elif ".s3." in host and host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
            return Location(Scheme.S3, host.split(".s3.", 1)[0], path)
        raise BadLocation(f"not an S3 URL: {uri!r}")
    raise BadLocation(f"not an S3 URI or an absolute local path: {uri!r}")
