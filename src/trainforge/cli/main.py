"""The ``trainforge`` command: run, describe, list, logs, metrics, stop, interrupt, serve, ui,
doctor.

``describe``, ``list``, ``logs``, ``metrics`` and ``stop`` talk to the server named by
TRAINFORGE_SERVER_URL when one is configured, and to the local store otherwise; ``run`` always
runs the job itself; ``interrupt`` always writes to the local store (TRAINFORGE_HOME), which the
job's worker reads.

Start-up time is part of every command's cost (``trainforge run`` of a no-op job is measured
against ``docker run --rm``): this module imports only what parsing the command line needs, and
each command imports its own modules, so ``doctor`` never loads botocore's models and ``list``
never loads the runtime.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trainforge.errors import ServiceError, TrainforgeError
from trainforge.settings import Settings, load_settings

if TYPE_CHECKING:
    from trainforge.cli.client import Client

TERMINAL = ("Completed", "Failed", "Stopped")


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainforge",
        description="Run Amazon SageMaker training jobs on this machine, as SageMaker runs them.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="create a training job and run it in the foreground")
    run.add_argument(
        "--cli-input-json",
        required=True,
        help="a CreateTrainingJob request: file://job.json or inline JSON",
    )
    run.add_argument("--training-job-name", help="override TrainingJobName of the request")
    run.add_argument(
        "--stop-grace-seconds",
        type=_non_negative,
        help="seconds between SIGTERM and SIGKILL when the job is stopped (default 120)",
    )
    describe = sub.add_parser("describe", help="DescribeTrainingJob, as JSON")
    describe.add_argument("name")
    listing = sub.add_parser("list", help="list training jobs, newest first")
    listing.add_argument(
        "--status-equals", choices=["InProgress", "Completed", "Failed", "Stopping", "Stopped"]
    )
    listing.add_argument("--name-contains")
    listing.add_argument("--max-items", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="print the ListTrainingJobs JSON")
    logs = sub.add_parser("logs", help="print a job's log, all hosts")
    logs.add_argument("name")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the job ends"
    )
    metrics = sub.add_parser(
        "metrics", help="a job's metrics (CloudWatch): last value, points, last time per series"
    )
    metrics.add_argument("name")
    metrics.add_argument(
        "--json", action="store_true", help="print every series with its points, as JSON"
    )
    stop = sub.add_parser(
        "stop", help="StopTrainingJob: SIGTERM, then SIGKILL after the grace period"
    )
    stop.add_argument("name")
    interrupt = sub.add_parser(
        "interrupt",
        help="interrupt a managed spot job as a reclaimed spot instance is; it starts again",
    )
    interrupt.add_argument("name")
    agent = sub.add_parser(
        "agent-image",
        help="build the agent image the nodes of a cluster engine run, and print its reference",
    )
    agent.add_argument(
        "--base",
        help="an image with Python 3.11 or later to build on (default python:3.12-slim, which "
        "Docker pulls from Docker Hub; without a registry, name a local image)",
    )
    agent.add_argument("--tag", help="the reference to give it (default TRAINFORGE_AGENT_IMAGE)")
    doctor = sub.add_parser(
        "doctor",
        help="check what a job needs here (Docker, GPUs, S3, disk, the server); "
        "exit 1 if something is wrong",
    )
    doctor.add_argument(
        "--s3-uri", help="check this bucket (HeadBucket) instead of listing the buckets"
    )
    doctor.add_argument(
        "--gpu-image",
        default="ubuntu:22.04",
        help="the image the GPU smoke test runs nvidia-smi in, where GPUs are visible "
        "(default ubuntu:22.04)",
    )
    doctor.add_argument(
        "--min-free-gib",
        type=_non_negative,
        default=1.0,
        help="free space the home and the workspaces need at least (default 1 GiB)",
    )
    serve = sub.add_parser("serve", help="run the SageMaker-compatible API server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8443)")
    ui = sub.add_parser("ui", help="print the dashboard's address (of the server `serve` runs)")
    ui.add_argument("--open", action="store_true", help="also open it in the web browser")
    return parser


def _client(settings: Settings) -> Client:
    from trainforge.cli.client import LocalClient, RemoteClient

    if settings.server_url:
        return RemoteClient(settings.server_url, settings.region)
    from trainforge.context import Context

    return LocalClient(Context(settings))


def dashboard_url(settings: Settings) -> str:
    """Where the dashboard of the configured server is: TRAINFORGE_SERVER_URL's, else the
    address `trainforge serve` binds with these settings."""
    if settings.server_url:
        return settings.server_url.rstrip("/") + "/ui/"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/ui/"


def cmd_ui(settings: Settings, open_it: bool) -> int:
    url = dashboard_url(settings)
    print(url)
    if open_it:
        import webbrowser

        webbrowser.open(url)
    return 0


def cmd_describe(client: Client, name: str) -> int:
    from trainforge.cli.output import print_result

    result = client.call("sagemaker", "DescribeTrainingJob", {"TrainingJobName": name})
    print_result("sagemaker", "DescribeTrainingJob", result)
    return 0


def cmd_list(client: Client, args: argparse.Namespace) -> int:
    from trainforge.cli.output import job_rows, print_result, print_table

    params: dict[str, Any] = {"MaxResults": 100}
    if args.status_equals:
        params["StatusEquals"] = args.status_equals
    if args.name_contains:
        params["NameContains"] = args.name_contains
    summaries: list[dict[str, Any]] = []
    while len(summaries) < args.max_items:
        page = client.call("sagemaker", "ListTrainingJobs", params)
        summaries += page["TrainingJobSummaries"]
        if not page.get("NextToken"):
            break
        params["NextToken"] = page["NextToken"]
    summaries = summaries[: args.max_items]
    if args.json:
        print_result("sagemaker", "ListTrainingJobs", {"TrainingJobSummaries": summaries})
    else:
        print_table(job_rows(summaries), ["NAME", "STATUS", "CREATED", "ENDED"])
    return 0


def cmd_logs(client: Client, name: str, follow: bool) -> int:
    from trainforge.domain import contract

    tokens: dict[str, str | None] = {}
    job = client.call("sagemaker", "DescribeTrainingJob", {"TrainingJobName": name})
    while True:
        ended = job["TrainingJobStatus"] in TERMINAL
        streams = _streams(client, name)
        prefix_hosts = len(streams) > 1
        for stream in streams:
            tokens.setdefault(stream, None)
            while True:
                params: dict[str, Any] = {
                    "logGroupName": contract.LOG_GROUP,
                    "logStreamName": stream,
                    "startFromHead": True,
                }
                if tokens[stream]:
                    params["nextToken"] = tokens[stream]
                page = client.call("logs", "GetLogEvents", params)
                for event in page["events"]:
                    host = stream.split("/", 1)[1].rsplit("-", 1)[0]
                    print(f"{host} | {event['message']}" if prefix_hosts else event["message"])
                sys.stdout.flush()
                same = page["nextForwardToken"] == tokens[stream]
                tokens[stream] = page["nextForwardToken"]
                if same or not page["events"]:
                    break
        if not follow or ended:
            return 0
        time.sleep(1.0)
        job = client.call("sagemaker", "DescribeTrainingJob", {"TrainingJobName": name})


def _streams(client: Client, name: str) -> list[str]:
    from trainforge.domain import contract

    params: dict[str, Any] = {
        "logGroupName": contract.LOG_GROUP,
        "logStreamNamePrefix": name + "/",
        "orderBy": "LogStreamName",
    }
    names: list[str] = []
    while True:
        try:
            page = client.call("logs", "DescribeLogStreams", params)
        except ServiceError as exc:
            if exc.code == "ResourceNotFoundException":
                return []
            raise
        names += [s["logStreamName"] for s in page["logStreams"]]
        if not page.get("nextToken"):
            return names
        params["nextToken"] = page["nextToken"]


def _without_the_crt() -> None:
    """botocore imports the AWS Common Runtime as it loads, whenever it is installed (boto3[crt],
    some AWS tools), which costs about 0.2 s of CPU in every command. trainforge never transfers
    through the CRT, so its commands load botocore without it (boto3 then keeps to its classic
    transfer manager)."""
    sys.modules.setdefault("awscrt", None)  # type: ignore[arg-type]


def _loaded() -> None:
    """Loading a command's modules makes tens of thousands of objects (modules, classes,
    functions, the service model) that live as long as the process. The collector is held off
    while they load (it would walk them again and again) and never walks them afterwards, also
    not in the collections of the interpreter's exit: together about a tenth of a no-op
    ``trainforge run``."""
    gc.freeze()
    gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    _without_the_crt()
    args = _parser().parse_args(argv)
    if args.command in ("describe", "list", "logs", "metrics"):
        # `trainforge list | head` should end quietly, as Unix tools do.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        settings = load_settings()
        if args.command == "run":
            gc.disable()
            try:
                from trainforge.cli.run import run_command
                from trainforge.context import Context
            finally:
                _loaded()

            if args.stop_grace_seconds is not None:
                settings = settings.with_overrides(stop_grace_seconds=args.stop_grace_seconds)
            return run_command(Context(settings), args.cli_input_json, args.training_job_name)
        if args.command == "interrupt":
            from trainforge.cli.interrupt import interrupt_command

            return interrupt_command(settings, args.name)
        if args.command == "agent-image":
            from trainforge.cli.agent_image import DEFAULT_BASE, build_agent_image

            print(build_agent_image(args.base or DEFAULT_BASE, args.tag or settings.agent_image))
            return 0
        if args.command == "doctor":
            from trainforge.cli.doctor import diagnose, report

            return report(
                diagnose(
                    settings,
                    s3_uri=args.s3_uri,
                    gpu_image=args.gpu_image,
                    min_free_gib=args.min_free_gib,
                )
            )
        if args.command == "ui":
            return cmd_ui(settings, args.open)
        if args.command == "serve":
            from trainforge.server.main import serve

            overrides: dict[str, Any] = {}
            if args.host:
                overrides["host"] = args.host
            if args.port:
                overrides["port"] = args.port
            return int(serve(settings.with_overrides(**overrides)))
        client = _client(settings)
        operation = {
            "describe": "DescribeTrainingJob",
            "list": "ListTrainingJobs",
            "logs": "GetLogEvents",
            # A job that is not there is what fails most: Describe says so first.
            "metrics": "DescribeTrainingJob",
            "stop": "StopTrainingJob",
        }[args.command]
        try:
            if args.command == "describe":
                return cmd_describe(client, args.name)
            if args.command == "list":
                return cmd_list(client, args)
            if args.command == "logs":
                return cmd_logs(client, args.name, args.follow)
            if args.command == "metrics":
                from trainforge.cli.metrics import cmd_metrics

                return cmd_metrics(client, args.name, args.json)
            client.call("sagemaker", "StopTrainingJob", {"TrainingJobName": args.name})
            return 0
        except ServiceError as exc:
            from trainforge.cli.output import print_error

            print_error(operation, exc)
            return 254
    except KeyboardInterrupt:
        return 130
    except (TrainforgeError, ValueError) as exc:
        print(f"trainforge: {exc}", file=sys.stderr)
        return 255


def entry() -> None:
    """The ``trainforge`` command. It ends as the interpreter's exit does (non-daemon threads
    joined, every exit handler run, output flushed), but without the interpreter's teardown,
    which frees the objects of a few hundred modules one by one for a process that is ending
    anyway: several milliseconds of a short ``trainforge run``. A command that raised ends the
    usual way."""
    ending: list[int] = []

    def end_now() -> None:
        # Registered before anything else, so it runs after every other exit handler.
        if not ending:
            return
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            return  # the usual exit reports it
        os._exit(ending[0])

    atexit.register(end_now)
    code = main()
    ending.append(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
