"""Turns a job's log lines into metric points with its ``MetricDefinitions``, as SageMaker does:
every regex is applied to every line (the line as CloudWatch holds it, so a tab is ``#011``), the
first capture group of the first match is the value, and a value that does not parse as a finite
float is skipped.

Forty regexes over every line of a chatty job would cost more than the job's logging itself, so
each regex is first reduced to a literal it cannot match without (the longest run of plain
characters at its top level, read from Python's own regex parser). A batch of lines is joined
once, the literal is looked for in the whole batch with ``str.find``, and the regex runs only on
the lines where it was found: the cost follows the metric lines, not the log's length. A regex
with no such literal runs on every line.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

from trainforge.domain.metrics import MetricPoint
from trainforge.domain.request import MetricDefinition


def required_literal(regex: str) -> str | None:
    """A substring every match of ``regex`` contains, or None when none can be told apart."""
    try:
        parsed = sre_parse.parse(regex)
    except Exception:  # the caller compiles it and reports the error
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    best = ""
    run: list[str] = []
    for op, av in parsed:
        if op is sre_constants.LITERAL:
            run.append(chr(av))
            continue
        if len("".join(run)) > len(best):
            best = "".join(run)
        run = []
    if len("".join(run)) > len(best):
        best = "".join(run)
    return best or None


@dataclass(frozen=True)
class _Definition:
    name: str
    regex: re.Pattern[str]
    literal: str | None


class MetricScraper:
    def __init__(self, definitions: Iterable[MetricDefinition]) -> None:
        self._definitions = [
            _Definition(d["Name"], re.compile(d["Regex"]), required_literal(d["Regex"]))
            for d in definitions
        ]

    def __bool__(self) -> bool:
        return bool(self._definitions)

    def scrape(self, host: str, lines: Sequence[tuple[float, str]]) -> list[MetricPoint]:
        """The points in ``lines`` of ``host``, each ``(epoch seconds, text as CloudWatch holds
        it)``, in line order."""
        if not self._definitions or not lines:
            return []
        texts = [text for _, text in lines]
        joined = "\n".join(texts)
        # Where each line starts in ``joined``: a literal found there maps back to its line.
        starts = [0, *itertools.accumulate(len(t) + 1 for t in texts)]
        found: list[tuple[int, int, MetricPoint]] = []
        for order, definition in enumerate(self._definitions):
            search = definition.regex.search
            for index in self._candidates(definition.literal, joined, starts, len(texts)):
                match = search(texts[index])
                if match is None:
                    continue
                value = _value(match)
                if value is not None:
                    point = MetricPoint(definition.name, host, lines[index][0], value)
                    found.append((index, order, point))
        found.sort(key=lambda item: (item[0], item[1]))
        return [point for _, _, point in found]

    @staticmethod
    def _candidates(
        literal: str | None, joined: str, starts: list[int], count: int
    ) -> Iterable[int]:
        """The lines a regex can match: those holding its literal (found by ``str.find`` over
        the whole batch, one hit per line), or every line when it has none."""
        if literal is None:
            return range(count)
        if "\n" in literal:
            return ()  # no line holds a line break
        found = []
        at = joined.find(literal)
        while at >= 0:
            index = bisect.bisect_right(starts, at) - 1
            found.append(index)
            at = joined.find(literal, starts[index + 1])
        return found


def _value(match: re.Match[str]) -> float | None:
    text = match.group(1) if match.re.groups else match.group(0)
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None
