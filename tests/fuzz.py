"""Hypothesis strategies for hostile AWS JSON, RPC v2 CBOR and query requests, driven by the botocore
models: for any operation of the SageMaker, CloudWatch Logs, CloudWatch, IAM and STS models, a
body built from its input shape with values mutated into the wrong types, nulls, numbers no type
holds, oversized strings and lists, unknown members and deep nesting; and raw bodies, targets,
methods, paths and headers that no SDK would send. Used by tests/api/test_fuzz.py (bounded) and
``make fuzz`` (10,000 requests)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from urllib.parse import urlencode

import botocore.session
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape
from hypothesis import strategies as st

from trainforge.aws import cbor
from trainforge.aws.spec import IMPLEMENTED

SERVICES = {
    "sagemaker": "SageMaker",
    "logs": "Logs_20140328",
    "cloudwatch": "GraniteServiceVersion20100801",
}
SERVED = {service: sorted(names) for service, names in IMPLEMENTED.items()}
# The served services whose model lists the query protocol.
QUERY_SERVICES = ["cloudwatch", "iam", "sts"]
MAX_DEPTH = 6
# What a header can carry at all (http.client sends latin-1).
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)

NASTY: list[Any] = [
    None,
    "",
    0,
    -1,
    1.5,
    2**31,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    1e308,
    -1e308,
    True,
    False,
    [],
    {},
    [None],
    {"": None},
    "x" * 3000,
    "\x00",
    "\ud800",
    "../../etc/passwd",
    "file:///etc/",
    "s3://",
    "f/99999999999999999999999999",
    "b/-1",
    "1e999",
    "1000000000000",
    "2026-13-45T99:99:99Z",
    "Infinity",
]


@cache
def model(service: str) -> ServiceModel:
    loader = botocore.session.get_session().get_component("data_loader")
    return ServiceModel(loader.load_service_model(service, "service-2"), service)


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


nasty = st.one_of(
    st.sampled_from(NASTY),
    st.integers(min_value=10, max_value=700).map(_deep),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.text(max_size=5), min_size=101, max_size=300),
)


def value_for(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly a value of the shape's type, sometimes anything at all."""
    right = _right_value(shape, depth)
    return st.one_of(right, right, right, right, nasty)


def _right_value(shape: Shape, depth: int) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if depth > MAX_DEPTH:
        return st.just(None)
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        members = {name: value_for(member, depth + 1) for name, member in shape.members.items()}
        extra = st.dictionaries(st.text(max_size=8), nasty, max_size=1)
        return st.tuples(st.fixed_dictionaries({}, optional=members), extra).map(
            lambda pair: {**pair[1], **pair[0]}
        )
    if kind == "list":
        assert isinstance(shape, ListShape)
        top = min(int(shape.metadata.get("max", 4)), 4)
        return st.lists(value_for(shape.member, depth + 1), max_size=top)
    if kind == "map":
        assert isinstance(shape, MapShape)
        return st.dictionaries(st.text(max_size=10), value_for(shape.value, depth + 1), max_size=3)
    if kind == "string":
        enum = shape.metadata.get("enum")
        if enum:
            return st.one_of(st.sampled_from(list(enum)), st.text(max_size=10))
        low = int(shape.metadata.get("min", 0))
        high = int(shape.metadata.get("max", 64))
        return st.one_of(
            st.text(min_size=min(low, 64), max_size=min(high, 64)),
            st.sampled_from(["s3://bucket/prefix/", "file:///tmp", "job-1", "arn:aws:x"]),
        )
    if kind in ("integer", "long"):
        low = shape.metadata.get("min", -(2**31))
        high = shape.metadata.get("max", 2**31)
        return st.integers(min_value=int(low) - 2, max_value=int(high) + 2)
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.one_of(
            st.integers(min_value=-(2**40), max_value=2**40),
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from(["2026-01-01T00:00:00Z", "yesterday", ""]),
        )
    return st.text(max_size=20)


@st.composite
def api_request(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    """(path, headers, body) of one request."""
    service = draw(st.sampled_from(sorted(SERVICES)))
    prefix = SERVICES[service]
    operations = model(service).operation_names
    name = draw(st.one_of(st.sampled_from(SERVED[service]), st.sampled_from(operations)))
    shape = model(service).operation_model(name).input_shape
    target = draw(
        st.one_of(
            st.just(f"{prefix}.{name}"),
            st.just(f"{prefix}.{name}"),
            st.just(f"{prefix}.{name}"),
            header_text,
            st.sampled_from([prefix, f"{prefix}.", ".x", f"{prefix}.{name.lower()}", "a.b.c"]),
        )
    )
    body_kind = draw(st.integers(min_value=0, max_value=9))
    if shape is not None and body_kind < 7:
        params = draw(_right_value(shape, 0))
        body = json.dumps(params).encode("utf-8", "surrogatepass")
    elif body_kind == 7:
        body = draw(st.binary(max_size=200))
    elif body_kind == 8:
        depth = draw(st.integers(min_value=30, max_value=3000))
        body = ('{"a": ' + "[" * depth + "]" * depth + "}").encode()
    else:
        text = json.dumps({"TrainingJobName": "j", "MaxResults": 5})
        body = text[: draw(st.integers(min_value=0, max_value=len(text)))].encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        del headers["X-Amz-Target"]
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        headers["Content-Type"] = draw(st.sampled_from(["text/plain", "", "application/json"]))
    if draw(st.integers(min_value=0, max_value=19)) == 0:
        headers["Authorization"] = draw(header_text)
    path = (
        "/"
        if draw(st.integers(min_value=0, max_value=19))
        else draw(st.sampled_from(["/x", "//", "/?a=b", "/ping/x"]))
    )
    return path, headers, body


@st.composite
def cbor_request(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    """(path, headers, body) of one RPC v2 CBOR request to CloudWatch."""
    operations = model("cloudwatch").operation_names
    name = draw(st.one_of(st.sampled_from(SERVED["cloudwatch"]), st.sampled_from(operations)))
    shape = model("cloudwatch").operation_model(name).input_shape
    body_kind = draw(st.integers(min_value=0, max_value=9))
    if shape is not None and body_kind < 7:
        params = draw(_right_value(shape, 0))
        if draw(st.booleans()) and isinstance(params, dict) and "StartTime" in params:
            stamp = params["StartTime"]
            if isinstance(stamp, int | float) and not isinstance(stamp, bool):
                params["StartTime"] = cbor.Epoch(stamp)
        try:
            body = cbor.encode(params)
        except ValueError:  # an integer past 64 bits: sent as a bignum (tag 2)
            body = b"\xc2\x49" + b"\x01" * 9
    elif body_kind == 7:
        body = draw(st.binary(max_size=200))
    elif body_kind == 8:
        depth = draw(st.integers(min_value=30, max_value=3000))
        body = b"\x81" * depth + b"\x00"
    else:
        whole = cbor.encode({"Namespace": "n", "Dimensions": [{"Name": "a", "Value": "b"}]})
        body = whole[: draw(st.integers(min_value=0, max_value=len(whole)))]
    headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        del headers["smithy-protocol"]
    path = f"/service/GraniteServiceVersion20100801/operation/{name}"
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        path = draw(
            st.sampled_from(
                ["/service/", "/service/x/operation/y", "/service//operation/", path + "/x"]
            )
        )
    return path, headers, body


def _flatten(value: Any, prefix: str, out: list[tuple[str, str]]) -> None:
    """A value as query-protocol pairs, the way a careless client might write it."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        if not value:
            out.append((prefix, ""))
        for index, item in enumerate(value, start=1):
            _flatten(item, f"{prefix}.member.{index}", out)
    elif value is not None:
        out.append((prefix, json.dumps(value) if isinstance(value, bool) else str(value)))


@st.composite
def query_request(draw: st.DrawFn) -> bytes:
    """The form body of one query-protocol request to CloudWatch, IAM or STS."""
    service = draw(st.sampled_from(QUERY_SERVICES))
    operations = model(service).operation_names
    name = draw(st.one_of(st.sampled_from(SERVED[service]), st.sampled_from(operations)))
    shape = model(service).operation_model(name).input_shape
    kind = draw(st.integers(min_value=0, max_value=9))
    if kind == 9:
        return draw(st.binary(max_size=200))
    version = model(service).api_version
    pairs: list[tuple[str, str]] = [("Action", name), ("Version", version)]
    if shape is not None and kind < 7:
        _flatten(draw(_right_value(shape, 0)), "", pairs)
    else:
        keys = st.sampled_from(["Dimensions.member.1", "Statistics.member.x", "a..b", ".", ""])
        pairs += draw(
            st.lists(
                st.tuples(st.one_of(keys, st.text(max_size=20)), st.text(max_size=20)), max_size=8
            )
        )
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        pairs = pairs[1:]
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()
