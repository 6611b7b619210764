"""Issue 11: the IAM and STS calls the SageMaker SDKs make before they create a job, answered by
a real `trainforge serve` in the query protocol: IAM GetRole and SimulatePrincipalPolicy, STS
GetCallerIdentity, through real boto3 clients, the real AWS CLI (pointed at the server with
AWS_ENDPOINT_URL_IAM / AWS_ENDPOINT_URL_STS), raw form requests, and SigV4-signed requests (IAM
signs for us-east-1 and service ``iam``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.server_support import RunningServer, start_server

AWS = str(Path(sys.executable).parent / "aws")
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/service-role/SageMakerExecution"
SAGEMAKER_TRUST = {
    "Effect": "Allow",
    "Principal": {"Service": "sagemaker.amazonaws.com"},
    "Action": "sts:AssumeRole",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("identity-home")
    running = start_server(home, TRAINFORGE_ACCOUNT_ID=ACCOUNT)
    yield running
    running.stop()


def client(url: str, service: str, credentials: tuple[str, str] | None = None) -> Any:
    keys = {}
    if credentials is not None:
        keys = {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **keys,
    )


def test_get_role_answers_a_role_sagemaker_may_assume(server: RunningServer) -> None:
    iam = client(server.url, "iam")
    answer = iam.get_role(RoleName="SageMakerExecution")
    assert answer["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "text/xml"
    role = answer["Role"]
    assert role["RoleName"] == "SageMakerExecution"
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecution"
    assert role["Path"] == "/"
    assert role["RoleId"].startswith("AROA") and len(role["RoleId"]) == 21
    # botocore decodes the URL-encoded document IAM sends into a dict.
    assert role["AssumeRolePolicyDocument"]["Statement"] == [SAGEMAKER_TRUST]
    assert role["MaxSessionDuration"] == 3600
    again = iam.get_role(RoleName="SageMakerExecution")["Role"]
    assert (again["RoleId"], again["CreateDate"]) == (role["RoleId"], role["CreateDate"])
    assert iam.get_role(RoleName="other")["Role"]["RoleId"] != role["RoleId"]


def test_simulate_principal_policy_allows(server: RunningServer) -> None:
    iam = client(server.url, "iam")
    actions = ["sagemaker:CreateTrainingJob", "s3:GetObject", "iam:PassRole"]
    answer = iam.simulate_principal_policy(PolicySourceArn=ROLE, ActionNames=actions)
    results = answer["EvaluationResults"]
    assert [r["EvalActionName"] for r in results] == actions
    assert {r["EvalDecision"] for r in results} == {"allowed"}
    assert {r["EvalResourceName"] for r in results} == {"*"}
    assert answer["IsTruncated"] is False
    buckets = ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"]
    scoped = iam.simulate_principal_policy(
        PolicySourceArn=ROLE, ActionNames=["s3:PutObject"], ResourceArns=buckets
    )["EvaluationResults"][0]
    assert [r["EvalResourceName"] for r in scoped["ResourceSpecificResults"]] == buckets
    assert {r["EvalResourceDecision"] for r in scoped["ResourceSpecificResults"]} == {"allowed"}
    # The paginator the SDKs use ends after the one page.
    pages = list(
        iam.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=ROLE, ActionNames=actions
        )
    )
    assert len(pages) == 1


def test_get_caller_identity_is_the_configured_account(server: RunningServer) -> None:
    identity = client(server.url, "sts").get_caller_identity()
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert identity["UserId"] == ACCOUNT


def test_errors_as_iam_gives_them(server: RunningServer) -> None:
    iam = client(server.url, "iam")
    with pytest.raises(ClientError) as caught:
        iam.get_role(RoleName="no spaces allowed")
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (error["Code"], error["Type"]) == ("ValidationError", "Sender")
    assert "at 'roleName' failed to satisfy constraint" in error["Message"]
    with pytest.raises(ClientError) as caught:
        iam.get_role(RoleName="r" * 65)
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "Member must have length less than or equal to 64" in str(caught.value)
    with pytest.raises(ClientError) as caught:
        iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:s3:::not-a-principal", ActionNames=["s3:GetObject"]
        )
    assert caught.value.response["Error"]["Code"] == "InvalidInput"
    assert "arn:aws:s3:::not-a-principal" in caught.value.response["Error"]["Message"]


def _form(server: RunningServer, pairs: list[tuple[str, str]]) -> tuple[int, ElementTree.Element]:
    request = urllib.request.Request(
        server.url + "/",
        data=urlencode(pairs).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, ElementTree.fromstring(response.read())
    except urllib.error.HTTPError as error:
        return error.code, ElementTree.fromstring(error.read())


def test_raw_query_wire(server: RunningServer) -> None:
    status, root = _form(server, [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")])
    assert status == 200
    assert root.tag == "{https://sts.amazonaws.com/doc/2011-06-15/}GetCallerIdentityResponse"
    ns = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}
    assert root.findtext("./s:GetCallerIdentityResult/s:Account", namespaces=ns) == ACCOUNT
    assert root.findtext("./s:ResponseMetadata/s:RequestId", namespaces=ns)
    status, root = _form(server, [("Action", "GetRole"), ("Version", "2010-05-08")])
    assert status == 400
    assert root.tag == "{https://iam.amazonaws.com/doc/2010-05-08/}ErrorResponse"
    ns = {"i": "https://iam.amazonaws.com/doc/2010-05-08/"}
    assert root.findtext("./i:Error/i:Code", namespaces=ns) == "ValidationError"
    assert "'roleName'" in (root.findtext("./i:Error/i:Message", namespaces=ns) or "")
    # An IAM operation trainforge does not serve is IAM's InvalidAction, in IAM's namespace.
    status, root = _form(server, [("Action", "ListRoles"), ("Version", "2010-05-08")])
    assert status == 400
    assert root.findtext("./i:Error/i:Code", namespaces=ns) == "InvalidAction"


def test_aws_cli(server: RunningServer) -> None:
    env = dict(os.environ)
    env["AWS_ENDPOINT_URL_IAM"] = server.url
    env["AWS_ENDPOINT_URL_STS"] = server.url

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AWS, *args], capture_output=True, text=True, env=env, timeout=60)

    role = aws("iam", "get-role", "--role-name", "cli-role")
    assert role.returncode == 0, role.stderr
    document = json.loads(role.stdout)["Role"]
    assert document["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/cli-role"
    assert document["AssumeRolePolicyDocument"]["Statement"] == [SAGEMAKER_TRUST]
    identity = aws("sts", "get-caller-identity")
    assert identity.returncode == 0, identity.stderr
    assert json.loads(identity.stdout)["Account"] == ACCOUNT
    bad = aws("iam", "get-role", "--role-name", "a/b")
    assert bad.returncode == 255
    assert "An error occurred (ValidationError) when calling the GetRole operation" in bad.stderr


def test_signed_requests_verify(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    key = ("AKIDIDENTITY", "identity-secret")
    with start_server(home, TRAINFORGE_ACCESS_KEYS=":".join(key)) as server:
        assert client(server.url, "iam", key).get_role(RoleName="r")["Role"]["RoleName"] == "r"
        assert client(server.url, "sts", key).get_caller_identity()["Account"]
        for service, call in (
            ("iam", lambda c: c.get_role(RoleName="r")),
            ("sts", lambda c: c.get_caller_identity()),
        ):
            with pytest.raises(ClientError) as caught:
                call(client(server.url, service, (key[0], "not-the-secret")))
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
            assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
            with pytest.raises(ClientError) as caught:
                call(client(server.url, service, ("AKIDUNKNOWN", key[1])))
            assert caught.value.response["Error"]["Code"] == "InvalidClientTokenId"
