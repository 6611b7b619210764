"""``trainforge interrupt JOB``: interrupt a running managed spot training job as a reclaimed
spot instance is (SIGTERM, the grace period, SIGKILL), so that it starts again on fresh hosts
with its checkpoints restored, as SageMaker restarts it. There is no SageMaker operation for
this: the request goes into the job store of TRAINFORGE_HOME, where the worker running the job
(a server's scheduler, or a ``trainforge run`` process) picks it up.
"""

from __future__ import annotations

import sys

from trainforge.cli.output import print_error
from trainforge.errors import ServiceError
from trainforge.settings import Settings

# The AWS CLI's exit status for a request the service rejected, as the other commands use.
EXIT_REJECTED = 254


def interrupt_command(settings: Settings, name: str) -> int:
    from trainforge.context import Context

    try:
        job = Context(settings).service.interrupt_training_job(name)
    except ServiceError as exc:
        print_error("InterruptTrainingJob", exc)
        return EXIT_REJECTED
    print(
        f"Interrupting {job.name} ({job.secondary_status}): its containers get SIGTERM, and "
        "SIGKILL after the grace period; it then starts again on fresh hosts with its "
        "checkpoints restored.",
        file=sys.stderr,
    )
    return 0
