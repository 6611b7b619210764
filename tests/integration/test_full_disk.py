"""Issue 7, point 2: a full disk under TRAINFORGE_HOME (a small tmpfs here). The job whose data
cannot fit fails with a reason that says so and the others finish; ended jobs' workspaces are
freed; a job running while the disk is full waits and finishes once space returns, every log
line stored once; a server killed and started again on the full disk serves, Describe and List
answer, and a create is refused with ServiceUnavailable until there is space."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import _remove_containers_of
from tests.server_support import start_server, wait_for_job
from tests.support import channel, code_channel, job_request

pytestmark = pytest.mark.docker

_MiB = 1 << 20


@pytest.fixture
def tiny_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "tiny-home"
    home.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(home)], check=True)
    try:
        yield home
    finally:
        _remove_containers_of(home)
        subprocess.run(["umount", "-l", str(home)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to its last byte."""
    filler = disk / "filler"
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True, check=False
    )
    subprocess.run(["dd", "if=/dev/zero", f"of={disk / 'crumbs'}", "bs=1"], capture_output=True)
    return filler


def script_request(tmp_path: Path, label: str, script: str, **extra: Any) -> dict[str, Any]:
    # The code channel lives outside the small disk: it is mounted, not copied.
    code = code_channel(tmp_path / f"code-{label}-{uuid.uuid4().hex[:6]}", script)
    return job_request(
        extra.pop("image"),
        f"file://{tmp_path}/out",
        name=f"{label}-{uuid.uuid4().hex[:8]}",
        channels=[code, *extra.pop("channels", [])],
        entrypoint=["/bin/sh"],
        arguments=["/opt/ml/input/data/code/train.sh"],
        **extra,
    )


def test_the_job_that_cannot_fit_fails_and_the_others_finish(
    images: dict[str, str], tiny_home: Path, tmp_path: Path, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="big/data.bin", Body=b"\0" * (64 * _MiB))
    server = start_server(tiny_home)
    with server:
        sm = server.client("sagemaker")
        big = script_request(
            tmp_path,
            "big",
            "echo never\n",
            image=images["busybox"],
            channels=[channel("train", f"s3://{bucket}/big/")],
        )
        smalls = [
            script_request(
                tmp_path,
                f"small{i}",
                "head -c 1048576 /dev/zero > /opt/ml/model/weights.bin\necho done\n",
                image=images["busybox"],
            )
            for i in range(3)
        ]
        for request in (big, *smalls):
            sm.create_training_job(**request)
        failed = wait_for_job(sm, big["TrainingJobName"], timeout=120)
        assert failed["TrainingJobStatus"] == "Failed"
        assert failed["FailureReason"].startswith(
            "ClientError: Data download failed: the input data of channel 'train' needs 64.0 MiB "
            "and the disk that holds "
        )
        for request in smalls:
            done = wait_for_job(sm, request["TrainingJobName"], timeout=120)
            assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
        # Every ended job's workspace is gone.
        deadline = time.monotonic() + 10
        while list((tiny_home / "jobs").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list((tiny_home / "jobs").iterdir()) == []

        # Killed on a full disk, the server starts again and serves what it has.
        filler = fill(tiny_home)
        server.stop(signal.SIGKILL)
        server.start()
        sm = server.client("sagemaker")
        assert (
            sm.describe_training_job(TrainingJobName=big["TrainingJobName"])["TrainingJobStatus"]
            == "Failed"
        )
        listed = sm.list_training_jobs(MaxResults=10)["TrainingJobSummaries"]
        assert len(listed) == 4
        late = script_request(tmp_path, "late", "echo late\n", image=images["busybox"])
        with pytest.raises(ClientError) as refused:
            sm.create_training_job(**late)
        assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        filler.unlink()
        (tiny_home / "crumbs").unlink()
        sm.create_training_job(**late)
        assert wait_for_job(sm, late["TrainingJobName"])["TrainingJobStatus"] == "Completed"


# The container prints when the test says so (the disk is full by then), and writes its model
# once the test says there is space again.
CHATTY = (
    "until [ -e /opt/ml/input/data/code/print ]; do sleep 0.05; done\n"
    "for i in $(seq 1 30); do echo line $i; done\n"
    "until [ -e /opt/ml/input/data/code/go ]; do sleep 0.05; done\n"
    "echo saved > /opt/ml/model/model.txt\n"
)


def messages(logs: Any, name: str) -> list[str]:
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name + "/"
    )["logStreams"]
    if not streams:
        return []
    events = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName=streams[0]["logStreamName"],
        startFromHead=True,
    )["events"]
    return [e["message"] for e in events]


def test_a_job_running_while_the_disk_is_full_waits_and_loses_no_line(
    images: dict[str, str], tiny_home: Path, tmp_path: Path
) -> None:
    server = start_server(tiny_home)
    with server:
        sm, logs = server.client("sagemaker"), server.client("logs")
        request = script_request(tmp_path, "chatty", CHATTY, image=images["busybox"])
        name = request["TrainingJobName"]
        sm.create_training_job(**request)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Training":
                break
            time.sleep(0.05)
        code = Path(request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"][7:])
        filler = fill(tiny_home)
        (code / "print").touch()
        time.sleep(3)
        # Nothing could be stored, nothing failed, and the API still reads.
        assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
        assert messages(logs, name) == []
        filler.unlink()
        (tiny_home / "crumbs").unlink()
        (code / "go").touch()
        done = wait_for_job(sm, name, timeout=90)
        assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
        assert messages(logs, name) == [f"line {i}" for i in range(1, 31)]
