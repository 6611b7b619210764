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
from trainforge.runtime.instance_metrics import InstanceSampler, parse_gpu_usage
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
