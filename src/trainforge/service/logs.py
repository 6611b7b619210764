"""CloudWatch Logs semantics over the stored log lines: DescribeLogStreams, GetLogEvents and
FilterLogEvents for the log group ``/aws/sagemaker/TrainingJobs`` (spec §11).

GetLogEvents tokens are ``f/<position>`` and ``b/<position>``; at the end of a stream the forward
token that was passed in comes back unchanged with no events, which is how the SDKs know they
have caught up.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from trainforge.errors import LogsInvalidParameter, LogsResourceNotFound
from trainforge.service.logfilter import FilterPattern
from trainforge.store.logs import EventRow, LogStore, StreamRow

GROUP_MISSING = "The specified log group does not exist."
STREAM_MISSING = "The specified log stream does not exist."
MAX_EVENTS = 10_000
MAX_RESPONSE_BYTES = 1_048_576
# Each event costs its UTF-8 size plus 26 bytes of overhead, as in PutLogEvents.
EVENT_OVERHEAD = 26
# Positions are SQLite row ids: a token beyond them is no token of ours.
_MAX_POSITION = 1 << 62


def _group_name(params: dict[str, Any]) -> str:
    name = params.get("logGroupName")
    identifier = params.get("logGroupIdentifier")
    if name and identifier:
        raise LogsInvalidParameter(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters."
        )
    if identifier:
        # An ARN ends with ":log-group:<name>" (optionally followed by ":*").
        name = identifier.split(":log-group:", 1)[-1].removesuffix(":*")
    if not name:
        raise LogsInvalidParameter("Either logGroupName or logGroupIdentifier must be specified.")
    return str(name)


def _trim_to_size(rows: list[EventRow]) -> list[EventRow]:
    total = 0
    for index, row in enumerate(rows):
        total += len(row.message.encode("utf-8")) + EVENT_OVERHEAD
        if total > MAX_RESPONSE_BYTES and index > 0:
            return rows[:index]
    return rows


class LogsService:
    def __init__(self, logs: LogStore, region: str, account_id: str) -> None:
        self.logs = logs
        self.region = region
        self.account_id = account_id

    def _require_group(self, group: str) -> None:
        if not self.logs.group_exists(group):
            raise LogsResourceNotFound(GROUP_MISSING)

    def _stream_arn(self, group: str, stream: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{group}:log-stream:{stream}"

    # -- DescribeLogStreams --------------------------------------------------------------------

    def describe_log_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        group = _group_name(params)
        prefix = params.get("logStreamNamePrefix")
        by_last_event = params.get("orderBy") == "LastEventTime"
        if by_last_event and prefix:
            raise LogsInvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
        self._require_group(group)
        limit = int(params.get("limit", 50))
        offset = _decode_offset(params.get("nextToken"))
        rows = self.logs.streams(
            group,
            prefix=prefix,
            order_by_last_event=by_last_event,
            descending=bool(params.get("descending", False)),
            offset=offset,
            limit=limit + 1,
        )
        result: dict[str, Any] = {
            "logStreams": [self._stream_shape(group, row) for row in rows[:limit]]
        }
        if len(rows) > limit:
            result["nextToken"] = _encode_offset(offset + limit)
        return result

    def _stream_shape(self, group: str, row: StreamRow) -> dict[str, Any]:
        shape: dict[str, Any] = {"logStreamName": row.name, "creationTime": row.creation_time}
        if row.first_event is not None:
            shape["firstEventTimestamp"] = row.first_event
            shape["lastEventTimestamp"] = row.last_event
            shape["lastIngestionTime"] = row.last_ingestion
        shape["uploadSequenceToken"] = str(10**55 + row.id)
        shape["arn"] = self._stream_arn(group, row.name)
        shape["storedBytes"] = row.stored_bytes
        return shape

    # -- GetLogEvents --------------------------------------------------------------------------

    def get_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group = _group_name(params)
        self._require_group(group)
        stream = self.logs.stream(group, params["logStreamName"])
        if stream is None:
            raise LogsResourceNotFound(STREAM_MISSING)
        limit = min(int(params.get("limit", MAX_EVENTS)), MAX_EVENTS)
        start = params.get("startTime")
        end = params.get("endTime")
        token = params.get("nextToken")
        direction, position = _decode_position(token)
        if direction is None:
            direction = "f" if params.get("startFromHead") else "b"
            position = 0 if direction == "f" else None
        if direction == "f":
            rows = self.logs.events(
                [stream.id], after_id=position, start_ms=start, end_ms=end, limit=limit
            )
            rows = _trim_to_size(rows)
        else:
            rows = self.logs.events(
                [stream.id],
                before_id=position,
                start_ms=start,
                end_ms=end,
                limit=limit,
                newest_first=True,
            )
            rows = list(reversed(_trim_to_size(rows)))
        if rows:
            forward = f"f/{rows[-1].id:020d}"
            backward = f"b/{rows[0].id:020d}"
        elif direction == "f":
            # At the end: the same forward token comes back, which is how readers know.
            forward = token or f"f/{position or 0:020d}"
            backward = f"b/{(position or 0) + 1:020d}"
        else:
            # At the start: the backward token comes back, and reading forward starts here.
            first = position if position is not None else (self._last_id(stream.id) + 1)
            forward = f"f/{max(first - 1, 0):020d}"
            backward = token or f"b/{first:020d}"
        return {
            "events": [
                {"timestamp": r.timestamp, "message": r.message, "ingestionTime": r.ingestion_time}
                for r in rows
            ],
            "nextForwardToken": forward,
            "nextBackwardToken": backward,
        }

    def _last_id(self, stream_id: int) -> int:
        newest = self.logs.events([stream_id], limit=1, newest_first=True)
        return newest[0].id if newest else 0

    # -- FilterLogEvents -----------------------------------------------------------------------

    def filter_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group = _group_name(params)
        names = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix")
        if names and prefix:
            raise LogsInvalidParameter(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters."
            )
        pattern = FilterPattern.parse(params.get("filterPattern") or "")
        self._require_group(group)
        if names:
            streams = self.logs.streams_named(group, names)
        else:
            streams = self.logs.streams(group, prefix=prefix, limit=100_000)
        by_id = {s.id: s for s in streams}
        limit = min(int(params.get("limit", MAX_EVENTS)), MAX_EVENTS)
        after = _decode_offset(params.get("nextToken"))
        matched: list[EventRow] = []
        cursor = after
        exhausted = False
        while len(matched) < limit:
            batch = self.logs.events(
                list(by_id),
                after_id=cursor,
                start_ms=params.get("startTime"),
                # FilterLogEvents' endTime is inclusive, unlike GetLogEvents' (CloudWatch docs).
                end_ms=None if params.get("endTime") is None else params["endTime"] + 1,
                limit=5000,
            )
            if not batch:
                exhausted = True
                break
            for row in batch:
                cursor = row.id
                if pattern.matches(row.message):
                    matched.append(row)
                    if len(matched) >= limit:
                        break
        trimmed = _trim_to_size(matched)
        if len(trimmed) < len(matched):
            cursor = trimmed[-1].id
            exhausted = False
        matched = trimmed
        result: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": by_id[r.stream_id].name,
                    "timestamp": r.timestamp,
                    "message": r.message,
                    "ingestionTime": r.ingestion_time,
                    "eventId": f"{r.id:056d}",
                }
                for r in matched
            ],
            "searchedLogStreams": [
                {"logStreamName": s.name, "searchedCompletely": exhausted} for s in streams
            ],
        }
        if not exhausted and cursor:
            result["nextToken"] = _encode_offset(cursor)
        return result


def _decode_position(token: str | None) -> tuple[str | None, int | None]:
    if not token:
        return None, None
    direction, _, digits = token.partition("/")
    if direction not in ("f", "b") or not digits.isascii() or not digits.isdigit():
        raise LogsInvalidParameter("The specified nextToken is invalid.")
    position = int(digits[-19:]) if len(digits) <= 20 else -1
    if not 0 <= position < _MAX_POSITION:
        raise LogsInvalidParameter("The specified nextToken is invalid.")
    return direction, position


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _decode_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise LogsInvalidParameter("The specified nextToken is invalid.") from None
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < _MAX_POSITION:
        raise LogsInvalidParameter("The specified nextToken is invalid.")
    return offset
