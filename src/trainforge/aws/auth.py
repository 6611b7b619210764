"""Verify the AWS Signature Version 4 on an incoming request, as SageMaker and CloudWatch Logs do.

This module owns one thing: deciding whether a request was signed with one of the configured
access keys, and answering the errors (and the texts) AWS answers when it was not. It knows
HTTP requests, the SigV4 algorithm and ``AccessKey``; it must not import service, store or runtime
code, so that the protocol layer can call it before anything else looks at a request.

Both ways of carrying a signature are accepted:

* the ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` header,
  dated by ``X-Amz-Date`` (or, as botocore does when a request has one, the ``Date`` header);
* query-string ("presigned") authentication: ``X-Amz-Algorithm``, ``X-Amz-Credential``,
  ``X-Amz-Date``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature`` and, optionally, ``X-Amz-Expires``.

The canonical request, the string to sign and the signature are botocore's own (``SigV4Auth``,
as moto's server-side check uses it): the request is rebuilt as an ``AWSRequest`` from what
arrived, and botocore is told only what a client's signer decides for itself, which headers it
signed and the payload hash it declared (the ``X-Amz-Content-SHA256`` header's value, or the
body's hex SHA-256). This module owns the rest: reading the signature's parts from the header or
the query string, and the checks AWS makes before and around the comparison. The credential
scope may name any service (``sagemaker`` and ``logs`` reach the same server) and any region
unless the verifier was given one. A signature dated more than 15 minutes from the server's
clock, either way, is refused as AWS refuses it (``Signature expired`` / ``Signature not yet
current``). Checks run in the order AWS runs them, so a request with several faults gets the
error AWS would give it.

A message never contains a secret access key. Messages do echo what the caller sent (the
Authorization header, the credential), as AWS's do.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_tz
from urllib.parse import unquote_plus

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from trainforge.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    UnrecognizedClient,
)
from trainforge.settings import AccessKey

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# A presigned request may be valid for a week at most, as AWS allows.
MAX_EXPIRES_SECONDS = 604800
# How far a signature's time may be from the server's clock, either way: AWS's 15 minutes.
MAX_SKEW_SECONDS = 900

MSG_MISSING_TOKEN = "Missing Authentication Token"
MSG_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
MSG_UNKNOWN_KEY = "The security token included in the request is invalid."
MSG_HOST_NOT_SIGNED = "'Host' must be a 'SignedHeader' in the AWS Authorization."
MSG_REQUIRES_DATE = (
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
)
MSG_REEXAMINE_QUERY = "Re-examine the query-string parameters."

_HEADER_PARAMETERS = ("Credential", "Signature", "SignedHeaders")
_QUERY_PARAMETERS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
)
# Any of these in the query string means the caller meant query-string authentication.
_QUERY_MARKERS = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"})
_ISO_BASIC = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SPLIT_PARAMETERS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class IncomingRequest:
    """An HTTP request as it arrived, before anything interpreted it."""

    method: str
    path: str  # the raw (still percent-encoded) path, e.g. "/"
    query: str  # the raw query string without '?', may be ""
    headers: Mapping[str, str]  # names in any case
    body: bytes


@dataclass(frozen=True)
class _Signed:
    """What the caller claims: the parts of a signature, wherever they came from."""

    algorithm: str
    credential: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: int  # seconds since the epoch, UTC
    expires: int | None  # X-Amz-Expires of a presigned request
    from_query: bool


class SigV4Verifier:
    """Checks requests against a fixed set of access keys; ``verify`` names the key that signed."""

    def __init__(
        self,
        keys: Sequence[AccessKey],
        region: str | None = None,
        max_skew_seconds: int = MAX_SKEW_SECONDS,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = {key.access_key_id: key.secret_access_key for key in keys}
        self._region = region
        self._max_skew = max_skew_seconds
        self._now = now

    def verify(self, request: IncomingRequest) -> str:
        """Return the access key id that signed ``request``, or raise the error AWS would answer."""
        headers = _lower_headers(request.headers)
        pairs = _split_query(request.query)
        authorization = headers.get("authorization")
        if authorization is not None and authorization.strip():
            signed = _from_header(authorization, headers)
        elif any(unquote_plus(name) in _QUERY_MARKERS for name, _ in pairs):
            signed = _from_query(pairs)
        else:
            raise MissingAuthenticationToken(MSG_MISSING_TOKEN)

        self._check_time(signed)
        if "host" not in signed.signed_headers and ":authority" not in signed.signed_headers:
            raise InvalidSignature(MSG_HOST_NOT_SIGNED)
        if signed.algorithm != ALGORITHM:
            raise IncompleteSignature(
                f"Unsupported AWS 'algorithm': '{signed.algorithm}' (only {ALGORITHM} for now)."
            )
        key_id, region, service = self._check_scope(signed)
        secret = self._secrets.get(key_id)
        if secret is None:
            raise UnrecognizedClient(MSG_UNKNOWN_KEY)

        payload_hash = _payload_hash(request.body, headers)
        signer = _ClaimedSigner(
            Credentials(key_id, secret),
            service,
            region,
            _claimed_headers(headers, signed.signed_headers),
            payload_hash,
        )
        provided = signed.signature.encode("utf-8", "replace")
        matched = False
        for expected in _expected_signatures(request, pairs, signed, signer):
            # Every candidate is compared, so the time taken does not tell which one matched.
            matched = hmac.compare_digest(expected.encode(), provided) or matched
        if not matched:
            raise InvalidSignature(MSG_SIGNATURE_MISMATCH)
        # The signature covers the declared payload hash; the body must be what was declared.
        if _HEX_SHA256.fullmatch(payload_hash) and not hmac.compare_digest(
            payload_hash.lower(), _sha256_hex(request.body)
        ):
            raise InvalidSignature(MSG_SIGNATURE_MISMATCH)
        return key_id

    def _check_time(self, signed: _Signed) -> None:
        now = int(self._now())
        if signed.expires is not None:
            window, text = signed.expires, _duration_text(signed.expires)
        else:
            window, text = self._max_skew, _duration_text(self._max_skew)
        if signed.timestamp < now - window:
            raise InvalidSignature(
                f"Signature expired: {_iso_basic(signed.timestamp)} is now earlier than "
                f"{_iso_basic(now - window)} ({_iso_basic(now)} - {text})"
            )
        skew_text = _duration_text(self._max_skew)
        if signed.timestamp > now + self._max_skew:
            raise InvalidSignature(
                f"Signature not yet current: {_iso_basic(signed.timestamp)} is still later than "
                f"{_iso_basic(now + self._max_skew)} ({_iso_basic(now)} + {skew_text})"
            )

    def _check_scope(self, signed: _Signed) -> tuple[str, str, str]:
        credential = signed.credential.rstrip("/")
        parts = credential.split("/")
        if len(parts) != 5:
            raise IncompleteSignature(
                "Credential must have exactly 5 slash-delimited elements, "
                f"e.g. keyid/date/region/service/term, got '{signed.credential}'"
            )
        key_id, date, region, service, terminator = parts
        problems: list[str] = []
        if not region or (self._region is not None and region != self._region):
            problems.append(f"Credential should be scoped to a valid region, not '{region}'.")
        if terminator != TERMINATOR:
            problems.append(
                "Credential should be scoped with a valid terminator: "
                f"'{TERMINATOR}', not '{terminator}'."
            )
        iso = _iso_basic(signed.timestamp)
        if date != iso[:8]:
            problems.append(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{date}' != '{iso[:8]}', from '{iso}'."
            )
        if problems:
            raise InvalidSignature(" ".join(problems))
        return key_id, region, service


def _from_header(authorization: str, headers: Mapping[str, str]) -> _Signed:
    algorithm, remainder = [*authorization.split(None, 1), ""][:2]
    fields: dict[str, str] = {}
    for token in _SPLIT_PARAMETERS.split(remainder):
        if not token:
            continue
        if "=" not in token:
            raise IncompleteSignature(
                f"'{token}' not a valid key=value pair (missing equal-sign) in Authorization "
                f"header: '{authorization}'."
            )
        name, _, value = token.partition("=")
        fields.setdefault(name, value)
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in _HEADER_PARAMETERS
        if name not in fields or (not fields[name] and name != "SignedHeaders")
    ]
    raw_date = headers.get("x-amz-date")
    from_date_header = False
    if raw_date is None:
        raw_date = headers.get("date")
        from_date_header = True
    if raw_date is None:
        missing.append(MSG_REQUIRES_DATE)
    if missing or raw_date is None:
        raise IncompleteSignature(" ".join(missing) + f" Authorization={authorization}")
    return _Signed(
        algorithm=algorithm,
        credential=fields["Credential"],
        signed_headers=_signed_header_names(fields["SignedHeaders"]),
        signature=fields["Signature"],
        timestamp=_parse_date(raw_date, allow_http_date=from_date_header),
        expires=None,
        from_query=False,
    )


def _from_query(pairs: Sequence[tuple[str, str]]) -> _Signed:
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(unquote_plus(name), unquote_plus(value))
    missing = [
        f"AWS query-string parameters must include '{name}'."
        for name in _QUERY_PARAMETERS
        if not values.get(name)
    ]
    if missing:
        raise IncompleteSignature(" ".join([*missing, MSG_REEXAMINE_QUERY]))
    expires: int | None = None
    raw_expires = values.get("X-Amz-Expires")
    if raw_expires is not None:
        if raw_expires.strip().startswith("-"):
            raise IncompleteSignature("X-Amz-Expires must be non-negative")
        try:
            expires = int(raw_expires)
        except ValueError:
            raise IncompleteSignature("X-Amz-Expires should be a number") from None
        if expires > MAX_EXPIRES_SECONDS:
            raise IncompleteSignature(
                "X-Amz-Expires must be less than a week (in seconds); that is, the given "
                f"X-Amz-Expires must be less than {MAX_EXPIRES_SECONDS} seconds"
            )
    return _Signed(
        algorithm=values["X-Amz-Algorithm"],
        credential=values["X-Amz-Credential"],
        signed_headers=_signed_header_names(values["X-Amz-SignedHeaders"]),
        signature=values["X-Amz-Signature"],
        timestamp=_parse_date(values["X-Amz-Date"], allow_http_date=False),
        expires=expires,
        from_query=True,
    )


class _ClaimedSigner(SigV4Auth):
    """botocore's SigV4 signer, told which headers the caller signed and the payload hash it
    declared: everything else (the canonical path, query and headers, the string to sign, the
    signing key) is botocore's own, as moto's server-side check does."""

    def __init__(
        self,
        credentials: Credentials,
        service: str,
        region: str,
        signed: HTTPHeaders,
        payload: str,
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed
        self._payload = payload

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed

    def payload(self, request: AWSRequest) -> str:
        return self._payload


def _expected_signatures(
    request: IncomingRequest,
    pairs: Sequence[tuple[str, str]],
    signed: _Signed,
    signer: _ClaimedSigner,
) -> list[str]:
    """The signature botocore computes, once per plausible spelling of the query string.

    A client that follows the SigV4 specification decodes and re-encodes each query parameter
    (botocore signs a space as %20 but sends its own parameters form-encoded, with '+'); given a
    URL that already carries a query string, botocore instead sorts the parameters as they are.
    The two agree on any query string that is already encoded canonically.
    """
    if signed.from_query:
        pairs = [(name, value) for name, value in pairs if unquote_plus(name) != "X-Amz-Signature"]
    if request.path and not request.path.startswith("/"):
        return []  # no signer signs a request target that is not a path (nor can be parsed as one)
    raw = "&".join(f"{name}={value}" for name, value in pairs)
    # The host part is never read: the signed headers are the caller's, Host among them.
    url = "http://trainforge" + (request.path or "/") + (f"?{raw}" if raw else "")
    method = request.method.upper()
    decoded = [(unquote_plus(name), unquote_plus(value)) for name, value in pairs]
    # A list, not a dict: a repeated parameter is signed once per value. botocore's signer
    # takes either (its stubs say Mapping only).
    candidates = [AWSRequest(method=method, url=url, params=decoded)]  # type: ignore[arg-type]
    as_sent = AWSRequest(method=method, url=url)
    if signer.canonical_query_string(as_sent) != signer.canonical_query_string(candidates[0]):
        candidates.append(as_sent)
    timestamp = _iso_basic(signed.timestamp)
    signatures = []
    for candidate in candidates:
        candidate.context["timestamp"] = timestamp
        canonical = signer.canonical_request(candidate)
        signatures.append(signer.signature(signer.string_to_sign(candidate, canonical), candidate))
    return signatures


def _claimed_headers(headers: Mapping[str, str], names: Sequence[str]) -> HTTPHeaders:
    """The signed headers with the values received (a missing one signs as empty)."""
    claimed = HTTPHeaders()
    for name in names:
        claimed[name] = headers.get(name, "")
    return claimed


def _split_query(query: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((name, value))
    return pairs


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.strip().lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    return lowered


def _signed_header_names(text: str) -> tuple[str, ...]:
    return tuple(sorted({name.strip().lower() for name in text.split(";") if name.strip()}))


def _payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    declared = headers.get("x-amz-content-sha256")
    if declared is None:
        return _sha256_hex(body)
    declared = declared.strip()
    if declared != UNSIGNED_PAYLOAD and not _HEX_SHA256.fullmatch(declared):
        # A streaming (chunk-signed) payload: nothing here can check its chunks.
        raise InvalidSignature(MSG_SIGNATURE_MISMATCH)
    return declared


def _parse_date(text: str, *, allow_http_date: bool) -> int:
    value = text.strip()
    match = _ISO_BASIC.fullmatch(value)
    if match is not None:
        year, month, day, hour, minute, second = (int(group) for group in match.groups())
        try:
            moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            return _bad_date(text)
        return calendar.timegm(moment.utctimetuple())
    if allow_http_date:
        parsed = parsedate_tz(value)
        if parsed is not None:
            offset = parsed[9] or 0
            return calendar.timegm((*parsed[:6], 0, 0, 0)) - offset
    return _bad_date(text)


def _bad_date(text: str) -> int:
    raise IncompleteSignature(
        f"Date must be in ISO-8601 'basic format'. Got '{text}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _iso_basic(epoch: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def _duration_text(seconds: int) -> str:
    if seconds % 60 == 0:
        return f"{seconds // 60} min."
    return f"{seconds} sec."
