"""What a job shows while it runs, with real containers and a real S3 endpoint: checkpoints,
TensorBoard, debugger and profiler output reach S3 as they are written (a deletion too), their
config files are in /opt/ml/input/config, a container killed with SIGKILL leaves every
checkpoint written before in S3, the MetricDefinitions of the job become its
FinalMetricDataList, and its host's instance metrics are sampled."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import script_job, start_trainforge, trainforge, write_request
from trainforge.domain.metrics import MetricSource
from trainforge.store.db import Database
from trainforge.store.metrics import MetricStore

pytestmark = pytest.mark.docker

_SCRIPT = """\
set -e
for f in checkpointconfig tensorboardoutputconfig debughookconfig profilerconfig; do
    echo "config $f $(cat /opt/ml/input/config/$f.json)"
done
echo first > /opt/ml/checkpoints/old.ckpt
mkdir -p /opt/ml/checkpoints/epoch-1
echo second > /opt/ml/checkpoints/epoch-1/model.ckpt
echo events > /opt/ml/output/tensorboard/events.out.tfevents
echo tensor > /opt/ml/output/tensors/step-1.json
echo trace > /opt/ml/output/profiler/trace.json
echo "epoch=1 loss=0.75"
printf 'epoch=2\\tloss=0.5\\n'
echo "epoch=3 loss=nonsense"
i=0; while [ ! -e /opt/ml/output/go ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
rm /opt/ml/checkpoints/old.ckpt
echo third > /opt/ml/checkpoints/new.ckpt
echo "epoch=4 loss=0.25"
sleep 600
"""


def _keys(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        o["Key"][len(prefix) :]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in found
    }


def _wait(what: str, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def _describe(home: Path, name: str) -> dict[str, Any]:
    proc = trainforge(home, "describe", name)
    return dict(json.loads(proc.stdout)) if proc.returncode == 0 else {}


def test_synced_directories_reach_s3_while_the_job_runs_and_survive_a_sigkill(
    images: dict[str, str], home: Path, s3: Any, bucket: str
) -> None:
    out = f"s3://{bucket}/runs"
    request = script_job(
        images["busybox"],
        home,
        _SCRIPT,
        output=out,
        CheckpointConfig={"S3Uri": f"s3://{bucket}/ckpt/"},
        TensorBoardOutputConfig={"S3OutputPath": f"s3://{bucket}/tb"},
        DebugHookConfig={
            "S3OutputPath": f"s3://{bucket}/debug",
            "HookParameters": {"save_interval": "10"},
        },
        ProfilerConfig={"S3OutputPath": f"s3://{bucket}/prof"},
    )
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:loss", "Regex": r"loss=([^\s]+)"},
        {"Name": "epoch", "Regex": r"epoch=(\d+)#011"},
    ]
    name = str(request["TrainingJobName"])
    run = start_trainforge(
        home,
        "run",
        "--cli-input-json",
        f"file://{write_request(home, request)}",
        TRAINFORGE_INSTANCE_METRICS_SECONDS="0.5",
    )
    try:
        expected = {
            "ckpt/": {"old.ckpt": b"first\n", "epoch-1/model.ckpt": b"second\n"},
            f"tb/{name}/tensorboard-output/": {"events.out.tfevents": b"events\n"},
            f"debug/{name}/debug-output/": {"step-1.json": b"tensor\n"},
            f"prof/{name}/profiler-output/": {"trace.json": b"trace\n"},
        }
        for prefix, files in expected.items():
            _wait(
                f"{prefix} holds {sorted(files)}",
                lambda p=prefix, f=files: _keys(s3, bucket, p) == f,  # type: ignore[misc]
            )
        assert _describe(home, name)["TrainingJobStatus"] == "InProgress"
        finals = {m["MetricName"]: m for m in _describe(home, name)["FinalMetricDataList"]}
        assert {k: v["Value"] for k, v in finals.items()} == {"train:loss": 0.5, "epoch": 2.0}
        # Whole seconds, as SageMaker reports them (the CLI renders them in ISO 8601).
        assert all("." not in m["Timestamp"] for m in finals.values())

        (home / "jobs" / name / "hosts" / "algo-1" / "output" / "go").touch()
        after = {"epoch-1/model.ckpt": b"second\n", "new.ckpt": b"third\n"}
        _wait("the deletion and the new checkpoint", lambda: _keys(s3, bucket, "ckpt/") == after)
        container = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=trainforge.job={name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(container) == 1
        subprocess.run(["docker", "kill", "--signal", "KILL", container[0]], check=True)
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    described = _describe(home, name)
    assert described["TrainingJobStatus"] == "Failed", err
    assert _keys(s3, bucket, "ckpt/") == after
    assert {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]} == {
        "train:loss": 0.25,
        "epoch": 2.0,
    }
    log = trainforge(home, "logs", name).stdout
    configs = {
        line.split()[1]: json.loads(line.split(" ", 2)[2])
        for line in log.splitlines()
        if line.startswith("config ")
    }
    assert configs["checkpointconfig"] == {
        "LocalPath": "/opt/ml/checkpoints",
        "S3Uri": f"s3://{bucket}/ckpt/",
    }
    assert configs["tensorboardoutputconfig"] == {
        "LocalPath": "/opt/ml/output/tensorboard",
        "S3OutputPath": f"s3://{bucket}/tb",
    }
    assert configs["debughookconfig"] == {
        "LocalPath": "/opt/ml/output/tensors",
        "S3OutputPath": f"s3://{bucket}/debug",
        "HookParameters": {"save_interval": "10"},
    }
    assert configs["profilerconfig"] == {"S3OutputPath": f"s3://{bucket}/prof"}
    # The instance metrics sampled from the engine while the host ran.
    store = MetricStore(Database(home / "trainforge.db"))
    instance = {
        (s.metric, s.host) for s in store.series_names(name) if s.source is MetricSource.INSTANCE
    }
    assert instance == {
        ("CPUUtilization", "algo-1"),
        ("MemoryUtilization", "algo-1"),
        ("DiskUtilization", "algo-1"),
    }
    for metric, _ in instance:
        values = [p.value for p in store.points(name, metric, MetricSource.INSTANCE)]
        assert values and all(0 <= v <= 100 * 64 for v in values), (metric, values)
