"""runtime.staging: where an S3 key lands in the channel (spec §7.2), refusing keys that would
escape the channel directory, and ShardedByS3Key."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainforge.errors import Fault, JobFailure
from trainforge.runtime.selection import shard
from trainforge.runtime.staging import no_objects_message, relative_path, safe_destination
from trainforge.runtime.workspace import channel_directory


@pytest.mark.parametrize(
    ("prefix", "key", "expected"),
    [
        # 1. Prefix ending in "/": the rest of the key.
        ("data/train/", "data/train/a.csv", "a.csv"),
        ("data/train/", "data/train/sub/b.csv", "sub/b.csv"),
        # 2. The key continues the prefix with "/".
        ("data/train", "data/train/a.csv", "a.csv"),
        ("data/train", "data/train/sub/deep/b.csv", "sub/deep/b.csv"),
        # 3. The key is the prefix: the object's own name.
        ("data/train.csv", "data/train.csv", "train.csv"),
        ("train.csv", "train.csv", "train.csv"),
        # 4. A partial name match keeps the matched name whole.
        ("data/train", "data/training/x.csv", "training/x.csv"),
        ("data/train", "data/train2.csv", "train2.csv"),
        ("data/tr", "data/train/x.csv", "train/x.csv"),
        ("tr", "train.csv", "train.csv"),
        ("tr", "train/x.csv", "train/x.csv"),
        # Empty prefix: the whole key.
        ("", "a/b.csv", "a/b.csv"),
        ("", "top.csv", "top.csv"),
    ],
)
def test_relative_path(prefix: str, key: str, expected: str) -> None:
    assert relative_path(prefix, key) == expected


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        ("data/train/", "data/train/"),
        ("data/train/", "data/train/sub/"),
        ("data/train", "data/train/sub/"),
        ("data/tr", "data/train/"),
        ("", "folder/"),
    ],
)
def test_folder_markers_are_skipped(prefix: str, key: str) -> None:
    assert relative_path(prefix, key) is None


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("a.csv", "a.csv"),
        ("sub/b.csv", "sub/b.csv"),
        ("sub/./b.csv", "sub/b.csv"),
        ("sub//b.csv", "sub/b.csv"),
        ("sub/../b.csv", "b.csv"),
        ("..data", "..data"),
        ("a/..b", "a/..b"),
    ],
)
def test_safe_destination_inside(tmp_path: Path, relative: str, expected: str) -> None:
    assert safe_destination(tmp_path, relative) == tmp_path / expected


@pytest.mark.parametrize(
    "relative",
    ["", ".", "..", "../x", "../../etc/passwd", "a/../../x", "a/..", "/etc/passwd", "//x", "./"],
)
def test_safe_destination_refuses_escapes(tmp_path: Path, relative: str) -> None:
    with pytest.raises(JobFailure) as info:
        safe_destination(tmp_path, relative)
    assert info.value.fault is Fault.CLIENT
    assert info.value.reason == (
        f"Data download failed: the object key part {relative!r} would be written outside the "
        "channel directory."
    )
    assert info.value.failure_reason.startswith("ClientError: Data download failed: ")


def test_relative_path_then_safe_destination_refuses_a_traversing_key(tmp_path: Path) -> None:
    rel = relative_path("data/", "data/../../outside.txt")
    assert rel == "../../outside.txt"
    with pytest.raises(JobFailure):
        safe_destination(tmp_path, rel)


def test_shard_round_robin_in_key_order() -> None:
    keys = [f"k{i}" for i in range(7)]
    assert shard(keys, 1, 3) == ["k0", "k3", "k6"]
    assert shard(keys, 2, 3) == ["k1", "k4"]
    assert shard(keys, 3, 3) == ["k2", "k5"]
    assert shard(keys, 1, 1) == keys
    assert shard(keys, 4, 8) == ["k3"]
    assert shard(keys, 8, 8) == []
    assert shard([], 1, 2) == []
    parts = [shard(keys, i, 4) for i in range(1, 5)]
    assert sorted(k for part in parts for k in part) == sorted(keys)


def test_no_objects_message() -> None:
    assert no_objects_message(
        "s3://bucket/train/", "us-east-1", "arn:aws:iam::000000000000:role/r", "bucket"
    ) == (
        'No S3 objects found under S3 URL "s3://bucket/train/" given in input data source. '
        "Please ensure that the bucket exists in the selected region (us-east-1), that objects "
        'exist under that S3 prefix, and that the role "arn:aws:iam::000000000000:role/r" has '
        '"s3:ListBucket" permissions on bucket "bucket".'
    )


def test_a_channel_directory_never_leaves_its_parent(tmp_path: Path) -> None:
    assert channel_directory(tmp_path, "train") == tmp_path / "train"
    for name in ("..", ".", "", "a/b", "../x"):
        with pytest.raises(JobFailure, match="names no directory of its own"):
            channel_directory(tmp_path, name)
