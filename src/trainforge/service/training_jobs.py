"""SageMaker semantics of the training job operations: Create, Describe, List, Stop, Update,
Delete and tags. Requests arrive already validated against the model's shapes
(``aws.validate``); this module adds the semantic checks of spec §12.2, uniqueness, and the wire
quirks of real SageMaker. No HTTP and no Docker here.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from trainforge.domain import contract
from trainforge.domain.records import QueueState, Schedule, TrainingJob, Transition
from trainforge.domain.request import CreateTrainingJobRequest
from trainforge.domain.status import (
    MESSAGES,
    RUNNING_SECONDARY,
    SecondaryStatus,
    TrainingJobStatus,
)
from trainforge.errors import (
    ResourceInUse,
    ResourceLimitExceeded,
    ValidationError,
)
from trainforge.service import job_changes, mapping
from trainforge.store.jobs import DuplicateJob, JobStore, ListQuery, UnknownJob

# Real SageMaker answers an unknown job in Describe/Stop with ValidationException, not the
# modelled ResourceNotFound (spec §12.4); botocore's waiter treats that error as a failure.
NOT_FOUND_MESSAGE = "Requested resource not found."
DUPLICATE_MESSAGE = (
    "Training job names must be unique within an AWS account and region, and a training job "
    "with this name already exists ({arn})"
)
MAX_RUNTIME_LIMIT = 2_419_200  # 28 days, the documented maximum of MaxRuntimeInSeconds
DEFAULT_LIST_LIMIT = 10

InputChecker = Callable[[str, CreateTrainingJobRequest], str | None]
"""(job name, request) → the error message for missing input data, or None."""
Admission = Callable[[CreateTrainingJobRequest], None]
"""Raises ResourceLimitExceeded when the request can never be admitted."""


@dataclass(frozen=True)
class Claim:
    """Create the job already claimed by a worker (``trainforge run`` runs it itself)."""

    owner: str
    lease_seconds: float


class TrainingJobService:
    def __init__(
        self,
        jobs: JobStore,
        region: str,
        account_id: str,
        input_checker: InputChecker | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.jobs = jobs
        self.region = region
        self.account_id = account_id
        self.input_checker = input_checker
        self.admission = admission

    def arn(self, name: str) -> str:
        return contract.training_job_arn(self.region, self.account_id, name)

    # -- Create --------------------------------------------------------------------------------

    def create_training_job(
        self, params: dict[str, Any], claim: Claim | None = None
    ) -> dict[str, Any]:
        name = params["TrainingJobName"]
        check_semantics(params)
        # The protocol layer validated ``params`` against the model's CreateTrainingJobRequest,
        # which domain.request is generated from: below this line the request is typed.
        request = cast(CreateTrainingJobRequest, params)
        arn = self.arn(name)
        if self.jobs.exists(name):
            raise ResourceInUse(DUPLICATE_MESSAGE.format(arn=arn))
        if self.admission is not None:
            self.admission(request)
        if self.input_checker is not None:
            problem = self.input_checker(name, request)
            if problem:
                raise ValidationError(problem)
        now = round(time.time(), 3)
        job = TrainingJob(
            name=name,
            arn=arn,
            request=request,
            status=TrainingJobStatus.IN_PROGRESS,
            secondary_status=SecondaryStatus.STARTING,
            creation_time=now,
            last_modified_time=now,
            transitions=[Transition(SecondaryStatus.STARTING, now, None, MESSAGES["created"])],
        )
        schedule = Schedule(
            name=name,
            queue_state=QueueState.CLAIMED if claim else QueueState.QUEUED,
            lease_owner=claim.owner if claim else None,
            lease_expires=now + claim.lease_seconds if claim else None,
            attempts=1 if claim else 0,
        )
        try:
            self.jobs.insert(job, schedule)
        except DuplicateJob:
            raise ResourceInUse(DUPLICATE_MESSAGE.format(arn=arn)) from None
        tags = params.get("Tags") or []
        if tags:
            self.jobs.add_tags(arn, [(t["Key"], t["Value"]) for t in tags])
        return {"TrainingJobArn": arn}

    # -- Describe / List -----------------------------------------------------------------------

    def get(self, name: str) -> TrainingJob:
        job = self.jobs.get(name)
        if job is None:
            raise ValidationError(NOT_FOUND_MESSAGE)
        return job

    def describe_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        return mapping.describe(self.get(params["TrainingJobName"]))

    def list_training_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        sort_by = params.get("SortBy", "CreationTime")
        # The model says Ascending by default, but real SageMaker lists newest first (spec §13.3).
        descending = params.get("SortOrder", "Descending") == "Descending"
        after = _decode_token(params.get("NextToken"), sort_by, descending)
        query = ListQuery(
            name_contains=params.get("NameContains"),
            status_equals=params.get("StatusEquals"),
            creation_after=params.get("CreationTimeAfter"),
            creation_before=params.get("CreationTimeBefore"),
            modified_after=params.get("LastModifiedTimeAfter"),
            modified_before=params.get("LastModifiedTimeBefore"),
            sort_by=sort_by,
            descending=descending,
            limit=int(params.get("MaxResults", DEFAULT_LIST_LIMIT)),
            after_key=after,
        )
        jobs, next_key = self.jobs.page(query)
        result: dict[str, Any] = {"TrainingJobSummaries": [mapping.summary(j) for j in jobs]}
        if next_key is not None:
            result["NextToken"] = _encode_token(next_key, sort_by, descending)
        return result

    # -- Stop / Delete -------------------------------------------------------------------------

    def stop_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["TrainingJobName"]
        job = self.get(name)
        if job.status is not TrainingJobStatus.IN_PROGRESS:
            raise ValidationError(
                f"The request was rejected because the training job is in status {job.status}."
            )
        try:
            moved = self.jobs.transition(
                name,
                SecondaryStatus.STOPPING,
                MESSAGES["stopping"],
                request_stop=True,
                only_from=_RUNNING,
            )
        except UnknownJob:
            raise ValidationError(NOT_FOUND_MESSAGE) from None
        if moved.secondary_status is not SecondaryStatus.STOPPING:
            raise ValidationError(
                f"The request was rejected because the training job is in status {moved.status}."
            )
        return {}

    # -- Update, and trainforge's own spot interruption -----------------------------------------

    def update_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = job_changes.update_training_job(self.jobs, params)
        return {"TrainingJobArn": job.arn}

    def interrupt_training_job(self, name: str) -> TrainingJob:
        """Not a SageMaker operation: ``trainforge interrupt`` (see ``job_changes``)."""
        return job_changes.interrupt_training_job(self.jobs, name)

    def delete_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["TrainingJobName"]
        job = self.get(name)
        if not job.is_terminal:
            raise ResourceInUse(
                f"Training job {name} is in status {job.status}; only a job that has ended "
                "(Completed, Failed or Stopped) can be deleted."
            )
        self.jobs.delete_tags(job.arn, [key for key, _ in self.jobs.tags(job.arn)])
        self.jobs.delete(name)
        return {}

    # -- Tags ----------------------------------------------------------------------------------

    def _job_for_arn(self, arn: str) -> TrainingJob:
        prefix = contract.training_job_arn(self.region, self.account_id, "")
        name = arn[len(prefix) :] if arn.startswith(prefix) else None
        job = self.jobs.get(name) if name else None
        if job is None:
            raise ValidationError(NOT_FOUND_MESSAGE)
        return job

    def add_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_for_arn(params["ResourceArn"])
        tags = [(t["Key"], t["Value"]) for t in params["Tags"]]
        existing = dict(self.jobs.tags(job.arn))
        if len(set(existing) | {k for k, _ in tags}) > 50:
            raise ResourceLimitExceeded("A resource can have at most 50 tags.")
        self.jobs.add_tags(job.arn, tags)
        return {"Tags": [{"Key": k, "Value": v} for k, v in tags]}

    def list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_for_arn(params["ResourceArn"])
        tags = [{"Key": k, "Value": v} for k, v in self.jobs.tags(job.arn)]
        start = 0
        if params.get("NextToken"):
            try:
                start = int(base64.urlsafe_b64decode(params["NextToken"].encode()).decode())
            except (ValueError, binascii.Error):
                raise ValidationError("Invalid NextToken.") from None
            if start < 0:
                raise ValidationError("Invalid NextToken.")
        limit = int(params.get("MaxResults", 50))
        page = tags[start : start + limit]
        result: dict[str, Any] = {"Tags": page}
        if start + limit < len(tags):
            result["NextToken"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        return result

    def delete_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_for_arn(params["ResourceArn"])
        self.jobs.delete_tags(job.arn, params["TagKeys"])
        return {}


_RUNNING = RUNNING_SECONDARY


# What the sort key of each SortBy holds (store.jobs orders by these columns).
SORT_KEY_TYPES: dict[str, tuple[type | tuple[type, ...], ...]] = {
    "CreationTime": ((int, float), str),
    "Name": (str,),
    "Status": (str, (int, float), str),
}


def _encode_token(key: tuple[Any, ...], sort_by: str, descending: bool) -> str:
    raw = json.dumps({"k": list(key), "s": sort_by, "d": descending}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_token(token: str | None, sort_by: str, descending: bool) -> tuple[Any, ...] | None:
    if not token:
        return None
    invalid = ValidationError("Invalid pagination token: NextToken was not returned by this API.")
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        key = tuple(data["k"])
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise invalid from None
    if len(key) != len(SORT_KEY_TYPES.get(sort_by, ())) or not all(
        isinstance(part, kind) and not isinstance(part, bool)
        for part, kind in zip(key, SORT_KEY_TYPES[sort_by], strict=True)
    ):
        raise invalid
    if data.get("s") != sort_by or data.get("d") != descending:
        raise ValidationError(
            "The NextToken was issued for a different SortBy or SortOrder; repeat the request "
            "with the same parameters."
        )
    return key


def check_semantics(params: dict[str, Any]) -> None:
    """The cross-field rules of CreateTrainingJob that the model cannot express (spec §12.2)."""
    from trainforge.service.semantics import semantic_errors

    problem = semantic_errors(params)
    if problem:
        raise ValidationError(problem)
