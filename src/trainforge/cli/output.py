"""How the CLI prints: API results as the AWS CLI prints them (indented JSON, ISO 8601 times),
errors in the AWS CLI's words, and a compact table for people."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

from trainforge.aws import shapes
from trainforge.aws.serializer import for_display
from trainforge.errors import ServiceError


def print_result(service: str, operation: str, result: dict[str, Any]) -> None:
    shape = shapes.output_shape(service, operation)
    print(json.dumps(for_display(shape, result), indent=4, ensure_ascii=False))


def print_error(operation: str, error: ServiceError) -> None:
    print(
        f"\nAn error occurred ({error.code}) when calling the {operation} operation: "
        f"{error.message}",
        file=sys.stderr,
    )


def _time(value: Any) -> str:
    if value is None:
        return "-"
    moment = (
        value
        if isinstance(value, dt.datetime)
        else dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    )
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def print_table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers).rstrip())
    for row in rows:
        print(line.format(*row).rstrip())


def job_rows(summaries: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            s["TrainingJobName"],
            s["TrainingJobStatus"],
            _time(s.get("CreationTime")),
            _time(s.get("TrainingEndTime")),
        ]
        for s in summaries
    ]
