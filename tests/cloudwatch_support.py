"""CloudWatch clients for tests: real boto3 clients held to one wire protocol, and metric points
written straight into a server's store (as the runtime writes them).

botocore picks the first protocol of its own preference order that the model lists (JSON 1.0
for CloudWatch today); a client for another protocol is made from the same botocore model with
only that protocol listed, so botocore's own serializer and parser speak it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import create_loader

from trainforge.domain.metrics import MetricPoint
from trainforge.store.db import Database
from trainforge.store.metrics import MetricStore

PROTOCOLS = ("smithy-rpc-v2-cbor", "json", "query")


def cloudwatch_client(
    url: str,
    protocol: str,
    models: Path,
    credentials: tuple[str, str] | None = None,
    **config: Any,
) -> Any:
    model = create_loader().load_service_model("cloudwatch", "service-2")
    model["metadata"]["protocols"] = [protocol]
    model["metadata"]["protocol"] = protocol
    where = models / protocol
    version = where / "cloudwatch" / model["metadata"]["apiVersion"]
    version.mkdir(parents=True, exist_ok=True)
    (version / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(where))
    keys = {}
    if credentials is not None:
        keys = {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
    client = boto3.Session(botocore_session=session, **keys).client(
        "cloudwatch",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, **config),
    )
    assert client.meta.service_model.resolved_protocol == protocol
    return client


def add_points(home: Path, job: str, points: list[MetricPoint]) -> None:
    MetricStore(Database(home / "trainforge.db")).append(job, points)
