"""The SigV4 verifier: requests signed by botocore itself (and sent by real boto3 clients) pass,
and every way a signature can be wrong is refused with the error and text AWS answers."""

from __future__ import annotations

import calendar
import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from trainforge.aws.auth import IncomingRequest, SigV4Verifier
from trainforge.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    ServiceError,
    UnrecognizedClient,
)
from trainforge.settings import AccessKey

KEY = AccessKey("AKIDTRAINFORGE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYTRAINFORGE")
OTHER = AccessKey("AKIDOTHER", "another-secret-that-is-long-enough")
SIGNED_AT = datetime(2026, 11, 26, 12, 0, 0)  # naive UTC, as botocore's clock gives it
EPOCH = calendar.timegm(SIGNED_AT.utctimetuple())
URL = "http://127.0.0.1:8443/"
BODY = b'{"MaxResults": 10}'
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
TARGETS = {"sagemaker": "SageMaker.ListTrainingJobs", "logs": "Logs_20140328.DescribeLogGroups"}


def signed(
    *,
    service: str = "sagemaker",
    region: str = "us-east-1",
    key: AccessKey = KEY,
    token: str | None = None,
    body: bytes = BODY,
    method: str = "POST",
    url: str = URL,
    params: dict[str, str] | None = None,
    extra_headers: dict[str, str] | None = None,
) -> IncomingRequest:
    """A request signed by botocore's own SigV4Auth at SIGNED_AT, as a server receives it."""
    headers = {
        "X-Amz-Target": TARGETS.get(service, TARGETS["sagemaker"]),
        "Content-Type": "application/x-amz-json-1.1",
        **(extra_headers or {}),
    }
    request = AWSRequest(method=method, url=url, data=body, headers=headers, params=params or {})
    credentials = Credentials(key.access_key_id, key.secret_access_key, token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        SigV4Auth(credentials, service, region).add_auth(request)
    return incoming(request)


def incoming(request: AWSRequest) -> IncomingRequest:
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = dict(prepared.headers.items())
    headers.setdefault("Host", parts.netloc)  # what the HTTP client adds on the wire
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    assert isinstance(body, bytes)
    return IncomingRequest(prepared.method, parts.path, parts.query, headers, body)


def verifier(offset: float = 0.0, **kwargs: Any) -> SigV4Verifier:
    return SigV4Verifier([KEY, OTHER], now=lambda: EPOCH + offset, **kwargs)


def with_headers(request: IncomingRequest, **changes: str | None) -> IncomingRequest:
    """``request`` with headers replaced (names in lower case; None removes one)."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    for keyword, value in changes.items():
        name = keyword.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return IncomingRequest(request.method, request.path, request.query, headers, request.body)


def authorization(request: IncomingRequest) -> str:
    return {name.lower(): value for name, value in request.headers.items()}["authorization"]


def refused(check: SigV4Verifier, request: IncomingRequest, kind: type[ServiceError]) -> str:
    with pytest.raises(kind) as caught:
        check.verify(request)
    message = caught.value.message
    assert KEY.secret_access_key not in message
    assert OTHER.secret_access_key not in message
    return message


# --- what is accepted ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["sagemaker", "logs"])
def test_request_signed_by_botocore_is_accepted(service: str) -> None:
    assert verifier().verify(signed(service=service)) == KEY.access_key_id


def test_the_key_that_signed_is_the_one_named() -> None:
    assert verifier().verify(signed(key=OTHER)) == OTHER.access_key_id


def test_any_region_is_accepted_unless_one_is_configured() -> None:
    request = signed(region="eu-west-1")
    assert verifier().verify(request) == KEY.access_key_id
    assert verifier(region="eu-west-1").verify(request) == KEY.access_key_id
    message = refused(verifier(region="us-east-1"), request, InvalidSignature)
    assert message == "Credential should be scoped to a valid region, not 'eu-west-1'."


def test_header_names_are_case_insensitive() -> None:
    request = signed()
    for transform in (str.lower, str.upper):
        headers = {transform(name): value for name, value in request.headers.items()}
        changed = IncomingRequest(
            request.method, request.path, request.query, headers, request.body
        )
        assert verifier().verify(changed) == KEY.access_key_id


def test_session_token_header_is_signed_and_accepted() -> None:
    request = signed(token="FwoGZXIvYXdzEXAMPLETOKEN")
    assert "X-Amz-Security-Token" in request.headers
    assert "x-amz-security-token" in authorization(request)
    assert verifier().verify(request) == KEY.access_key_id


def test_date_header_is_used_when_botocore_signs_with_one() -> None:
    request = signed(extra_headers={"Date": "placeholder, botocore rewrites it"})
    assert "X-Amz-Date" not in request.headers
    assert request.headers["Date"].endswith("12:00:00 -0000")
    assert verifier().verify(request) == KEY.access_key_id


def test_within_the_allowed_skew_either_way() -> None:
    request = signed()
    assert verifier(offset=899).verify(request) == KEY.access_key_id
    assert verifier(offset=-899).verify(request) == KEY.access_key_id


def test_empty_body() -> None:
    assert verifier().verify(signed(body=b"")) == KEY.access_key_id


def test_path_and_query_are_canonicalized_as_botocore_does() -> None:
    request = signed(
        method="GET", body=b"", url="http://127.0.0.1:8443/a/./b%20c//d/?b=2&a=1&c=x%2Fy"
    )
    assert request.path == "/a/./b%20c//d/"
    assert verifier().verify(request) == KEY.access_key_id
    # Parameters botocore encodes itself: a space goes on the wire as '+', and is signed as %20.
    request = signed(method="GET", body=b"", params={"b": "x y", "a": "~1+2", "Name": "é/ü"})
    assert "b=x+y" in request.query
    assert verifier().verify(request) == KEY.access_key_id


def test_declared_payload_hash_is_honoured_and_checked() -> None:
    declared = hashlib.sha256(BODY).hexdigest()
    request = signed(extra_headers={"X-Amz-Content-SHA256": declared})
    assert verifier().verify(request) == KEY.access_key_id
    tampered = IncomingRequest(
        request.method, request.path, request.query, request.headers, b'{"MaxResults": 99}'
    )
    assert refused(verifier(), tampered, InvalidSignature) == MISMATCH


def test_unsigned_payload_is_accepted_as_declared() -> None:
    request = signed(extra_headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert verifier().verify(request) == KEY.access_key_id


def test_streaming_payload_is_refused() -> None:
    request = signed(extra_headers={"X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})
    assert refused(verifier(), request, InvalidSignature) == MISMATCH


# --- what is refused ----------------------------------------------------------------------------


def test_no_authorization_is_a_missing_token() -> None:
    request = with_headers(signed(), authorization=None)
    message = refused(verifier(), request, MissingAuthenticationToken)
    assert message == "Missing Authentication Token"
    assert MissingAuthenticationToken.code == "MissingAuthenticationTokenException"


def test_wrong_secret_is_an_invalid_signature() -> None:
    impostor = AccessKey(KEY.access_key_id, "not-the-secret-at-all")
    message = refused(verifier(), signed(key=impostor), InvalidSignature)
    assert message == MISMATCH
    assert impostor.secret_access_key not in message


def test_unknown_access_key_is_an_unrecognized_client() -> None:
    stranger = AccessKey("AKIDSTRANGER", "whatever")
    message = refused(verifier(), signed(key=stranger), UnrecognizedClient)
    assert message == "The security token included in the request is invalid."


def test_no_keys_at_all_recognizes_nobody() -> None:
    check = SigV4Verifier([], now=lambda: EPOCH)
    refused(check, signed(), UnrecognizedClient)


def test_tampered_body_is_an_invalid_signature() -> None:
    request = signed()
    tampered = IncomingRequest(
        request.method, request.path, request.query, request.headers, b'{"MaxResults": 11}'
    )
    assert refused(verifier(), tampered, InvalidSignature) == MISMATCH


def test_tampered_signed_header_is_an_invalid_signature() -> None:
    request = with_headers(signed(), x_amz_target="SageMaker.DeleteTrainingJob")
    assert refused(verifier(), request, InvalidSignature) == MISMATCH


def test_tampered_path_or_method_is_an_invalid_signature() -> None:
    request = signed()
    for changed in (
        IncomingRequest("PUT", request.path, request.query, request.headers, request.body),
        IncomingRequest(request.method, "/other", request.query, request.headers, request.body),
        IncomingRequest(request.method, request.path, "x=1", request.headers, request.body),
    ):
        assert refused(verifier(), changed, InvalidSignature) == MISMATCH


def test_malformed_header_lists_every_missing_part() -> None:
    request = with_headers(signed(), x_amz_date=None, authorization="Basic dXNlcjpwYXNz==")
    message = refused(verifier(), request, IncompleteSignature)
    assert message == (
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=Basic dXNlcjpwYXNz=="
    )


def test_header_missing_signature_and_signed_headers() -> None:
    header = "AWS4-HMAC-SHA256 Credential=AKIDTRAINFORGE/20261126/us-east-1/sagemaker/aws4_request"
    message = refused(verifier(), with_headers(signed(), authorization=header), IncompleteSignature)
    assert message == (
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        f"Authorization={header}"
    )


def test_parameter_without_equal_sign() -> None:
    header = authorization(signed()).replace("Credential=", "Credential= ")
    message = refused(verifier(), with_headers(signed(), authorization=header), IncompleteSignature)
    assert message == (
        "'AKIDTRAINFORGE/20261126/us-east-1/sagemaker/aws4_request' not a valid key=value pair "
        f"(missing equal-sign) in Authorization header: '{header}'."
    )


def test_date_not_in_basic_format() -> None:
    request = with_headers(signed(), x_amz_date="2026-11-26T12:00:00Z")
    message = refused(verifier(), request, IncompleteSignature)
    assert message == (
        "Date must be in ISO-8601 'basic format'. Got '2026-11-26T12:00:00Z'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def test_expired_signature() -> None:
    message = refused(verifier(offset=20 * 60), signed(), InvalidSignature)
    assert message == (
        "Signature expired: 20261126T120000Z is now earlier than 20261126T120500Z "
        "(20261126T122000Z - 15 min.)"
    )


def test_signature_from_the_future() -> None:
    message = refused(verifier(offset=-20 * 60), signed(), InvalidSignature)
    assert message == (
        "Signature not yet current: 20261126T120000Z is still later than 20261126T115500Z "
        "(20261126T114000Z + 15 min.)"
    )


def test_skew_is_configurable() -> None:
    check = SigV4Verifier([KEY], max_skew_seconds=300, now=lambda: EPOCH + 6 * 60)
    message = refused(check, signed(), InvalidSignature)
    assert message.endswith("(20261126T120600Z - 5 min.)")
    assert SigV4Verifier([KEY], max_skew_seconds=300, now=lambda: EPOCH + 4 * 60).verify(signed())


def test_host_must_be_signed() -> None:
    header = authorization(signed()).replace("SignedHeaders=content-type;host;", "SignedHeaders=")
    assert "host" not in header
    message = refused(verifier(), with_headers(signed(), authorization=header), InvalidSignature)
    assert message == "'Host' must be a 'SignedHeader' in the AWS Authorization."


def test_unsupported_algorithm() -> None:
    header = authorization(signed()).replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")
    message = refused(verifier(), with_headers(signed(), authorization=header), IncompleteSignature)
    assert message == (
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now)."
    )


def test_credential_must_have_five_elements() -> None:
    header = authorization(signed()).replace("/us-east-1/", "/")
    message = refused(verifier(), with_headers(signed(), authorization=header), IncompleteSignature)
    assert message == (
        "Credential must have exactly 5 slash-delimited elements, e.g. "
        "keyid/date/region/service/term, got 'AKIDTRAINFORGE/20261126/sagemaker/aws4_request'"
    )


def test_credential_scope_date_and_terminator_must_match() -> None:
    header = (
        authorization(signed())
        .replace("/20261126/", "/20261125/")
        .replace("/aws4_request", "/aws5_request")
    )
    message = refused(verifier(), with_headers(signed(), authorization=header), InvalidSignature)
    assert message == (
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20261125' != '20261126', from '20261126T120000Z'."
    )


def test_secret_never_appears_in_any_refusal() -> None:
    base = signed()
    cases = [
        with_headers(base, authorization=None),
        with_headers(base, authorization="garbage"),
        with_headers(base, x_amz_date="yesterday"),
        signed(key=AccessKey(KEY.access_key_id, "wrong")),
        signed(key=AccessKey("AKIDNOBODY", KEY.secret_access_key)),
    ]
    for request in cases:
        with pytest.raises(ServiceError) as caught:
            verifier().verify(request)
        assert KEY.secret_access_key not in caught.value.message
        assert KEY.secret_access_key not in str(caught.value)


# --- query-string (presigned) authentication ----------------------------------------------------


def presigned(expires: int = 60) -> IncomingRequest:
    request = AWSRequest(method="GET", url=URL + "?Action=ListTrainingJobs&MaxResults=5")
    credentials = Credentials(KEY.access_key_id, KEY.secret_access_key)
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        SigV4QueryAuth(credentials, "sagemaker", "us-east-1", expires=expires).add_auth(request)
    return incoming(request)


def replace_query(request: IncomingRequest, query: str) -> IncomingRequest:
    return IncomingRequest(request.method, request.path, query, request.headers, request.body)


def test_presigned_request_is_accepted() -> None:
    request = presigned()
    assert "X-Amz-Signature=" in request.query
    assert "authorization" not in {name.lower() for name in request.headers}
    assert verifier().verify(request) == KEY.access_key_id
    assert verifier(offset=59).verify(request) == KEY.access_key_id


def test_presigned_request_expires_after_x_amz_expires() -> None:
    message = refused(verifier(offset=120), presigned(expires=60), InvalidSignature)
    assert message == (
        "Signature expired: 20261126T120000Z is now earlier than 20261126T120100Z "
        "(20261126T120200Z - 1 min.)"
    )


def test_presigned_request_tampered_query_is_refused() -> None:
    request = presigned()
    changed = replace_query(request, request.query.replace("MaxResults=5", "MaxResults=6"))
    assert refused(verifier(), changed, InvalidSignature) == MISMATCH


def test_presigned_request_missing_parameters() -> None:
    request = presigned()
    kept = [
        pair
        for pair in request.query.split("&")
        if not pair.startswith(("X-Amz-Signature=", "X-Amz-Date="))
    ]
    message = refused(verifier(), replace_query(request, "&".join(kept)), IncompleteSignature)
    assert message == (
        "AWS query-string parameters must include 'X-Amz-Signature'. "
        "AWS query-string parameters must include 'X-Amz-Date'. "
        "Re-examine the query-string parameters."
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("soon", "X-Amz-Expires should be a number"),
        ("-5", "X-Amz-Expires must be non-negative"),
        (
            "604801",
            "X-Amz-Expires must be less than a week (in seconds); that is, the given "
            "X-Amz-Expires must be less than 604800 seconds",
        ),
    ],
)
def test_presigned_request_bad_expires(value: str, text: str) -> None:
    request = presigned()
    changed = replace_query(
        request, request.query.replace("X-Amz-Expires=60", f"X-Amz-Expires={value}")
    )
    assert refused(verifier(), changed, IncompleteSignature) == text


# --- what a real boto3 client sends -------------------------------------------------------------

RESPONSES: dict[str, dict[str, list[Any]]] = {
    "SageMaker.ListTrainingJobs": {"TrainingJobSummaries": []},
    "Logs_20140328.DescribeLogGroups": {"logGroups": []},
}


@pytest.fixture
def capture_server() -> Iterator[tuple[str, list[IncomingRequest]]]:
    """A loopback HTTP server that records each request exactly as it arrived."""
    captured: list[IncomingRequest] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            path, _, query = self.path.partition("?")
            captured.append(
                IncomingRequest(self.command, path, query, dict(self.headers.items()), body)
            )
            answer = json.dumps(RESPONSES.get(self.headers.get("X-Amz-Target", ""), {})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(answer)))
            self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", captured
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def real_client(service: str, endpoint: str, token: str | None = None) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name="eu-central-1",
        endpoint_url=endpoint,
        aws_access_key_id=KEY.access_key_id,
        aws_secret_access_key=KEY.secret_access_key,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_requests_sent_by_real_boto3_clients_verify(
    capture_server: tuple[str, list[IncomingRequest]],
) -> None:
    endpoint, captured = capture_server
    sagemaker = real_client("sagemaker", endpoint)
    logs = real_client("logs", endpoint, token="FwoGZXIvYXdzEXAMPLETOKEN")
    try:
        assert sagemaker.list_training_jobs(MaxResults=5)["TrainingJobSummaries"] == []
        groups = logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/ Jobs")
        assert groups["logGroups"] == []
    finally:
        sagemaker.close()
        logs.close()

    assert len(captured) == 2
    live = SigV4Verifier([KEY])
    for request in captured:
        assert live.verify(request) == KEY.access_key_id
    scopes = [authorization(request).split("Credential=")[1].split(",")[0] for request in captured]
    assert scopes[0].endswith("/eu-central-1/sagemaker/aws4_request")
    assert scopes[1].endswith("/eu-central-1/logs/aws4_request")
    assert "x-amz-security-token" in authorization(captured[1])

    assert SigV4Verifier([KEY], region="eu-central-1").verify(captured[0]) == KEY.access_key_id
    refused(SigV4Verifier([KEY], region="us-east-1"), captured[0], InvalidSignature)
    refused(SigV4Verifier([OTHER]), captured[0], UnrecognizedClient)
    impostor = SigV4Verifier([AccessKey(KEY.access_key_id, "not-the-secret")])
    assert refused(impostor, captured[0], InvalidSignature) == MISMATCH
    tampered = IncomingRequest(
        captured[0].method, captured[0].path, captured[0].query, captured[0].headers, b"{}"
    )
    assert refused(live, tampered, InvalidSignature) == MISMATCH
