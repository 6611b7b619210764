"""aws.cbor against botocore's own rpc-v2-cbor serializer and parser: what botocore sends decodes
to the request's values, what trainforge answers parses back to the result; and bodies no
client sends are refused as SerializationException, never a crash."""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

import pytest
from botocore.model import ServiceModel
from botocore.parsers import RpcV2CBORParser
from botocore.serialize import RpcV2CBORSerializer

from trainforge.aws import cbor, spec
from trainforge.aws.parser import call_for
from trainforge.aws.protocols import RPC_V2_CBOR, HttpRequest
from trainforge.aws.skeleton import Response
from trainforge.errors import MetricsInvalidParameterValue, SerializationError


def _model() -> ServiceModel:
    return spec.service_model("cloudwatch")


def test_botocore_requests_decode_to_their_params() -> None:
    start = dt.datetime(2026, 5, 17, 12, 30, 5, 250000, tzinfo=dt.UTC)
    params: dict[str, Any] = {
        "Namespace": "/aws/sagemaker/TrainingJobs",
        "MetricName": "train:loss ü",
        "Dimensions": [{"Name": "TrainingJobName", "Value": "job-1"}],
        "StartTime": start,
        "EndTime": start + dt.timedelta(hours=1),
        "Period": 60,
        "Statistics": ["Average", "Maximum"],
    }
    operation = _model().operation_model("GetMetricStatistics")
    request = RpcV2CBORSerializer().serialize_to_request(params, operation)
    assert (
        request["url_path"]
        == "/service/GraniteServiceVersion20100801/operation/GetMetricStatistics"
    )
    call = RPC_V2_CBOR.parse(
        HttpRequest(
            "POST",
            request["url_path"],
            {k.lower(): v for k, v in request["headers"].items()},
            request["body"],
        )
    )
    assert (call.service, call.operation) == ("cloudwatch", "GetMetricStatistics")
    expected = {**params, "StartTime": start.timestamp(), "EndTime": start.timestamp() + 3600}
    assert call.params == expected


def _parsed(response: Response, operation: str) -> dict[str, Any]:
    model = _model().operation_model(operation)
    return dict(
        RpcV2CBORParser().parse(
            {
                "status_code": response.status,
                "headers": dict(response.headers),
                "body": response.body,
            },
            model.output_shape,
        )
    )


def test_answers_parse_back_in_botocore() -> None:
    result = {
        "Label": "loss",
        "Datapoints": [
            {
                "Timestamp": 1_779_021_000.5,
                "SampleCount": 3,
                "Average": 0.25,
                "ExtendedStatistics": {"p90": 1.5},
                "Unit": "None",
            }
        ],
    }
    call = call_for("cloudwatch", "GetMetricStatistics", {})
    response = RPC_V2_CBOR.success(call, result, "rid-1")
    assert ("smithy-protocol", "rpc-v2-cbor") in response.headers
    parsed = _parsed(response, "GetMetricStatistics")
    point = parsed["Datapoints"][0]
    assert point["Timestamp"] == dt.datetime.fromtimestamp(1_779_021_000.5, tz=dt.UTC)
    assert (point["SampleCount"], point["Average"]) == (3.0, 0.25)
    assert isinstance(point["SampleCount"], float)
    assert point["ExtendedStatistics"] == {"p90": 1.5}
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-1"


def test_errors_carry_the_query_code_botocore_reports() -> None:
    error = MetricsInvalidParameterValue("The parameter Period must be 60.")
    response = RPC_V2_CBOR.failure(error, "rid-2", "cloudwatch")
    assert response.status == 400
    assert ("x-amzn-query-error", "InvalidParameterValue;Sender") in response.headers
    model = _model().operation_model("GetMetricStatistics")
    parsed = RpcV2CBORParser().parse(
        {"status_code": 400, "headers": dict(response.headers), "body": response.body},
        model.output_shape,
    )
    assert parsed["Error"]["Code"] == "InvalidParameterValue"
    assert parsed["Error"]["Message"] == "The parameter Period must be 60."
    assert cbor.decode(response.body)["__type"] == "InvalidParameterValueException"


def test_every_form_of_the_data_model_decodes() -> None:
    half = b"\xf9" + struct.pack(">e", 1.5)
    single = b"\xfa" + struct.pack(">f", 2.5)
    chunked_text = b"\x7f\x62ab\x61c\xff"
    chunked_bytes = b"\x5f\x41\x01\x41\x02\xff"
    indefinite_list = b"\x9f\x01\x02\xff"
    indefinite_map = b"\xbf\x61k\xf5\xff"
    big = b"\x1b" + (2**63).to_bytes(8, "big")
    negative = b"\x38\x63"  # -100
    body = (
        b"\xa9"
        + b"\x61a"
        + half
        + b"\x61b"
        + single
        + b"\x61c"
        + chunked_text
        + b"\x61d"
        + chunked_bytes
        + b"\x61e"
        + indefinite_list
        + b"\x61f"
        + indefinite_map
        + b"\x61g"
        + big
        + b"\x61h"
        + negative
        + b"\x61i"
        + b"\xc1\x1a\x00\x00\x00\x0a"  # tag 1: epoch 10
    )
    assert cbor.decode(body) == {
        "a": 1.5,
        "b": 2.5,
        "c": "abc",
        "d": b"\x01\x02",
        "e": [1, 2],
        "f": {"k": True},
        "g": 2**63,
        "h": -100,
        "i": 10.0,
    }
    value = {"x": [None, False, -5, 2**40, 0.1, "é", b"\x00"], "t": cbor.Epoch(1.5)}
    assert cbor.decode(cbor.encode(value)) == value


@pytest.mark.parametrize(
    "body",
    [
        b"\xa1\x61a",  # ends before the value
        b"\xa0\x00",  # bytes after the item
        b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00",  # four billion items announced
        b"\x81" * 40 + b"\x00",  # nested deeper than any shape
        b"\xa1\x01\x02",  # an integer key
        b"\x62\xff\xfe",  # not UTF-8
        b"\xc2\x41\x01",  # tag 2 (bignum)
        b"\xc1\x61x",  # a date-time that is no number
        b"\xc1\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00",  # an infinite date-time
        b"\xf0",  # simple value 16
        b"\x1c",  # reserved additional information
        b"\x7f\x01\xff",  # a chunked string with a non-string chunk
        b"",
    ],
)
def test_malformed_bodies_are_serialization_errors(body: bytes) -> None:
    with pytest.raises(SerializationError):
        cbor.decode(body)
