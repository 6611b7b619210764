"""Benchmarks 1 and 2: a no-op job (busybox, exits 0) through a running server
(CreateTrainingJob → Completed, as a client sees it) and as one `trainforge run` process, each
against `docker run --rm` of the same image in the same run."""

from __future__ import annotations

import compileall
import json
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import (
    BIN,
    Row,
    alternate,
    busybox_image,
    env_with,
    fmt_seconds,
    measure,
    median,
    noop_request,
    peak_rss_kib,
    trainforge_server,
)


def _docker_run(image: str) -> float:
    return measure(["docker", "run", "--rm", image, "true"]).wall


def server_noop(runs: int) -> Row:
    image = busybox_image()
    with tempfile.TemporaryDirectory(prefix="tf-noop-") as out, trainforge_server() as server:
        sm = server.client("sagemaker")

        def one_job() -> float:
            name = f"noop-{uuid.uuid4().hex[:10]}"
            start = time.perf_counter()
            sm.create_training_job(**noop_request(name, image, Path(out)))
            while (
                sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] != "Completed"
            ):
                time.sleep(0.005)
            return time.perf_counter() - start

        ours, baseline = alternate(one_job, lambda: _docker_run(image), runs, warmup=2)
    ratio = median(ours) / median(baseline)
    return Row(
        "1",
        "no-op job, CreateTrainingJob → Completed through a running server",
        fmt_seconds(median(ours)),
        f"{fmt_seconds(median(baseline))} (docker run --rm)",
        f"{ratio:.2f}×",
        "≤ 1.3×",
        ratio <= 1.3,
    )


def _compiled() -> None:
    """trainforge's modules as an installed wheel has them, compiled (pip compiles a package's
    modules when it installs it): an editable checkout under PYTHONDONTWRITEBYTECODE=1 would
    compile every module from source in every run, about 0.1 s of CPU that no user's run has."""
    import trainforge

    compileall.compile_dir(str(Path(trainforge.__file__).parent), quiet=1)


def run_noop(runs: int) -> tuple[Row, Row]:
    image = busybox_image()
    _compiled()
    with tempfile.TemporaryDirectory(prefix="tf-run-") as tmp:
        home = Path(tmp)
        env = env_with(TRAINFORGE_HOME=str(home))

        def command() -> list[str]:
            name = f"noop-{uuid.uuid4().hex[:10]}"
            path = home / f"{name}.json"
            path.write_text(json.dumps(noop_request(name, image, home / "out")))
            return [str(BIN / "trainforge"), "run", "--cli-input-json", f"file://{path}"]

        def one_run() -> float:
            result = measure(command(), env=env)
            assert result.returncode == 0, "trainforge run failed"
            return result.wall

        ours, baseline = alternate(one_run, lambda: _docker_run(image), runs, warmup=2)
        # Apart from the timed runs: GNU time between this process and the command.
        memory = [peak_rss_kib(command(), env) for _ in range(3)]
    ratio = median(ours) / median(baseline)
    timing = Row(
        "2",
        "the same job with `trainforge run` as a whole process",
        fmt_seconds(median(ours)),
        f"{fmt_seconds(median(baseline))} (docker run --rm)",
        f"{ratio:.2f}×",
        "≤ 1.5×",
        ratio <= 1.5,
    )
    rss = Row(
        "m1",
        "peak memory of `trainforge run` (no-op job)",
        f"{median(memory) / 1024:.0f} MiB",
        "—",
        "—",
        "report only",
        None,
    )
    return timing, rss
