"""Issue 7, points 3 and 4: inputs that try to leave the job's directory or read the server's
files. A channel named ``..`` or ``.`` is refused at create time with a ValidationException that
names the field; a manifest fetched from S3 may only name objects of its own bucket, never
local files; a local manifest (given by the requester) may still name local files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import channel, log_messages, run_job, script_job

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("name", ["..", "."])
def test_dot_channel_names_are_refused_naming_the_field(
    images: dict[str, str], home: Path, bucket: str, s3: Any, name: str
) -> None:
    s3.put_object(Bucket=bucket, Key="in/hyperparameters.json", Body=b'{"evil": "1"}')
    request = script_job(images["busybox"], home, "cat /opt/ml/input/config/hyperparameters.json\n")
    request["InputDataConfig"].append(channel(name, f"s3://{bucket}/in/"))
    result = run_job(home, request)
    assert result.returncode == 254, result.stderr
    assert "ValidationException" in result.stderr
    assert f"Value '{name}' at 'inputDataConfig.2.member.channelName'" in result.stderr
    assert not (home / "jobs" / str(request["TrainingJobName"])).exists()


@pytest.mark.parametrize(
    ("prefix", "entry"),
    [("file:///etc/", "passwd"), ("s3://someone-elses-bucket/data/", "a.csv")],
)
def test_a_manifest_from_s3_names_only_its_own_bucket(
    images: dict[str, str], home: Path, bucket: str, s3: Any, prefix: str, entry: str
) -> None:
    manifest = [{"prefix": prefix}, entry]
    s3.put_object(Bucket=bucket, Key="m/train.manifest", Body=json.dumps(manifest).encode())
    request = script_job(
        images["busybox"],
        home,
        f"cat /opt/ml/input/data/train/{entry}\n",
        channels=[channel("train", f"s3://{bucket}/m/train.manifest", data_type="ManifestFile")],
    )
    result = run_job(home, request)
    assert result.status == "Failed", result.stderr
    assert result.describe["FailureReason"] == (
        f"ClientError: Data download failed: the manifest prefix {prefix} is not in the "
        f"manifest's bucket {bucket}."
    )
    assert not any("root:" in line for line in log_messages(home, request["TrainingJobName"]))


def test_a_local_manifest_may_name_local_files(images: dict[str, str], home: Path) -> None:
    data = home / "pool"
    (data / "sub").mkdir(parents=True)
    (data / "one.txt").write_text("1")
    (data / "sub" / "two.txt").write_text("2")
    manifest = home / "train.manifest"
    manifest.write_text(json.dumps([{"prefix": f"file://{data}/"}, "one.txt", "sub/two.txt"]))
    request = script_job(
        images["busybox"],
        home,
        "cat /opt/ml/input/data/train/one.txt /opt/ml/input/data/train/sub/two.txt; echo\n",
        channels=[channel("train", f"file://{manifest}", data_type="ManifestFile")],
    )
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    assert log_messages(home, request["TrainingJobName"]) == ["12"]
