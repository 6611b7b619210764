"""Issue 2, point 5: File-mode channels from a real S3 endpoint (moto's server mode over HTTP)
and from local paths, the key → path rules of spec §7.2, manifests, sharding, which data is read-only, and
the seed's own pattern (a script delivered through an S3 channel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import channel, job_request, log_messages, run_job, script_job, trainforge

pytestmark = pytest.mark.docker

LIST_SCRIPT = 'cd /opt/ml/input/data/{ch} && find . -type f | sort | while read f; do echo "$f $(cat $f)"; done\n'


def _put(s3: object, bucket: str, objects: dict[str, str]) -> None:
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("data/", ["./a/b.csv B", "./top.csv T", "./train-data.csv P", "./train/x.csv X"]),
        ("data/train", ["./train-data.csv P", "./x.csv X"]),
        ("data/top.csv", ["./top.csv T"]),
    ],
    ids=["prefix-with-slash", "prefix-continued-by-slash-and-partial-name", "single-object"],
)
def test_s3_prefix_key_to_path_rules(
    images: dict[str, str], home: Path, bucket: str, s3: object, prefix: str, expected: list[str]
) -> None:
    _put(
        s3,
        bucket,
        {
            "data/": "",
            "data/a/": "",
            "data/a/b.csv": "B",
            "data/top.csv": "T",
            "data/train/x.csv": "X",
            "data/train-data.csv": "P",
        },
    )
    request = script_job(
        images["busybox"],
        home,
        LIST_SCRIPT.format(ch="train"),
        channels=[channel("train", f"s3://{bucket}/{prefix}")],
    )
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    assert log_messages(home, request["TrainingJobName"]) == expected


def test_seed_pattern_script_delivered_through_an_s3_channel(
    images: dict[str, str], home: Path, bucket: str, s3: object
) -> None:
    _put(
        s3,
        bucket,
        {
            "code/custom_entrypoint.sh": 'echo "seed pattern ran as $0"\ncp /opt/ml/input/data/code/custom_entrypoint.sh /opt/ml/model/\n',
        },
    )
    request = job_request(
        images["busybox"],
        f"s3://{bucket}/output",
        channels=[channel("code", f"s3://{bucket}/code")],
        entrypoint=["/bin/sh"],
        arguments=["/opt/ml/input/data/code/custom_entrypoint.sh"],
    )
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    assert log_messages(home, request["TrainingJobName"]) == [
        "seed pattern ran as /opt/ml/input/data/code/custom_entrypoint.sh"
    ]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="output/")["Contents"]]  # type: ignore[attr-defined]
    assert keys == [f"output/{request['TrainingJobName']}/output/model.tar.gz"]


def test_manifest_file_channel(images: dict[str, str], home: Path, bucket: str, s3: object) -> None:
    _put(s3, bucket, {"pool/one.txt": "1", "pool/sub/two.txt": "2", "pool/unlisted.txt": "x"})
    manifest = [{"prefix": f"s3://{bucket}/pool/"}, "one.txt", "sub/two.txt"]
    _put(s3, bucket, {"manifests/train.manifest": json.dumps(manifest)})
    request = script_job(
        images["busybox"],
        home,
        LIST_SCRIPT.format(ch="train"),
        channels=[
            channel("train", f"s3://{bucket}/manifests/train.manifest", data_type="ManifestFile")
        ],
    )
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    assert log_messages(home, request["TrainingJobName"]) == ["./one.txt 1", "./sub/two.txt 2"]


WRITE_SCRIPT = (
    "if (echo x > /opt/ml/input/data/train/new.txt) 2>/dev/null; then echo WRITABLE; else echo READ-ONLY; fi\n"
    "if rm /opt/ml/input/data/train/a.csv 2>/dev/null; then echo DELETED; else echo KEPT; fi\n"
)


def test_local_channel_is_mounted_read_only_without_a_copy(
    images: dict[str, str], home: Path
) -> None:
    data = home / "user-data"
    data.mkdir()
    (data / "a.csv").write_text("1\n")
    request = script_job(
        images["busybox"], home, WRITE_SCRIPT, channels=[channel("train", f"file://{data}")]
    )
    result = run_job(home, request, TRAINFORGE_KEEP_WORKSPACES="true")
    assert result.status == "Completed", result.stderr
    assert log_messages(home, request["TrainingJobName"]) == ["READ-ONLY", "KEPT"]
    assert sorted(p.name for p in data.iterdir()) == ["a.csv"]
    workspace = home / "jobs" / request["TrainingJobName"]
    assert (workspace / "hosts" / "algo-1" / "input" / "config" / "resourceconfig.json").exists()
    assert not any(workspace.rglob("a.csv")), "a local channel must not be copied"


def test_single_file_local_channel_mounts_only_that_file(
    images: dict[str, str], home: Path
) -> None:
    data = home / "folder"
    data.mkdir()
    (data / "wanted.csv").write_text("w\n")
    (data / "private.txt").write_text("p\n")
    request = script_job(
        images["busybox"],
        home,
        "ls /opt/ml/input/data/train\n",
        channels=[channel("train", str(data / "wanted.csv"))],
    )
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    assert log_messages(home, request["TrainingJobName"]) == ["wanted.csv"]


# Each host writes a file of its name into the channel, then lists it. Were the copy shared,
# whichever host lists last would see the other's file too (the other wrote before it listed).
OWN_COPY_SCRIPT = (
    "if (echo x > /opt/ml/input/data/train/$(hostname).txt) 2>/dev/null; then "
    'echo "$(hostname) WRITABLE"; else echo "$(hostname) READ-ONLY"; fi\n'
    "echo \"$(hostname) seen $(ls /opt/ml/input/data/train | tr '\\n' ' ')\"\n"
)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "File",
            [
                "algo-1 WRITABLE",
                "algo-1 seen a.csv algo-1.txt ",
                "algo-2 WRITABLE",
                "algo-2 seen a.csv algo-2.txt ",
            ],
        ),
        (
            "FastFile",
            ["algo-1 READ-ONLY", "algo-1 seen a.csv ", "algo-2 READ-ONLY", "algo-2 seen a.csv "],
        ),
    ],
)
def test_an_s3_channel_is_each_hosts_own_writable_copy_in_file_mode_read_only_in_fastfile(
    images: dict[str, str], home: Path, bucket: str, s3: object, mode: str, expected: list[str]
) -> None:
    # As on SageMaker's instances, where the SDK v3's ModelTrainer chmods its driver script in
    # its sm_drivers channel; FastFile's streamed view is read-only there.
    _put(s3, bucket, {f"{mode}/a.csv": "1"})
    request = script_job(
        images["busybox"],
        home,
        OWN_COPY_SCRIPT,
        channels=[channel("train", f"s3://{bucket}/{mode}/", InputMode=mode)],
    )
    request["ResourceConfig"]["InstanceCount"] = 2
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    lines = log_messages(home, request["TrainingJobName"])
    assert sorted(line.split(" | ", 1)[-1] for line in lines) == expected, lines


def test_sharded_by_s3_key_splits_objects_across_hosts(
    images: dict[str, str], home: Path, bucket: str, s3: object
) -> None:
    _put(s3, bucket, {f"shards/part-{i}.csv": str(i) for i in range(5)})
    request = script_job(
        images["busybox"],
        home,
        "echo \"$(hostname): $(ls /opt/ml/input/data/train | tr '\\n' ' ')\"\n",
        channels=[channel("train", f"s3://{bucket}/shards/", distribution="ShardedByS3Key")],
    )
    request["ResourceConfig"]["InstanceCount"] = 2
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    lines = sorted(
        line.split(" | ", 1)[-1] for line in log_messages(home, request["TrainingJobName"])
    )
    assert lines == [
        "algo-1: part-0.csv part-2.csv part-4.csv ",
        "algo-2: part-1.csv part-3.csv ",
    ]


def test_empty_prefix_is_refused_at_create_with_sagemakers_text(
    images: dict[str, str], home: Path, bucket: str
) -> None:
    request = job_request(
        images["busybox"],
        f"file://{home / 'out'}",
        channels=[channel("train", f"s3://{bucket}/nothing-here/")],
    )
    result = run_job(home, request)
    assert result.returncode == 254
    assert (
        "An error occurred (ValidationException) when calling the CreateTrainingJob operation: "
        f'No S3 objects found under S3 URL "s3://{bucket}/nothing-here/" given in input data '
        "source. Please ensure that the bucket exists in the selected region (us-east-1), that "
        "objects exist under that S3 prefix, and that the role "
        '"arn:aws:iam::000000000000:role/trainforge-test" has "s3:ListBucket" permissions on '
        f'bucket "{bucket}".'
    ) in result.stderr
    # Nothing ran and nothing was recorded.
    assert trainforge(home, "list", "--json").stdout.count("TrainingJobName") == 0


def test_missing_local_path_is_refused_at_create(images: dict[str, str], home: Path) -> None:
    request = job_request(
        images["busybox"],
        f"file://{home / 'out'}",
        channels=[channel("train", f"file://{home / 'absent'}")],
    )
    result = run_job(home, request)
    assert result.returncode == 254
    assert "ValidationException" in result.stderr
    assert str(home / "absent") in result.stderr


def test_unreachable_s3_is_a_validation_error_that_says_why(
    images: dict[str, str], home: Path
) -> None:
    request = job_request(
        images["busybox"],
        f"file://{home / 'out'}",
        channels=[channel("train", "s3://some-bucket/train/")],
    )
    result = run_job(home, request, AWS_ENDPOINT_URL_S3="http://127.0.0.1:9")
    assert result.returncode == 254
    assert (
        "An error occurred (ValidationException) when calling the CreateTrainingJob operation: "
        in result.stderr
    )
    assert (
        'Cannot read the input data of channel "train" at "s3://some-bucket/train/"'
        in result.stderr
    )
    assert "AWS_ENDPOINT_URL_S3" in result.stderr
