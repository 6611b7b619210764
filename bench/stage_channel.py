"""`python -m bench.stage_channel URI DEST`: stage one File-mode channel the way a job does
(listing, the key → path rules, the parallel download), into DEST. The process benchmark 3 times."""

from __future__ import annotations

import sys
from pathlib import Path

from trainforge.context import Context
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.staging import Stager
from trainforge.runtime.workspace import Workspace
from trainforge.settings import load_settings


def stage(uri: str, dest: Path) -> int:
    request = {
        "RoleArn": "arn:aws:iam::000000000000:role/bench",
        "AlgorithmSpecification": {"TrainingImage": "unused", "TrainingInputMode": "File"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "/unused"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    spec = JobSpec.from_request("stage-bench", "arn", "us-east-1", request)
    workspace = Workspace.at(dest, spec)
    workspace.create(spec)
    report = Stager(Context(load_settings()).storage).stage(spec, workspace, lambda: False)
    return report.objects


if __name__ == "__main__":
    print(stage(sys.argv[1], Path(sys.argv[2])))
