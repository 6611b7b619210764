"""Issue 2, point 7: statuses, transitions and timestamps; algorithm failures with the failure
file; problems that are not the algorithm's (missing image, container that cannot start, S3,
Docker unreachable, an output path that cannot be written)."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

import pytest

from tests.support import job_request, run_job, script_job

pytestmark = pytest.mark.docker


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def test_completed_job_transitions_and_times(images: dict[str, str], home: Path) -> None:
    request = script_job(images["busybox"], home, "sleep 1.2; echo done\n")
    result = run_job(home, request)
    assert result.returncode == 0, result.stderr
    d = result.describe
    assert (d["TrainingJobStatus"], d["SecondaryStatus"]) == ("Completed", "Completed")
    assert "FailureReason" not in d
    transitions = d["SecondaryStatusTransitions"]
    assert [(t["Status"], t["StatusMessage"]) for t in transitions] == [
        ("Starting", "Preparing the instances for training"),
        ("Downloading", "Downloading the training image"),
        ("Training", "Training image download completed. Training in progress."),
        ("Uploading", "Uploading generated training model"),
        ("Completed", "Training job completed"),
    ]
    # Contiguous: each entry ends when the next starts; the terminal entry has End == Start.
    for before, after in itertools.pairwise(transitions):
        assert before["EndTime"] == after["StartTime"]
    assert transitions[-1]["EndTime"] == transitions[-1]["StartTime"]
    assert d["CreationTime"] == transitions[0]["StartTime"]
    assert d["TrainingStartTime"] == transitions[0]["EndTime"]
    assert d["TrainingEndTime"] == transitions[-1]["StartTime"]
    seconds = int(_ts(d["TrainingEndTime"]) - _ts(d["TrainingStartTime"]))
    assert d["TrainingTimeInSeconds"] == max(1, seconds) >= 1
    assert d["BillableTimeInSeconds"] == d["TrainingTimeInSeconds"]
    assert d["StoppingCondition"] == {"MaxRuntimeInSeconds": 300}
    assert d["OutputDataConfig"]["CompressionType"] == "GZIP"
    assert d["OutputDataConfig"]["KmsKeyId"] == ""
    assert d["EnableNetworkIsolation"] is False


def test_failed_job_takes_its_reason_from_the_failure_file(
    images: dict[str, str], home: Path
) -> None:
    script = (
        "echo 'loading data'\n"
        "printf 'ValueError: learning_rate must be positive' > /opt/ml/output/failure\n"
        "echo model > /opt/ml/model/partial.bin\n"
        "exit 3\n"
    )
    request = script_job(images["busybox"], home, script)
    result = run_job(home, request)
    assert result.returncode == 1
    d = result.describe
    assert (d["TrainingJobStatus"], d["SecondaryStatus"]) == ("Failed", "Failed")
    assert (
        d["FailureReason"]
        == "AlgorithmError: ValueError: learning_rate must be positive, exit code: 3"
    )
    assert d["SecondaryStatusTransitions"][-1]["Status"] == "Failed"
    assert "TrainingEndTime" in d
    # Artifacts of a job whose container ran are still exported (best effort, spec §6.5).
    produced = home / "output" / request["TrainingJobName"] / "output" / "model.tar.gz"
    assert produced.exists()


def test_failure_without_a_failure_file(images: dict[str, str], home: Path) -> None:
    result = run_job(home, script_job(images["busybox"], home, "exit 7\n"))
    assert result.describe["FailureReason"] == "AlgorithmError: , exit code: 7"


def test_long_failure_reason_is_cut_at_1024_characters(images: dict[str, str], home: Path) -> None:
    script = "i=0; while [ $i -lt 300 ]; do printf 'xxxxxxxxxx' >> /opt/ml/output/failure; i=$((i+1)); done\nexit 1\n"
    result = run_job(home, script_job(images["busybox"], home, script))
    reason = result.describe["FailureReason"]
    assert len(reason) == 1024
    assert reason.startswith("AlgorithmError: xxxxxxxxxx")


def test_missing_image_fails_with_a_client_error(home: Path) -> None:
    request = job_request("trainforge-test/does-not-exist:nope", f"file://{home / 'out'}")
    result = run_job(home, request)
    assert result.returncode == 1
    reason = result.describe["FailureReason"]
    assert reason.startswith("ClientError: The training image trainforge-test/does-not-exist:nope")
    assert "Build it or load it into Docker first" in reason


def test_container_that_cannot_start_fails_with_a_client_error(
    images: dict[str, str], home: Path
) -> None:
    # No ENTRYPOINT and no `train` on PATH: `docker run <image> train` cannot start.
    result = run_job(home, job_request(images["busybox"], f"file://{home / 'out'}"))
    assert result.describe["TrainingJobStatus"] == "Failed"
    reason = result.describe["FailureReason"]
    assert reason.startswith("ClientError: The training container for algo-1 could not start")
    assert "train" in reason


def test_docker_unreachable_fails_with_a_platform_error(images: dict[str, str], home: Path) -> None:
    request = script_job(images["busybox"], home, "echo hi\n")
    result = run_job(home, request, DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert result.describe["TrainingJobStatus"] == "Failed"
    reason = result.describe["FailureReason"]
    assert reason.startswith("InternalServerError: Cannot reach the Docker engine")


def test_output_bucket_missing_fails_with_a_client_error(
    images: dict[str, str], home: Path
) -> None:
    request = script_job(
        images["busybox"],
        home,
        "echo w > /opt/ml/model/w\n",
        output="s3://tf-test-no-such-bucket/out",
    )
    result = run_job(home, request)
    assert result.describe["TrainingJobStatus"] == "Failed"
    reason = result.describe["FailureReason"]
    assert reason.startswith(
        "ClientError: Uploading the model artifacts to s3://tf-test-no-such-bucket/out/"
    )
    assert "NoSuchBucket" in reason


def test_unwritable_output_path_fails_with_the_reason(images: dict[str, str], home: Path) -> None:
    request = script_job(
        images["busybox"],
        home,
        "echo w > /opt/ml/model/w\n",
        output="file:///proc/trainforge-cannot-write",
    )
    result = run_job(home, request)
    assert result.describe["TrainingJobStatus"] == "Failed"
    assert "/proc/trainforge-cannot-write" in result.describe["FailureReason"]
