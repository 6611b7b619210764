"""Changes to a training job after it was created, other than stopping it: UpdateTrainingJob
(ProfilerConfig, ProfilerRuleConfigurations, the warm pool's KeepAlivePeriodInSeconds and the
RemoteDebugConfig switch, which is all SageMaker lets change) and the spot interruption
``trainforge interrupt`` asks for. The stored request is what Describe echoes, so an update shows
there. Requests arrive validated against the model's shapes; no HTTP, no Docker, no status
writes here (an interruption is carried out by the job's worker).
"""

from __future__ import annotations

import copy
from typing import Any

from trainforge.domain.records import TrainingJob
from trainforge.domain.request import CreateTrainingJobRequest
from trainforge.domain.status import INTERRUPTIBLE_SECONDARY, SecondaryStatus
from trainforge.errors import ValidationError
from trainforge.store.jobs import JobStore, UnknownJob

NOT_FOUND_MESSAGE = "Requested resource not found."
UPDATABLE = ("ProfilerConfig", "ProfilerRuleConfigurations", "ResourceConfig", "RemoteDebugConfig")
# RemoteDebugConfig "can be updated when the SecondaryStatus of the job is Downloading or
# Training" (UpdateTrainingJob's documentation).
_REMOTE_DEBUG_STATUSES = (SecondaryStatus.DOWNLOADING, SecondaryStatus.TRAINING)


def _ended(job: TrainingJob) -> ValidationError:
    return ValidationError(
        f"The request was rejected because the training job is in status {job.status}."
    )


def _updated_request(job: TrainingJob, params: dict[str, Any]) -> CreateTrainingJobRequest:
    """The job's request with the update applied, or the ValidationException SageMaker gives."""
    if job.is_terminal:
        raise _ended(job)
    request = copy.deepcopy(job.request)
    profiler = params.get("ProfilerConfig")
    if profiler is not None:
        request["ProfilerConfig"] = {**request.get("ProfilerConfig", {}), **copy.deepcopy(profiler)}
    rules = params.get("ProfilerRuleConfigurations")
    if rules is not None:
        kept = {
            r["RuleConfigurationName"]: r for r in request.get("ProfilerRuleConfigurations", [])
        }
        for rule in rules:
            kept[rule["RuleConfigurationName"]] = copy.deepcopy(rule)
        request["ProfilerRuleConfigurations"] = list(kept.values())
        if len(kept) > 20:
            raise ValidationError(
                "1 validation error detected: Value at 'profilerRuleConfigurations' failed to "
                "satisfy constraint: Member must have length less than or equal to 20"
            )
    resource = params.get("ResourceConfig")
    if resource is not None:
        request.setdefault("ResourceConfig", {})["KeepAlivePeriodInSeconds"] = resource[
            "KeepAlivePeriodInSeconds"
        ]
    remote = params.get("RemoteDebugConfig")
    if remote is not None:
        if job.secondary_status not in _REMOTE_DEBUG_STATUSES:
            raise ValidationError(
                "RemoteDebugConfig can be updated only while the training job's SecondaryStatus "
                f"is Downloading or Training; it is {job.secondary_status}."
            )
        request["RemoteDebugConfig"] = {
            **(request.get("RemoteDebugConfig") or {}),
            **copy.deepcopy(remote),
        }
    return request


def update_training_job(jobs: JobStore, params: dict[str, Any]) -> TrainingJob:
    name = params["TrainingJobName"]
    if not any(params.get(key) is not None for key in UPDATABLE):
        raise ValidationError(
            "UpdateTrainingJob needs at least one of ProfilerConfig, ProfilerRuleConfigurations, "
            "ResourceConfig or RemoteDebugConfig."
        )
    try:
        return jobs.update_request(name, lambda job: _updated_request(job, params))
    except UnknownJob:
        raise ValidationError(NOT_FOUND_MESSAGE) from None


def interrupt_training_job(jobs: JobStore, name: str) -> TrainingJob:
    """Ask the worker running a managed spot job to interrupt it as a reclaimed spot instance
    is: SIGTERM, the grace period, then the job starts again on fresh hosts."""
    job = jobs.get(name)
    if job is None:
        raise ValidationError(NOT_FOUND_MESSAGE)
    if not job.request.get("EnableManagedSpotTraining"):
        raise ValidationError(
            f"Training job {name} is not a managed spot training job "
            "(EnableManagedSpotTraining is not true): only spot jobs are interrupted."
        )
    try:
        seen = jobs.request_interrupt(name, INTERRUPTIBLE_SECONDARY)
    except UnknownJob:
        raise ValidationError(NOT_FOUND_MESSAGE) from None
    if seen.secondary_status not in INTERRUPTIBLE_SECONDARY or seen.stop_requested:
        raise ValidationError(
            f"Training job {name} cannot be interrupted now: its status is {seen.status} "
            f"({seen.secondary_status}). A spot job is interrupted while it is Downloading or "
            "Training."
        )
    return seen
