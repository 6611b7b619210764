"""The typed form of the CreateTrainingJob request, generated from botocore's SageMaker model.

``render()`` writes ``trainforge/domain/request.py``: one ``TypedDict`` per structure reachable
from ``CreateTrainingJobRequest``, its members with the model's types (lists, maps, scalars) and
the model's required members marked ``Required``. The layers below the service take the request
as these types instead of ``dict[str, Any]``; mypy then checks every member they read against the
model. A unit test renders it again and compares it with the committed file, so a botocore
upgrade that changes the request shows up as a failing test, not as a silent drift.

Regenerate with ``python -m trainforge.aws.request_types > src/trainforge/domain/request.py``.
This module only reads the model; it must not import the layers that use the types.
"""

from __future__ import annotations

import sys

from botocore.model import Shape

from trainforge.aws.spec import SAGEMAKER, operation

ROOT_OPERATION = "CreateTrainingJob"

_SCALARS = {
    "string": "str",
    "integer": "int",
    "long": "int",
    "boolean": "bool",
    "float": "float",
    "double": "float",
    "timestamp": "float",
    "blob": "bytes",
}

_HEADER = '''"""The CreateTrainingJob request as typed structures, generated from botocore's
SageMaker model by ``trainforge.aws.request_types`` (do not edit: regenerate with
``python -m trainforge.aws.request_types > src/trainforge/domain/request.py``).

The API edge validates a request against the model and passes it down as these types: every
layer below the service reads members mypy knows. Enumerated strings stay ``str`` here; their
values were checked at the edge.
"""

# No postponed annotations here: TypedDict reads ``Required`` from the evaluated annotations,
# and every structure is defined after the structures it holds.
from typing import Required, TypedDict
'''


def _type(shape: Shape) -> str:
    if shape.type_name == "structure":
        return shape.name
    if shape.type_name == "list":
        return f"list[{_type(shape.member)}]"  # type: ignore[attr-defined]
    if shape.type_name == "map":
        return f"dict[{_type(shape.key)}, {_type(shape.value)}]"  # type: ignore[attr-defined]
    return _SCALARS[shape.type_name]


def _structures(root: Shape) -> list[Shape]:
    """Every structure reachable from ``root``, each after the structures it holds, so the
    generated module reads top-down from the leaves."""
    ordered: list[Shape] = []
    seen: set[str] = set()

    def visit(shape: Shape) -> None:
        if shape.type_name == "list":
            visit(shape.member)  # type: ignore[attr-defined]
        elif shape.type_name == "map":
            visit(shape.value)  # type: ignore[attr-defined]
        elif shape.type_name == "structure" and shape.name not in seen:
            seen.add(shape.name)
            for member in shape.members.values():  # type: ignore[attr-defined]
                visit(member)
            ordered.append(shape)

    visit(root)
    return ordered


def render() -> str:
    root = operation(SAGEMAKER, ROOT_OPERATION).input_shape
    assert root is not None
    blocks = [_HEADER.rstrip("\n")]
    for shape in _structures(root):
        required = set(shape.required_members)
        lines = [f"class {shape.name}(TypedDict, total=False):"]
        for name, member in shape.members.items():  # type: ignore[attr-defined]
            kind = _type(member)
            if name in required:
                kind = f"Required[{kind}]"
            lines.append(f"    {name}: {kind}")
        if len(lines) == 1:
            lines.append("    pass")
        blocks.append("\n".join(lines))
    return "\n\n\n".join(blocks) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
