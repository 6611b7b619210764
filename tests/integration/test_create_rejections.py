"""Issue 2, point 1, through the real `trainforge run`: a bad request is refused with SageMaker's
code and text, nothing runs and nothing is stored; a duplicate name gives ResourceInUse."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import job_request, run_job, script_job, trainforge

pytestmark = pytest.mark.docker


def _containers_of_job(name: str) -> int:
    # Only this job's: other test files run jobs on the same daemon at the same time.
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=trainforge.job={name}"],
        capture_output=True,
        text=True,
    ).stdout
    return len(out.split())


def test_invalid_request_gets_validation_exception_and_nothing_runs(
    images: dict[str, str], home: Path
) -> None:
    request = job_request(images["busybox"], f"file://{home / 'out'}", name="bad_name")
    request["ResourceConfig"]["InstanceType"] = "ml.t9.medium"
    result = run_job(home, request)
    assert result.returncode == 254
    assert result.stdout == ""
    assert (
        "An error occurred (ValidationException) when calling the CreateTrainingJob operation: "
        "2 validation errors detected: Value 'bad_name' at 'trainingJobName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; Value 'ml.t9.medium' at 'resourceConfig.instanceType' "
        "failed to satisfy constraint: Member must satisfy enum value set: ["
    ) in result.stderr
    assert json.loads(trainforge(home, "list", "--json").stdout) == {"TrainingJobSummaries": []}
    assert _containers_of_job("bad_name") == 0


def test_semantic_rule_with_the_observed_text(images: dict[str, str], home: Path) -> None:
    request = job_request(images["busybox"], f"file://{home / 'out'}")
    request["ResourceConfig"]["InstanceGroups"] = [
        {"InstanceType": "ml.m5.large", "InstanceCount": 1, "InstanceGroupName": "g1"}
    ]
    result = run_job(home, request)
    assert result.returncode == 254
    assert "InstanceType or InstanceCount cannot be specified with InstanceGroups" in result.stderr


def test_unreadable_request_file(home: Path) -> None:
    proc = trainforge(home, "run", "--cli-input-json", f"file://{home / 'missing.json'}")
    assert proc.returncode == 254
    assert "Cannot read" in proc.stderr


def test_duplicate_name_gets_resource_in_use(images: dict[str, str], home: Path) -> None:
    request = script_job(images["busybox"], home, "echo once\n")
    first = run_job(home, request)
    assert first.status == "Completed", first.stderr
    second = run_job(home, request)
    assert second.returncode == 254
    arn = first.describe["TrainingJobArn"]
    assert (
        "An error occurred (ResourceInUse) when calling the CreateTrainingJob operation: Training "
        "job names must be unique within an AWS account and region, and a training job with this "
        f"name already exists ({arn})"
    ) in second.stderr
    # The first job's record is untouched.
    describe = json.loads(trainforge(home, "describe", request["TrainingJobName"]).stdout)
    assert describe["TrainingJobStatus"] == "Completed"


def test_describe_of_an_unknown_job(home: Path) -> None:
    proc = trainforge(home, "describe", "no-such-job")
    assert proc.returncode == 254
    assert (
        "An error occurred (ValidationException) when calling the DescribeTrainingJob operation: "
        "Requested resource not found."
    ) in proc.stderr


def test_more_hosts_than_the_machine_can_share_among_are_refused(
    images: dict[str, str], home: Path
) -> None:
    request = job_request(images["busybox"], f"file://{home / 'out'}")
    request["ResourceConfig"]["InstanceCount"] = 100_000
    result = run_job(
        home, request, TRAINFORGE_CAPACITY_CPUS="2", TRAINFORGE_CAPACITY_MEMORY_MIB="24576"
    )
    assert result.returncode == 254
    assert (
        "An error occurred (ResourceLimitExceeded) when calling the CreateTrainingJob operation: "
        "The account-level service limit 'ml.m5.large for training job usage' is 40 Instances"
    ) in result.stderr
    assert not (home / "jobs").exists() or list((home / "jobs").iterdir()) == []
    assert json.loads(trainforge(home, "list", "--json").stdout) == {"TrainingJobSummaries": []}
