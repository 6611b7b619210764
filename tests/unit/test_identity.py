"""The IAM and STS answers (service/identity.py) and how the query protocol tells IAM and STS
requests from CloudWatch's and names their errors (aws/query.py, aws/protocols.py)."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import unquote

import pytest

from trainforge.aws.protocols import HttpRequest, error_code, service_hint
from trainforge.aws.query import QUERY
from trainforge.errors import (
    IamInvalidInput,
    InvalidSignature,
    MissingAuthenticationToken,
    UnknownOperation,
    UnrecognizedClient,
    ValidationError,
)
from trainforge.service.identity import IdentityService

CREATED = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
FORM = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}


def form(body: str) -> HttpRequest:
    return HttpRequest("POST", "/", FORM, body.encode())


@pytest.mark.parametrize(
    ("body", "service"),
    [
        ("Action=GetRole&Version=2010-05-08&RoleName=r", "iam"),
        ("Action=ListRoles&Version=2010-05-08", "iam"),
        ("Action=AssumeRole&Version=2011-06-15", "sts"),
        ("Version=2011-06-15&Action=GetCallerIdentity", "sts"),
        ("Action=ListMetrics&Version=2010-08-01", "cloudwatch"),
        ("Action=Nothing&Version=1999-01-01", None),
        ("%ff%fe=\udcff", None),
    ],
)
def test_a_query_request_is_answered_for_the_service_it_names(
    body: str, service: str | None
) -> None:
    request = HttpRequest("POST", "/", FORM, body.encode("utf-8", "surrogateescape"))
    assert QUERY.service_of(request) == service
    assert service_hint(request) == service


def test_iam_and_sts_errors_carry_their_query_codes() -> None:
    assert error_code(ValidationError("m"), "iam") == "ValidationError"
    assert error_code(InvalidSignature("m"), "sts") == "SignatureDoesNotMatch"
    assert error_code(UnrecognizedClient("m"), "iam") == "InvalidClientTokenId"
    assert error_code(MissingAuthenticationToken("m"), "sts") == "MissingAuthenticationToken"
    assert error_code(UnknownOperation("m"), "iam") == "InvalidAction"
    assert error_code(IamInvalidInput("m"), "iam") == "InvalidInput"
    # The other services keep their own codes.
    assert error_code(ValidationError("m"), "sagemaker") == "ValidationException"
    assert error_code(ValidationError("m"), "cloudwatch") == "ValidationError"
    assert error_code(UnrecognizedClient("m"), "cloudwatch") == "UnrecognizedClientException"


def test_a_role_is_stable_and_trusts_sagemaker() -> None:
    service = IdentityService("111122223333", CREATED)
    role = service.get_role({"RoleName": "Trainer"})["Role"]
    assert role["Arn"] == "arn:aws:iam::111122223333:role/Trainer"
    assert role["CreateDate"] == CREATED
    document = json.loads(unquote(role["AssumeRolePolicyDocument"]))
    assert document["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    later = IdentityService("111122223333", CREATED).get_role({"RoleName": "Trainer"})["Role"]
    assert later["RoleId"] == role["RoleId"]
    assert role["RoleId"].startswith("AROA") and role["RoleId"][4:].isalnum()


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::111122223333:role/service-role/Trainer",
        "arn:aws:iam::999999999999:user/someone",
        "arn:aws-cn:iam::111122223333:group/g",
    ],
)
def test_every_action_is_allowed_for_a_principal(arn: str) -> None:
    service = IdentityService("111122223333", CREATED)
    answer = service.simulate_principal_policy(
        {"PolicySourceArn": arn, "ActionNames": ["s3:GetObject", "iam:PassRole"]}
    )
    assert [r["EvalDecision"] for r in answer["EvaluationResults"]] == ["allowed", "allowed"]
    assert answer["IsTruncated"] is False


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:s3:::bucket",
        "arn:aws:iam::1111:role/short-account",
        "arn:aws:iam::111122223333:policy/p",
        "arn:aws:iam::111122223333:role/",
    ],
)
def test_a_source_that_is_no_principal_is_invalid_input(arn: str) -> None:
    service = IdentityService("111122223333", CREATED)
    with pytest.raises(IamInvalidInput, match="Invalid ARN"):
        service.simulate_principal_policy({"PolicySourceArn": arn, "ActionNames": ["s3:*"]})


def test_the_caller_is_the_accounts_root() -> None:
    assert IdentityService("111122223333", CREATED).get_caller_identity({}) == {
        "UserId": "111122223333",
        "Account": "111122223333",
        "Arn": "arn:aws:iam::111122223333:root",
    }
