"""Issue 2, point 6: model.tar.gz, output.tar.gz and CompressionType NONE, to S3 and to local
paths, and the symlinks a container may leave that must never make trainforge read or write
outside the job's workspace."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.support import run_job, script_job

pytestmark = pytest.mark.docker

MODEL_SCRIPT = (
    "mkdir -p /opt/ml/model/nested/deeper\n"
    "echo weights > /opt/ml/model/weights.bin\n"
    "echo config > /opt/ml/model/nested/deeper/config.json\n"
)


def _members(data: bytes) -> dict[str, bytes | str | None]:
    out: dict[str, bytes | str | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                fh = tar.extractfile(member)
                assert fh is not None
                out[member.name] = fh.read()
            elif member.issym():
                out[member.name] = "->" + member.linkname
            else:
                out[member.name] = None
    return out


def test_model_and_output_archives_to_s3(
    images: dict[str, str], home: Path, bucket: str, s3: object
) -> None:
    script = MODEL_SCRIPT + "echo '{\"acc\": 1}' > /opt/ml/output/data/metrics.json\n"
    request = script_job(images["busybox"], home, script, output=f"s3://{bucket}/results/")
    name = request["TrainingJobName"]
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    model_key = f"results/{name}/output/model.tar.gz"
    assert result.describe["ModelArtifacts"] == {"S3ModelArtifacts": f"s3://{bucket}/{model_key}"}
    body = s3.get_object(Bucket=bucket, Key=model_key)["Body"].read()  # type: ignore[attr-defined]
    # Contents of /opt/ml/model, no leading directory.
    assert _members(body) == {
        "nested": None,
        "nested/deeper": None,
        "nested/deeper/config.json": b"config\n",
        "weights.bin": b"weights\n",
    }
    output = s3.get_object(Bucket=bucket, Key=f"results/{name}/output/output.tar.gz")["Body"].read()  # type: ignore[attr-defined]
    assert _members(output) == {"metrics.json": b'{"acc": 1}\n'}


def test_no_output_archive_when_output_data_is_empty(images: dict[str, str], home: Path) -> None:
    request = script_job(images["busybox"], home, MODEL_SCRIPT, output=f"file://{home / 'out'}")
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    # The job's host directories are gone once it has ended, as an instance's storage is.
    assert (home / "jobs").exists()
    assert not (home / "jobs" / request["TrainingJobName"]).exists()
    produced = home / "out" / request["TrainingJobName"] / "output"
    assert sorted(p.name for p in produced.iterdir()) == ["model.tar.gz"]
    assert _members((produced / "model.tar.gz").read_bytes())["weights.bin"] == b"weights\n"


def test_compression_none_uploads_files_under_model_prefix(
    images: dict[str, str], home: Path, bucket: str, s3: object
) -> None:
    request = script_job(images["busybox"], home, MODEL_SCRIPT, output=f"s3://{bucket}/plain")
    request["OutputDataConfig"]["CompressionType"] = "NONE"
    name = request["TrainingJobName"]
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    prefix = f"plain/{name}/output/model/"
    assert result.describe["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{bucket}/{prefix}"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]  # type: ignore[attr-defined]
    assert sorted(o["Key"][len(prefix) :] for o in listed) == [
        "nested/deeper/config.json",
        "weights.bin",
    ]


def test_symlinks_never_lead_outside_the_workspace(images: dict[str, str], home: Path) -> None:
    secret = home / "host-secret.txt"
    secret.write_text("host secret\n")
    script = (
        "echo real > /opt/ml/model/real.txt\n"
        f"ln -s {secret} /opt/ml/model/host-path-link\n"
        "ln -s /etc/passwd /opt/ml/model/passwd-link\n"
        "ln -s ../../../../../../../../ /opt/ml/model/escape\n"
        "ln -s /opt/ml/model/real.txt /opt/ml/model/inner-link\n"
        # Replace output/data by a link to the root of the filesystem.
        "rm -rf /opt/ml/output/data && ln -s / /opt/ml/output/data\n"
        "ln -s /etc/shadow /opt/ml/output/failure\n"
    )
    request = script_job(images["busybox"], home, script, output=f"file://{home / 'out'}")
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    produced = home / "out" / request["TrainingJobName"] / "output"
    members = _members((produced / "model.tar.gz").read_bytes())
    assert members == {
        "escape": "->../../../../../../../../",
        "host-path-link": f"->{secret}",
        "inner-link": "->/opt/ml/model/real.txt",
        "passwd-link": "->/etc/passwd",
        "real.txt": b"real\n",
    }
    assert not (produced / "output.tar.gz").exists()
    assert secret.read_text() == "host secret\n"


def test_failure_file_that_is_a_symlink_is_not_followed(images: dict[str, str], home: Path) -> None:
    secret = home / "secret"
    secret.write_text("do not leak")
    script = f"ln -s {secret} /opt/ml/output/failure\nexit 4\n"
    request = script_job(images["busybox"], home, script)
    result = run_job(home, request)
    assert result.status == "Failed"
    assert result.describe["FailureReason"] == "AlgorithmError: , exit code: 4"


def test_artifacts_of_two_hosts_are_merged(images: dict[str, str], home: Path) -> None:
    script = "echo $(hostname) > /opt/ml/model/$(hostname).txt\necho $(hostname) > /opt/ml/model/shared.txt\n"
    request = script_job(images["busybox"], home, script, output=f"file://{home / 'out'}")
    request["ResourceConfig"]["InstanceCount"] = 2
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    archive = home / "out" / request["TrainingJobName"] / "output" / "model.tar.gz"
    members = _members(archive.read_bytes())
    assert members["algo-1.txt"] == b"algo-1\n"
    assert members["algo-2.txt"] == b"algo-2\n"
    # On a name clash the last host's copy wins (spec §6.2).
    assert members["shared.txt"] == b"algo-2\n"
