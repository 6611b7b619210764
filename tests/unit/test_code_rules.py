"""Rules of the code that a reviewer would otherwise have to police."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "trainforge"


def test_no_internal_server_error_text_outside_the_errors_module() -> None:
    """Every platform failure is a JobFailure of the PLATFORM fault; no module spells it."""
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "errors.py" and "InternalServerError" in path.read_text()
    ]
    assert offenders == []


def test_only_the_docker_api_module_imports_docker() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "dockerapi.py"
        and any(
            line.startswith(("import docker", "from docker"))
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []
