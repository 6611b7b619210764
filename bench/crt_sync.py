"""`.cache/crt-venv/bin/python bench/crt_sync.py s3://BUCKET/PREFIX DEST`: download every object under a prefix with
boto3's CRT transfer client (s3transfer's ``CRTTransferManager`` on the AWS Common Runtime's S3
client, what ``TransferConfig(preferred_transfer_client="crt")`` gives boto3), into DEST. The
baseline of benchmark 3c.

boto3 only hands a transfer to the CRT for AWS's own endpoints, so the manager is built here the
way boto3 builds it, with the benchmark's loopback endpoint (plain HTTP, path-style) in the
request serializer's client configuration. It runs in a virtual environment of its own with
``boto3[crt]`` (``make bench-tools``): installed in trainforge's, the CRT would be loaded by every
botocore import there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import botocore.session
from botocore.config import Config
from s3transfer.crt import (
    BotocoreCRTCredentialsWrapper,
    BotocoreCRTRequestSerializer,
    CRTTransferManager,
    create_s3_crt_client,
)


def sync(uri: str, dest: Path) -> int:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
    region = os.environ.get("AWS_REGION", "us-east-1")
    session = botocore.session.Session()
    config = Config(s3={"addressing_style": "path"})
    lister = session.create_client("s3", region_name=region, endpoint_url=endpoint, config=config)
    keys = [
        item["Key"]
        for page in lister.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]
    credentials = BotocoreCRTCredentialsWrapper(session.get_credentials())
    crt_client = create_s3_crt_client(
        region, crt_credentials_provider=credentials.to_crt_credentials_provider(), use_ssl=False
    )
    serializer = BotocoreCRTRequestSerializer(
        session, {"region_name": region, "endpoint_url": endpoint, "config": config}
    )
    with CRTTransferManager(crt_client, serializer) as manager:
        futures = []
        for key in keys:
            path = dest / key[len(prefix) :].lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            futures.append(manager.download(bucket, key, str(path)))
        for future in futures:
            future.result()
    return len(keys)


if __name__ == "__main__":
    print(sync(sys.argv[1], Path(sys.argv[2])))
