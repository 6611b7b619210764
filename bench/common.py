"""What every benchmark shares: measuring a whole process (wall time, CPU time, peak memory),
medians and percentiles, the rows of the result table, and starting the servers the benchmarks
talk to (moto's S3/SageMaker server and `trainforge serve`), all on loopback.

Each benchmark measures trainforge and its baseline in the same run, alternating them, and
reports medians and the ratio of the medians; nothing here asserts a time.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CACHE = ROOT / ".cache" / "bench"
# boto3 with the CRT lives in a virtual environment of its own (`make bench-tools`).
CRT_PYTHON = ROOT / ".cache" / "crt-venv" / "bin" / "python"
sys.path.insert(0, str(ROOT / "scripts"))

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class Measurement:
    wall: float
    cpu: float
    returncode: int


@dataclass
class Row:
    """One line of the table: trainforge's median against the baseline's median."""

    number: str
    what: str
    trainforge: str
    baseline: str
    ratio: str
    target: str
    met: bool | None
    notes: list[str] = field(default_factory=list)
    # False: the row could not be measured at all (a tool missing, a server that did not start).
    ran: bool = True


def could_not_run(what: str, reason: object) -> Row:
    """The row of a benchmark that could not run: a failure in the table, never a blank."""
    return Row(what, f"{what}: could not run", "—", "—", "—", "—", False, [str(reason)], ran=False)


def measure(
    cmd: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> Measurement:
    """Run ``cmd`` to its end: its wall time and CPU time (user + system, children included),
    from the kernel's accounting of the finished process. (Its peak memory there would include
    this process's own: ``peak_rss_kib`` measures that.)"""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(wall, usage.ru_utime + usage.ru_stime, proc.returncode)


GNU_TIME = "/usr/bin/time"


def peak_rss_kib(cmd: Sequence[str], env: dict[str, str] | None = None) -> int:
    """The peak resident memory of ``cmd`` itself, as GNU time reports it. The kernel's account
    of a process started straight from this one (``measure``'s) counts this process's memory too:
    the child shares it until its exec, and a process's peak spans its execs, so a large
    benchmark process would show as the command's peak. GNU time's child starts from a process
    of a few hundred KiB."""
    if not Path(GNU_TIME).is_file():
        raise RuntimeError(f"{GNU_TIME} is needed (apt-get install time)")
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        full = [GNU_TIME, "-f", "%M", "-o", report.name, *cmd]
        subprocess.run(full, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # A command that failed gets a line saying so before the figure.
        return int(report.read().split()[-1])


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def alternate(
    a: Callable[[], float], b: Callable[[], float], runs: int, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """A B A B ...: both sides see the same machine drift."""
    for _ in range(warmup):
        a()
        b()
    first, second = [], []
    for _ in range(runs):
        first.append(a())
        second.append(b())
    return first, second


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(AWS_ENV)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "TRAINFORGE_SERVER_URL"):
        env.pop(name, None)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer")


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(url + "/moto-api/")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def s3s_server() -> Iterator[str]:
    """s3s-fs (scripts/s3s.py: built with cargo once, cached) on a loopback port, serving a
    directory under .cache/bench, with the benchmarks' access key."""
    import s3s

    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="s3s-", dir=CACHE) as data:
        port = free_port()
        proc = s3s.start(
            Path(data), port, AWS_ENV["AWS_ACCESS_KEY_ID"], AWS_ENV["AWS_SECRET_ACCESS_KEY"]
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@dataclass
class TrainforgeServer:
    url: str
    home: Path
    proc: subprocess.Popen[bytes]

    def peak_rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def client(self, service: str) -> Any:
        return client(service, self.url)


def client(service: str, endpoint: str) -> Any:
    """A boto3 client for a benchmark's own loopback endpoint (trainforge's, moto's, s3s-fs's)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(
            retries={"max_attempts": 2},
            max_pool_connections=64,
            s3={"addressing_style": "path"},
        ),
    )


@contextmanager
def trainforge_server(home: Path | None = None, **settings: str) -> Iterator[TrainforgeServer]:
    with tempfile.TemporaryDirectory(prefix="tf-bench-") as tmp:
        home = home or Path(tmp)
        port = free_port()
        env = env_with(TRAINFORGE_HOME=str(home), **settings)
        log = (home / "server.log").open("wb")
        proc = subprocess.Popen(
            [str(BIN / "trainforge"), "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(url + "/ping")
            yield TrainforgeServer(url, home, proc)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
            subprocess.run(
                "docker ps -aq --filter label=trainforge.job | xargs -r docker rm -f",
                shell=True,
                capture_output=True,
            )


def fmt_seconds(value: float) -> str:
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 0.1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.3f} s"


def noop_request(name: str, image: str, output: Path) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::000000000000:role/bench",
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["/bin/true"],
        },
        "OutputDataConfig": {"S3OutputPath": f"file://{output}"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def busybox_image() -> str:
    import images

    return str(images.busybox_tag())
