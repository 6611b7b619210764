"""storage.location: the accepted forms of an S3 URI or a local path, and child()."""

from __future__ import annotations

import pytest

from trainforge.storage.location import BadLocation, Location, Scheme, parse_location


@pytest.mark.parametrize(
    ("uri", "scheme", "bucket", "key"),
    [
        ("s3://bucket/a/b.csv", Scheme.S3, "bucket", "a/b.csv"),
        ("s3://bucket/prefix/", Scheme.S3, "bucket", "prefix/"),
        ("s3://bucket", Scheme.S3, "bucket", ""),
        ("s3://bucket/", Scheme.S3, "bucket", ""),
        ("s3://my.dotted.bucket/k", Scheme.S3, "my.dotted.bucket", "k"),
        ("https://bucket.s3.amazonaws.com/a/b", Scheme.S3, "bucket", "a/b"),
        ("https://bucket.s3.us-west-2.amazonaws.com/a/b", Scheme.S3, "bucket", "a/b"),
        ("https://my.bucket.s3.eu-west-1.amazonaws.com/k", Scheme.S3, "my.bucket", "k"),
        ("https://bucket.s3.amazonaws.com/a%20b", Scheme.S3, "bucket", "a b"),
        ("https://s3.amazonaws.com/bucket/a/b", Scheme.S3, "bucket", "a/b"),
        ("https://s3.eu-west-1.amazonaws.com/bucket/a/b", Scheme.S3, "bucket", "a/b"),
        ("https://s3.eu-west-1.amazonaws.com/bucket", Scheme.S3, "bucket", ""),
        ("file:///data/train", Scheme.FILE, "", "/data/train"),
        ("file:///data/with%20space/", Scheme.FILE, "", "/data/with space/"),
        ("/data/train", Scheme.FILE, "", "/data/train"),
        ("/", Scheme.FILE, "", "/"),
    ],
)
def test_accepted_forms(uri: str, scheme: Scheme, bucket: str, key: str) -> None:
    assert parse_location(uri) == Location(scheme, bucket, key)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://", "no bucket in 's3://'"),
        ("s3:///key", "no bucket in 's3:///key'"),
        ("file://relative/path", "a file:// URI needs an absolute path: 'file://relative/path'"),
        ("file://", "a file:// URI needs an absolute path: 'file://'"),
        ("https://s3.amazonaws.com/", "not an S3 URL: 'https://s3.amazonaws.com/'"),
        ("https://example.com/bucket/key", "not an S3 URL: 'https://example.com/bucket/key'"),
        ("relative/path", "not an S3 URI or an absolute local path: 'relative/path'"),
        ("", "not an S3 URI or an absolute local path: ''"),
        (
            "http://bucket.s3.amazonaws.com/k",
            "not an S3 URI or an absolute local path: 'http://bucket.s3.amazonaws.com/k'",
        ),
        ("S3://bucket/k", "not an S3 URI or an absolute local path: 'S3://bucket/k'"),
    ],
)
def test_refused_forms(uri: str, message: str) -> None:
    with pytest.raises(BadLocation) as info:
        parse_location(uri)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_non_aws_host_with_s3_label_is_refused() -> None:
    with pytest.raises(BadLocation):
        parse_location("https://bucket.s3.example.com/key")


def test_str_and_is_local() -> None:
    s3 = parse_location("s3://bucket/a/b")
    local = parse_location("file:///data/x")
    assert str(s3) == "s3://bucket/a/b"
    assert str(local) == "file:///data/x"
    assert str(parse_location("/data/x")) == "file:///data/x"
    assert not s3.is_local
    assert local.is_local
    assert local.path == "/data/x"


@pytest.mark.parametrize(
    ("uri", "suffix", "expected"),
    [
        ("s3://b/out", "job/output", Location(Scheme.S3, "b", "out/job/output")),
        ("s3://b/out/", "job/output", Location(Scheme.S3, "b", "out/job/output")),
        ("s3://b/out//", "/job/output", Location(Scheme.S3, "b", "out/job/output")),
        ("s3://b/out", "model/", Location(Scheme.S3, "b", "out/model/")),
        ("s3://b", "model.tar.gz", Location(Scheme.S3, "b", "model.tar.gz")),
        ("s3://b/", "/model.tar.gz", Location(Scheme.S3, "b", "model.tar.gz")),
        ("/data/out", "job", Location(Scheme.FILE, "", "/data/out/job")),
        ("/data/out/", "/job", Location(Scheme.FILE, "", "/data/out/job")),
        ("/", "job/output", Location(Scheme.FILE, "", "/job/output")),
    ],
)
def test_child_joins_with_one_slash(uri: str, suffix: str, expected: Location) -> None:
    assert parse_location(uri).child(suffix) == expected
