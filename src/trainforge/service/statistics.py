"""CloudWatch's arithmetic over a time series: which periods are allowed, where the first period
starts, how points fall into periods, and the statistics of a period (SampleCount, Average, Sum,
Minimum, Maximum and the percentiles ``pNN``/``pNN.NN``).

The rules are the ones documented for GetMetricStatistics and GetMetricData: a period is 1, 5, 10,
20, 30 or a multiple of 60 seconds (every series trainforge keeps is as fine-grained as the log
lines it came from, so it counts as high-resolution); the start time is rounded down to a whole
second, to an even division of the minute for periods under 60 s, and to the whole minute (5
minutes past 15 days ago, the hour past 63 days ago) otherwise; the start is inclusive and the end
exclusive; each period is labelled with its start, and periods without points are left out.
Pure functions: no store, no wire.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
HIGH_RESOLUTION_PERIODS = frozenset({1, 5, 10, 20, 30})
_DAY = 86400
# CloudWatch takes percentiles with up to two decimals, p0 to p100.
_PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d{1,2})?)")


def period_allowed(period: int) -> bool:
    return period in HIGH_RESOLUTION_PERIODS or (period > 0 and period % 60 == 0)


def percentile_of(statistic: str) -> float | None:
    """The percentile a ``pNN`` statistic names, or None when it names none."""
    match = _PERCENTILE.fullmatch(statistic)
    if match is None:
        return None
    value = float(match.group(1))
    return value if 0 <= value <= 100 else None


def is_statistic(name: str) -> bool:
    return name in STATISTICS or percentile_of(name) is not None


def aligned_start(start: float, period: int, now: float) -> float:
    """Where the first period begins, for a request made at ``now``."""
    whole = math.floor(start)
    if period < 60:
        return float(whole - whole % period)
    age = now - whole
    unit = 3600 if age > 63 * _DAY else 300 if age > 15 * _DAY else 60
    return float(whole - whole % unit)


def period_count(start: float, end: float, period: int) -> int:
    """How many periods ``[start, end)`` spans, the last one possibly cut short."""
    return max(0, math.ceil((end - start) / period))


def bucket(
    points: Iterable[tuple[float, float]], start: float, end: float, period: int
) -> list[tuple[float, list[float]]]:
    """``(timestamp, value)`` points grouped by period: ``(period start, values)`` in time
    order, only the periods that hold a point."""
    groups: dict[int, list[float]] = {}
    for timestamp, value in points:
        if start <= timestamp < end:
            groups.setdefault(int((timestamp - start) // period), []).append(value)
    return [(start + index * period, groups[index]) for index in sorted(groups)]


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: a value of the sample, never an interpolation."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def compute(statistic: str, values: Sequence[float]) -> float:
    """One statistic of a non-empty period."""
    if statistic == "SampleCount":
        return float(len(values))
    if statistic == "Sum":
        return math.fsum(values)
    if statistic == "Average":
        return math.fsum(values) / len(values)
    if statistic == "Minimum":
        return min(values)
    if statistic == "Maximum":
        return max(values)
    p = percentile_of(statistic)
    if p is None:
        raise ValueError(f"not a statistic: {statistic}")
    return percentile(values, p)
