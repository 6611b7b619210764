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


def test_only_the_docker_api_package_imports_docker() -> None:
    package = SRC / "engines" / "dockerapi"
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if package not in path.parents
        and any(
            line.strip().startswith(("import docker", "from docker"))
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []


def test_no_untyped_wire_dicts_below_the_service_layer() -> None:
    """The request crosses into the scheduler, the runtime and the store as the typed structures
    of domain.request, and the agents' messages as typed dicts: an untyped wire dict there is a
    shape mypy cannot check."""
    layers = ("domain", "scheduler", "runtime", "store")
    offenders = [
        str(path.relative_to(SRC))
        for layer in layers
        for path in (SRC / layer).rglob("*.py")
        if "dict[str, Any]" in path.read_text()
    ]
    assert offenders == []


def test_the_typed_request_is_the_one_botocores_model_gives() -> None:
    """domain/request.py is generated from the model; a botocore whose CreateTrainingJob request
    differs fails here until the file is regenerated
    (``python -m trainforge.aws.request_types > src/trainforge/domain/request.py``)."""
    from trainforge.aws.request_types import render

    assert (SRC / "domain" / "request.py").read_text() == render()


def test_the_run_command_loads_only_what_comes_before_its_hosts_start() -> None:
    """`trainforge run`'s start-up is part of every job's time (bench row 2): an HTTP server,
    what works beside running hosts and after them, Pipe mode and the AWS SDK load when a job
    gets there, never before its containers start."""
    import subprocess
    import sys

    later = (
        "http.server",
        "trainforge.runtime.credentials_http",
        "trainforge.runtime.collect",
        "trainforge.runtime.artifacts",
        "trainforge.runtime.attend",
        "trainforge.runtime.logpump",
        "trainforge.runtime.instance_metrics",
        "trainforge.runtime.pipes",
        "tarfile",
        "subprocess",
        "uuid",
        "boto3",
        "botocore.session",
    )
    code = (
        "import sys, trainforge.cli.run\n"
        "from trainforge.context import Context\n"
        f"print(sorted(m for m in {later!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_every_exception_of_trainforge_is_under_its_error_root() -> None:
    """One root (errors.TrainforgeError) for whatever trainforge raises on purpose, internal
    ones included: a caller that catches the root misses none of them."""
    import importlib
    import inspect
    import pkgutil

    import trainforge
    from trainforge.errors import TrainforgeError

    outside = []
    for found in pkgutil.walk_packages(trainforge.__path__, "trainforge."):
        module = importlib.import_module(found.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not issubclass(value, TrainforgeError)
            ):
                outside.append(f"{module.__name__}.{name}")
    assert outside == []
