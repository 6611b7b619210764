"""CloudWatch Logs filter patterns for unstructured text (FilterLogEvents' ``filterPattern``).

Supported: terms that must all appear (``ERROR timeout``), quoted phrases (``"loss ="``), ``?term``
alternatives (any one must appear) and ``-term`` exclusions; matching is case-sensitive, as in
CloudWatch. JSON (``{ $.x = 1 }``) and space-delimited (``[a, b]``) patterns are refused with
InvalidParameterException rather than silently matched wrong.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from trainforge.errors import LogsInvalidParameter


@dataclass(frozen=True)
class FilterPattern:
    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> FilterPattern:
        text = text.strip()
        if not text:
            return cls()
        if text[0] in "{[":
            raise LogsInvalidParameter(
                "Invalid filter pattern: JSON and space-delimited filter patterns are not "
                'supported by trainforge; use terms, "quoted phrases", ?alternatives and '
                "-exclusions."
            )
        try:
            words = shlex.split(text, posix=True)
        except ValueError as exc:
            raise LogsInvalidParameter(f"Invalid filter pattern: {exc}") from None
        required, any_of, excluded = [], [], []
        for word in words:
            if word.startswith("?") and len(word) > 1:
                any_of.append(word[1:])
            elif word.startswith("-") and len(word) > 1:
                excluded.append(word[1:])
            else:
                required.append(word)
        return cls(tuple(required), tuple(any_of), tuple(excluded))

    def matches(self, message: str) -> bool:
        if any(term in message for term in self.excluded):
            return False
        if self.any_of and not any(term in message for term in self.any_of):
            return False
        return all(term in message for term in self.required)
