"""Metrics from a job's log lines (MetricDefinitions), their storage and the final values of
Describe, and the instance metrics sampled from the engine: pure logic and SQLite, no
containers."""

from __future__ import annotations

import json
import math
import random
import re
import time
from pathlib import Path

from trainforge.domain.metrics import MetricPoint, MetricSource, regex_problem
from trainforge.engines.base import HostUsage
from trainforge.errors import EngineError
from trainforge.runtime.cgroup_usage import cgroup_usage
from trainforge.runtime.instance_metrics import (
    InstanceSampler,
    metric_line,
    parse_gpu_usage,
    parse_metric_line,
)
from trainforge.runtime.metric_scraper import MetricScraper, required_literal
from trainforge.store.db import Database
from trainforge.store.metrics import MetricStore, insert


def _naive(definitions: list[dict[str, str]], lines: list[str]) -> list[tuple[str, float]]:
    """Every regex on every line, the way the contract states it."""
    found = []
    for text in lines:
        for d in definitions:
            match = re.search(d["Regex"], text)
            if match is None:
                continue
            try:
                value = float(match.group(1))
            except ValueError:
                continue
            if math.isfinite(value):
                found.append((d["Name"], value))
    return found


def test_the_scraper_finds_what_every_regex_on_every_line_finds() -> None:
    definitions = [
        {"Name": "train:error", "Regex": "Train_error=(.*?);"},
        {"Name": "valid:error", "Regex": "Valid_error=(.*?);"},
        {"Name": "loss", "Regex": r"(?i)LOSS: ([0-9.e-]+)"},
        {"Name": "acc", "Regex": r"^epoch \d+#011acc=(\S+)"},
        {"Name": "any", "Regex": r"(\d+\.\d+)$"},
        {"Name": "alt", "Regex": r"(?:x|y)=(\d+)"},
    ]
    rng = random.Random(7)
    words = [
        "Train_error=0.138318;  Valid_error=0.324557;",
        "loss: 1e-3",
        "Loss: nan",
        "epoch 3#011acc=0.91",
        "epoch 3 acc=0.5",
        "noise 12.5",
        "y=4 x=5",
        "Train_error=abc;",
        "Train_error=inf;",
        "nothing here",
    ]
    lines = [rng.choice(words) for _ in range(2000)]
    scraper = MetricScraper(definitions)
    points = scraper.scrape("algo-1", [(float(i), text) for i, text in enumerate(lines)])
    assert [(p.metric, p.value) for p in points] == _naive(definitions, lines)
    assert all(p.host == "algo-1" for p in points)
    assert [p.timestamp for p in points] == sorted(p.timestamp for p in points)


def test_required_literals_and_bad_regexes() -> None:
    assert required_literal("Train_error=(.*?);") == "Train_error="
    assert required_literal("(?i)loss=(.*)") is None
    assert required_literal(r"(a|b)=(\d)") == "="
    assert required_literal(r"#011val=(\S+)") == "#011val="
    assert required_literal(r"\d+") is None
    assert regex_problem("loss=(.*") is not None
    assert regex_problem("loss=(.*)") is None


def test_points_are_stored_and_the_final_values_move_forward(tmp_path: Path) -> None:
    db = Database(tmp_path / "trainforge.db")
    with db.write() as conn:
        conn.execute(
            "INSERT INTO jobs (name, arn, request, status, secondary_status, creation_time,"
            " last_modified_time, queue_state) VALUES"
            " ('j', 'arn', '{}', 'InProgress', 'Training', 0, 0, 'queued')"
        )
    store = MetricStore(db)
    with db.write() as conn:
        insert(
            conn,
            "j",
            [
                MetricPoint("loss", "algo-1", 10.6, 0.9),
                MetricPoint("loss", "algo-2", 12.2, 0.7),
                MetricPoint("acc", "algo-1", 11.0, 0.5),
            ],
        )
    store.append("j", [MetricPoint("CPUUtilization", "algo-1", 11.0, 150.0, MetricSource.INSTANCE)])
    with db.write() as conn:
        insert(conn, "j", [MetricPoint("loss", "algo-1", 13.9, 0.6)])
    finals = json.loads(
        db.read().execute("SELECT final_metrics FROM jobs WHERE name = 'j'").fetchone()[0]
    )
    assert sorted(finals, key=lambda m: m["MetricName"]) == [
        {"MetricName": "acc", "Value": 0.5, "Timestamp": 11.0},
        {"MetricName": "loss", "Value": 0.6, "Timestamp": 13.0},
    ]
    assert [p.value for p in store.points("j", "loss")] == [0.9, 0.7, 0.6]
    assert [p.value for p in store.points("j", "loss", start=11.0, end=13.9)] == [0.7]
    names = {(s.metric, s.source, s.host) for s in store.series_names("j")}
    assert names == {
        ("loss", MetricSource.ALGORITHM, None),
        ("acc", MetricSource.ALGORITHM, None),
        ("CPUUtilization", MetricSource.INSTANCE, "algo-1"),
    }


class _Engine:
    def __init__(self) -> None:
        self.samples = [
            {"algo-1": HostUsage(100.0, 10.0, 1 << 30, 4 << 30)},
            {"algo-1": HostUsage(102.0, 13.0, 2 << 30, 4 << 30)},
        ]

    def usage(self, job: str) -> dict[str, HostUsage]:
        if not self.samples:
            raise EngineError("the engine went away")
        return self.samples.pop(0)


def test_instance_metrics_from_two_samples(tmp_path: Path) -> None:
    engine = _Engine()
    sampler = InstanceSampler(
        engine,  # type: ignore[arg-type]
        "j",
        1.0,
        lambda points: None,
        lambda host: tmp_path,
        {},
    )
    first = {p.metric: p.value for p in sampler.sample()}
    assert first.keys() == {"MemoryUtilization", "DiskUtilization"}
    assert first["MemoryUtilization"] == 25.0
    second = {p.metric: p for p in sampler.sample()}
    # 3 CPU-seconds in 2 seconds: 150 % (SageMaker counts 100 per CPU).
    assert second["CPUUtilization"].value == 150.0
    assert second["CPUUtilization"].source is MetricSource.INSTANCE
    assert second["MemoryUtilization"].value == 50.0
    assert 0 < second["DiskUtilization"].value <= 100
    # An engine that does not answer leaves the round out; the job goes on.
    assert sampler.sample() == []


def test_the_sampler_thread_feeds_its_sink_and_stops() -> None:
    got: list[list[MetricPoint]] = []
    engine = _Engine()
    sampler = InstanceSampler(engine, "j", 0.05, got.append, lambda h: None, {})  # type: ignore[arg-type]
    sampler.start()
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert [p.metric for p in got[1]] == ["CPUUtilization", "MemoryUtilization"]


def test_gpu_usage_is_summed_over_the_hosts_gpus() -> None:
    assert parse_gpu_usage("50, 1024, 4096\n100, 4096, 4096\n") == (150.0, 125.0)
    assert parse_gpu_usage("[N/A], 1, 2\n") is None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_and_v1_usage_of_a_container(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    _write(v2 / "cgroup.controllers", "cpu memory\n")
    group = v2 / "system.slice" / "docker-abc.scope"
    _write(group / "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\n")
    _write(group / "memory.current", "3000\n")
    _write(group / "memory.max", "10000\n")
    _write(group / "memory.stat", "anon 1000\ninactive_file 1000\n")
    found = cgroup_usage(v2, "abc")
    assert found is not None
    assert (found.cpu_seconds, found.memory_bytes, found.memory_limit_bytes) == (2.5, 2000, 10000)
    assert cgroup_usage(v2, "other") is None

    v1 = tmp_path / "v1"
    # A daemon's --cgroup-parent puts the container under a parent of its own.
    _write(v1 / "cpu,cpuacct" / "node-1" / "def" / "cpuacct.usage", "1500000000\n")
    _write(v1 / "memory" / "node-1" / "def" / "memory.usage_in_bytes", "5000\n")
    _write(v1 / "memory" / "node-1" / "def" / "memory.limit_in_bytes", "8000\n")
    _write(v1 / "memory" / "node-1" / "def" / "memory.stat", "total_inactive_file 500\n")
    found = cgroup_usage(v1, "def")
    assert found is not None
    assert (found.cpu_seconds, found.memory_bytes, found.memory_limit_bytes) == (1.5, 4500, 8000)


def test_metric_lines_carry_points_from_an_agent() -> None:
    points = [MetricPoint("CPUUtilization", "algo-2", 12.5, 150.0, MetricSource.INSTANCE)]
    assert parse_metric_line(metric_line(points)) == points
    assert parse_metric_line("TRAINFORGE-METRICS [not json") == []
    assert parse_metric_line("an ordinary line") == []
