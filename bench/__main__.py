"""`python -m bench [NAME ...] [--runs N]`: run the benchmarks and print one table.

Each row gives what was measured, trainforge's median, the baseline's median measured in the
same run, their ratio and the target. Results are also written as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import datetime as dt
import json
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable

from bench import (
    archive,
    burst,
    describe_load,
    footprint,
    loglatency,
    noop,
    pipes,
    staging,
    swarm,
    ui_list,
    while_running,
)
from bench.common import ROOT, Row, could_not_run

BENCHMARKS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "noop-server": lambda a: [noop.server_noop(a.runs)],
    "noop-run": lambda a: list(noop.run_noop(a.runs)),
    "s3-staging": lambda a: staging.s3_staging(max(3, a.runs // 2)),
    "s3s-staging": lambda a: staging.s3s_staging(max(3, a.runs // 2)),
    "local-channel": lambda a: [staging.local_channel(a.runs)],
    "pipe-local": lambda a: [pipes.pipe_local_channel(a.runs)],
    "model-archive": lambda a: [archive.model_archive(max(3, a.runs // 2))],
    "describe-load": lambda a: describe_load.describe_load(a.jobs),
    "burst": lambda a: burst.burst(a.burst),
    "log-latency": lambda a: [loglatency.log_latency()],
    "footprint": lambda a: footprint.footprint(),
    "swarm": lambda a: swarm.swarm_rows(max(3, a.runs // 2)),
    "metric-scraping": lambda a: [while_running.scrape_throughput()],
    "checkpoint-sync": lambda a: [while_running.checkpoint_overhead(max(3, a.runs // 2))],
    "ui-list": lambda a: ui_list.ui_list(a.jobs, a.runs),
}


def print_table(rows: list[Row]) -> None:
    headers = ["#", "what", "trainforge", "baseline", "ratio", "target", "met"]
    cells = [
        [
            r.number,
            r.what,
            r.trainforge,
            r.baseline,
            r.ratio,
            r.target,
            "FAILED" if r.ran is False else {True: "yes", False: "NO", None: "—"}[r.met],
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = " | ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print("-+-".join("-" * w for w in widths))
    for cell in cells:
        print(line.format(*cell))
    for row in rows:
        for note in row.notes:
            print(f"  [{row.number}] {note}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run (all by default)"
    )
    parser.add_argument("--runs", type=int, default=7, help="counted runs per side (default 7)")
    parser.add_argument(
        "--jobs", type=int, default=10_000, help="stored jobs for describe-load and ui-list"
    )
    parser.add_argument("--burst", type=int, default=200, help="jobs submitted at once for burst")
    args = parser.parse_args()
    if shutil.which("docker") is None:
        print("bench: docker is needed", file=sys.stderr)
        return 2
    # An installed wheel carries its bytecode; an editable checkout writes it on first import,
    # unless PYTHONDONTWRITEBYTECODE is set (as on the project's machines), and then every
    # `trainforge` process would compile trainforge's modules anew. Measure what users run.
    compileall.compile_dir(ROOT / "src", quiet=1)
    rows: list[Row] = []
    started = time.time()
    for name in args.names or list(BENCHMARKS):
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        begun = time.monotonic()
        try:
            rows += BENCHMARKS[name](args)
        except Exception as exc:  # whatever stops a benchmark is its row's result
            traceback.print_exc()
            rows.append(could_not_run(name, exc))
        print(
            f"[bench] {name} done in {time.monotonic() - begun:.0f} s", file=sys.stderr, flush=True
        )
    print()
    print(
        f"trainforge benchmarks, {dt.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
        f"{platform.machine()}, {__import__('os').cpu_count()} CPUs; medians of {args.runs} runs"
    )
    print_table(rows)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(
        json.dumps(
            {"started": started, "runs": args.runs, "rows": [dataclasses.asdict(r) for r in rows]},
            indent=2,
        )
    )
    print(f"\nresults: {path.relative_to(ROOT)}")
    failed = [r.number for r in rows if r.ran is False]
    if failed:
        print(f"bench: rows that could not run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
