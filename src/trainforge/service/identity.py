"""The IAM and STS answers the SageMaker SDKs need before they create a job: IAM ``GetRole`` and
``SimulatePrincipalPolicy`` (SDK v3 checks the execution role's trust policy and permissions),
STS ``GetCallerIdentity`` (the account in the SDKs' default bucket name,
``sagemaker-<region>-<account>``).

trainforge keeps no identities. Its answers are permissive and stable (docs/operations.md, "IAM
and STS"): any well-formed role name is a role of the configured account (``TRAINFORGE_ACCOUNT_ID``)
that SageMaker may assume; every simulated action is allowed; the caller is that account's root.
The wire (query protocol, XML) is the protocol layer's; this module only shapes the values and
must not import the store or the runtime.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from typing import Any
from urllib.parse import quote

from trainforge.errors import IamInvalidInput

# The trust policy every role answers with: SageMaker may assume it, as an execution role needs.
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
TRUST_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": SAGEMAKER_PRINCIPAL},
            "Action": "sts:AssumeRole",
        }
    ],
}
MAX_SESSION_SECONDS = 3600
# arn:<partition>:iam::<account>:<user|group|role>/<path/><name>: whose policies can be simulated.
_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(user|group|role)/(?:[^/]+/)*[^/]+")


def _unique_id(prefix: str, name: str) -> str:
    """A stable IAM unique id (``AROA`` + 17 characters) derived from the name, so the same role
    has the same id on every call and every restart, as a real role does."""
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()
    return prefix + digest[:17]


class IdentityService:
    def __init__(self, account_id: str, created: dt.datetime) -> None:
        self.account_id = account_id
        # The roles' CreateDate: when this trainforge started answering for them.
        self.created = created

    def get_role(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params["RoleName"])
        return {
            "Role": {
                "Path": "/",
                "RoleName": name,
                "RoleId": _unique_id("AROA", name),
                "Arn": f"arn:aws:iam::{self.account_id}:role/{name}",
                "CreateDate": self.created,
                # IAM sends policy documents URL-encoded; botocore decodes them into dicts.
                "AssumeRolePolicyDocument": quote(json.dumps(TRUST_POLICY), safe=""),
                "Description": "Answered by trainforge: any role name is a SageMaker role.",
                "MaxSessionDuration": MAX_SESSION_SECONDS,
            }
        }

    def simulate_principal_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        source = str(params["PolicySourceArn"])
        if not _PRINCIPAL_ARN.fullmatch(source):
            raise IamInvalidInput(
                f"Invalid ARN: {source} is not the ARN of an IAM user, group or role."
            )
        resources = [str(r) for r in params.get("ResourceArns") or []]
        results = []
        for action in params["ActionNames"]:
            result: dict[str, Any] = {
                "EvalActionName": str(action),
                "EvalResourceName": resources[0] if len(resources) == 1 else "*",
                "EvalDecision": "allowed",
                "MatchedStatements": [],
                "MissingContextValues": [],
            }
            if resources:
                result["ResourceSpecificResults"] = [
                    {
                        "EvalResourceName": resource,
                        "EvalResourceDecision": "allowed",
                        "MatchedStatements": [],
                        "MissingContextValues": [],
                    }
                    for resource in resources
                ]
            results.append(result)
        return {"EvaluationResults": results, "IsTruncated": False}

    def get_caller_identity(self, params: dict[str, Any]) -> dict[str, Any]:
        # The account's root: what GetCallerIdentity answers for the root user's access keys.
        return {
            "UserId": self.account_id,
            "Account": self.account_id,
            "Arn": f"arn:aws:iam::{self.account_id}:root",
        }
