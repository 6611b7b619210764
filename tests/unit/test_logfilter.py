"""service.logfilter: CloudWatch filter patterns for unstructured log lines."""

from __future__ import annotations

import pytest

from trainforge.errors import LogsInvalidParameter
from trainforge.service.logfilter import FilterPattern


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", FilterPattern()),
        ("   ", FilterPattern()),
        ("ERROR", FilterPattern(required=("ERROR",))),
        ("ERROR timeout", FilterPattern(required=("ERROR", "timeout"))),
        ('"loss =" epoch', FilterPattern(required=("loss =", "epoch"))),
        ("?WARN ?ERROR", FilterPattern(any_of=("WARN", "ERROR"))),
        ("-DEBUG", FilterPattern(excluded=("DEBUG",))),
        (
            'ERROR ?disk ?"no space" -retry',
            FilterPattern(("ERROR",), ("disk", "no space"), ("retry",)),
        ),
        ("? -", FilterPattern(required=("?", "-"))),
        ('"-not excluded"', FilterPattern(excluded=("not excluded",))),
    ],
)
def test_parse(text: str, parsed: FilterPattern) -> None:
    assert FilterPattern.parse(text) == parsed


@pytest.mark.parametrize("text", ["{ $.level = 1 }", "[ip, user]", "  {x}"])
def test_json_and_space_delimited_patterns_are_refused(text: str) -> None:
    with pytest.raises(LogsInvalidParameter) as info:
        FilterPattern.parse(text)
    assert info.value.message == (
        "Invalid filter pattern: JSON and space-delimited filter patterns are not supported by "
        'trainforge; use terms, "quoted phrases", ?alternatives and -exclusions.'
    )
    assert info.value.code == "InvalidParameterException"


def test_unbalanced_quote_is_refused() -> None:
    with pytest.raises(LogsInvalidParameter) as info:
        FilterPattern.parse('"loss')
    assert info.value.message == "Invalid filter pattern: No closing quotation"


@pytest.mark.parametrize(
    ("pattern", "message", "matches"),
    [
        ("", "anything", True),
        ("", "", True),
        ("ERROR", "an ERROR here", True),
        ("ERROR", "an error here", False),
        ("ERROR timeout", "ERROR: timeout", True),
        ("ERROR timeout", "ERROR only", False),
        ('"loss ="', "epoch 1 loss = 0.3", True),
        ('"loss ="', "loss=0.3", False),
        ("?WARN ?ERROR", "WARN x", True),
        ("?WARN ?ERROR", "ERROR x", True),
        ("?WARN ?ERROR", "INFO x", False),
        ("-DEBUG", "INFO x", True),
        ("-DEBUG", "DEBUG x", False),
        ("train ?foo ?bar -skip", "train bar", True),
        ("train ?foo ?bar -skip", "train bar skip", False),
        ("train ?foo ?bar -skip", "train baz", False),
        ("train ?foo ?bar -skip", "validate foo", False),
    ],
)
def test_matches(pattern: str, message: str, matches: bool) -> None:
    assert FilterPattern.parse(pattern).matches(message) is matches
