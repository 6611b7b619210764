"""aws.shapes reads the pruned models as botocore reads them: for every operation trainforge
implements, every shape its input and output reach has botocore's type, metadata, required
members and members (in order), so validation and serialization mean the same over either; and
importing the CLI's run command loads none of botocore's model or HTTP stack."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from trainforge.aws import shapes, spec


def _same(ours: shapes.Shape | None, theirs: Any, seen: set[str]) -> None:
    if ours is None or theirs is None:
        assert ours is None and theirs is None
        return
    assert ours.name == theirs.name
    if ours.name in seen:
        return
    seen.add(ours.name)
    assert ours.type_name == theirs.type_name, ours.name
    assert ours.metadata == theirs.metadata, ours.name
    assert ours.required_members == theirs.required_members, ours.name
    if ours.type_name == "structure":
        assert list(ours.members) == list(theirs.members), ours.name
        for name, member in ours.members.items():
            _same(member, theirs.members[name], seen)
    elif ours.type_name == "list":
        _same(ours.member, theirs.member, seen)
    elif ours.type_name == "map":
        _same(ours.key, theirs.key, seen)
        _same(ours.value, theirs.value, seen)


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        (service, operation)
        for service, ops in spec.IMPLEMENTED.items()
        for operation in sorted(ops)
    ],
)
def test_every_reachable_shape_reads_as_botocore_reads_it(service: str, operation: str) -> None:
    model = spec.operation(service, operation)
    seen: set[str] = set()
    _same(shapes.input_shape(service, operation), model.input_shape, seen)
    _same(shapes.output_shape(service, operation), model.output_shape, seen)


def test_the_run_command_validates_without_botocores_model() -> None:
    code = (
        "import sys, trainforge.cli.run\n"
        "from trainforge.context import Context\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('botocore.model', "
        "'botocore.auth', 'botocore.config', 'urllib3', 'requests', 'docker')))\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
