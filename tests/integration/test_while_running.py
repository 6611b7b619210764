"""What a job shows while it runs, with real containers and a real S3 endpoint: checkpoints,
TensorBoard, debugger and profiler output reach S3 as they are written (a deletion too), their
config files are in /opt/ml/input/config, a container killed with SIGKILL leaves every
checkpoint written before in S3, the MetricDefinitions of the job become its
FinalMetricDataList, and its host's instance metrics are sampled."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import run_job, script_job, start_trainforge, trainforge, write_request
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
    keys: dict[str, bytes] = {}
    for o in found:
        try:
            keys[o["Key"][len(prefix) :]] = s3.get_object(Bucket=bucket, Key=o["Key"])[
                "Body"
            ].read()
        except s3.exceptions.NoSuchKey:
            continue  # the sync deleted it between the listing and the read
    return keys


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


_ISOLATION_REPORT = """\
echo "creds ${AWS_ACCESS_KEY_ID:-none} ${AWS_SECRET_ACCESS_KEY:-none}"
iface=$(sed 's/.*"network_interface_name": *"\\([^"]*\\)".*/\\1/' \\
    /opt/ml/input/config/resourceconfig.json)
if [ -e "/sys/class/net/$iface" ]; then echo "iface $iface exists"; else echo "iface $iface missing"; fi
if timeout 3 nc {outside} </dev/null >/dev/null 2>&1; then echo "outside reached"; else echo "outside unreached"; fi
if [ "$(hostname)" != algo-1 ]; then
  timeout 60 nc -l -p 9000 >/dev/null; exit 0  # until algo-1 has reached this host
fi
for h in $(seq 2 {hosts}); do
  i=0; until ping -c1 -W1 algo-$h >/dev/null 2>&1 || [ $i -ge 30 ]; do i=$((i+1)); sleep 0.3; done
  if ping -c1 -W1 algo-$h >/dev/null 2>&1; then echo "peer algo-$h reached"; fi
  i=0; until echo bye | nc algo-$h 9000 2>/dev/null || [ $i -ge 60 ]; do i=$((i+1)); sleep 0.5; done
done
"""


@contextlib.contextmanager
def _listener() -> Iterator[str]:
    """A TCP port of this machine, on the address containers use to reach it."""
    bridge = json.loads(
        subprocess.run(
            ["docker", "network", "inspect", "bridge"], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    device = bridge["Options"].get("com.docker.network.bridge.name", "docker0")
    address = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", device], capture_output=True, text=True, check=True
    ).stdout.split()
    gateway = address[address.index("inet") + 1].split("/")[0]
    with socket.socket() as server:
        server.bind((gateway, 0))
        server.listen(16)
        server.settimeout(0.2)
        done = threading.Event()

        def answer() -> None:
            # Accept and close at once: a client that got through sees the end and exits.
            while not done.is_set():
                with contextlib.suppress(OSError):
                    server.accept()[0].close()

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        try:
            yield f"{gateway} {server.getsockname()[1]}"
        finally:
            done.set()
            thread.join(5)


@pytest.mark.parametrize(("hosts", "isolated"), [(2, True), (1, True), (1, False)])
def test_network_isolation_gives_no_credentials_and_no_route_out_but_the_peers(
    images: dict[str, str], home: Path, hosts: int, isolated: bool
) -> None:
    with _listener() as outside:
        script = _ISOLATION_REPORT.replace("{outside}", outside).replace("{hosts}", str(hosts))
        request = script_job(images["busybox"], home, script)
        request["ResourceConfig"]["InstanceCount"] = hosts
        request["EnableNetworkIsolation"] = isolated
        result = run_job(home, request, TRAINFORGE_PASS_AWS_CREDENTIALS="true")
    assert result.status == "Completed", result.stderr
    log = trainforge(home, "logs", str(request["TrainingJobName"])).stdout
    # Lines of a job of several hosts come as "algo-i | line".
    lines = [line.split(" | ", 1)[-1] for line in log.splitlines()]
    assert lines.count("iface eth0 exists") == hosts, lines
    assert all(f"peer algo-{i} reached" in lines for i in range(2, hosts + 1)), lines
    if isolated:
        assert lines.count("creds none none") == hosts, lines
        assert lines.count("outside unreached") == hosts, lines
    else:
        # The opt-in reaches a container that is not isolated, and so does the way out.
        assert "creds testing testing-secret" in lines, lines
        assert "outside reached" in lines, lines
