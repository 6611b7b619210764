"""Validation from the botocore model: exact SageMaker texts for known cases, and every invalid
variant the model yields for a rich CreateTrainingJob request is refused naming its member."""

from __future__ import annotations

import pytest

from tests.modelgen import cases, rich_create_request
from trainforge.aws import spec
from trainforge.aws.skeleton import Dispatcher
from trainforge.aws.validate import Validator, format_errors, render_value
from trainforge.aws.validate import _compiled as compiled
from trainforge.errors import ValidationError

DISPATCHER = Dispatcher({})
CREATE = spec.operation("sagemaker", "CreateTrainingJob").input_shape


def validate(params: dict[str, object], operation: str = "CreateTrainingJob") -> None:
    DISPATCHER.validate("sagemaker", operation, params)  # type: ignore[arg-type]


def test_rich_request_is_valid() -> None:
    validate(rich_create_request())


def test_name_pattern_error_is_sagemakers_text() -> None:
    params = rich_create_request()
    params["TrainingJobName"] = "bad_name"
    with pytest.raises(ValidationError) as info:
        validate(params)
    assert info.value.message == (
        "1 validation error detected: Value 'bad_name' at 'trainingJobName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    assert info.value.code == "ValidationException"


def test_several_errors_are_counted_and_joined() -> None:
    params = rich_create_request()
    params["TrainingJobName"] = "a" * 64
    del params["RoleArn"]
    with pytest.raises(ValidationError) as info:
        validate(params)
    assert info.value.message == (
        "3 validation errors detected: "
        f"Value '{'a' * 64}' at 'trainingJobName' failed to satisfy constraint: Member must have "
        "length less than or equal to 63; "
        f"Value '{'a' * 64}' at 'trainingJobName' failed to satisfy constraint: Member must "
        "satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; "
        "Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
    )


def test_enum_error_lists_the_enum() -> None:
    params = rich_create_request()
    params["ResourceConfig"]["InstanceType"] = "ml.t9.medium"  # type: ignore[index]
    with pytest.raises(ValidationError) as info:
        validate(params)
    message = info.value.message
    assert message.startswith(
        "1 validation error detected: Value 'ml.t9.medium' at 'resourceConfig.instanceType' "
        "failed to satisfy constraint: Member must satisfy enum value set: [ml.m4.xlarge, "
    )
    assert message.endswith("]")


def test_list_items_are_named_with_member() -> None:
    params = rich_create_request()
    params["InputDataConfig"][0]["ChannelName"] = "bad name!"  # type: ignore[index]
    with pytest.raises(ValidationError) as info:
        validate(params)
    assert "at 'inputDataConfig.1.member.channelName'" in info.value.message


def test_map_values_are_reported_once_per_map() -> None:
    params = rich_create_request()
    params["HyperParameters"] = {"a": "x" * 2501, "b": "y" * 2501}
    with pytest.raises(ValidationError) as info:
        validate(params)
    assert info.value.message.startswith("1 validation error detected: Value '{a=xxx")
    assert info.value.message.endswith(
        "' at 'hyperParameters' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 2500, Member must have length greater "
        "than or equal to 0, Member must satisfy regular expression pattern: ^.*, Member must not "
        "be null]"
    )


def test_range_error() -> None:
    params = rich_create_request()
    params["StoppingCondition"] = {"MaxRuntimeInSeconds": 0}
    with pytest.raises(ValidationError) as info:
        validate(params)
    assert info.value.message == (
        "1 validation error detected: Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed "
        "to satisfy constraint: Member must have value greater than or equal to 1"
    )


def test_service_required_members_the_model_leaves_optional() -> None:
    params = rich_create_request()
    del params["AlgorithmSpecification"]
    with pytest.raises(ValidationError) as info:
        validate(params)
    assert (
        "Value null at 'algorithmSpecification' failed to satisfy constraint: Member must not be null"
        in info.value.message
    )


def test_local_paths_are_accepted_where_an_s3_uri_is() -> None:
    params = rich_create_request()
    params["OutputDataConfig"]["S3OutputPath"] = "file:///tmp/out"  # type: ignore[index]
    params["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = "/data/train"  # type: ignore[index]
    validate(params)
    params["OutputDataConfig"]["S3OutputPath"] = "relative/path"  # type: ignore[index]
    with pytest.raises(ValidationError) as info:
        validate(params)
    assert (
        "Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)"
        in info.value.message
    )


GENERATED = cases(CREATE, rich_create_request())


def test_the_generator_covers_the_request() -> None:
    kinds = {case.kind for case in GENERATED}
    assert {
        "type",
        "required",
        "too-long",
        "enum",
        "pattern",
        "range",
        "map-key",
        "map-value",
    } <= kinds
    assert len(GENERATED) >= 150


@pytest.mark.parametrize("case", GENERATED, ids=[c.id for c in GENERATED])
def test_every_generated_invalid_request_is_refused_naming_its_member(case: object) -> None:
    with pytest.raises(ValidationError) as info:
        validate(case.params)  # type: ignore[attr-defined]
    message = info.value.message
    assert message.startswith(("1 validation error detected: ", "2 validation errors detected: "))
    assert f" at '{case.path}' failed to satisfy constraint: " in message  # type: ignore[attr-defined]


@pytest.mark.parametrize("service", ["sagemaker", "logs"])
def test_every_pattern_of_the_models_compiles(service: str) -> None:
    model = spec.service_model(service)
    for name in model.shape_names:
        pattern = model.shape_for(name).metadata.get("pattern")
        if pattern:
            compiled(pattern)


def test_render_value_like_the_java_service() -> None:
    assert render_value(None) == "null"
    assert render_value(True) == "true"
    assert render_value(["a", 1]) == "[a, 1]"
    assert render_value({"k": "v"}) == "{k=v}"


def test_format_errors_singular_and_plural() -> None:
    assert format_errors(["x"]) == "1 validation error detected: x"
    assert format_errors(["x", "y"]) == "2 validation errors detected: x; y"


def test_validator_reports_unknown_types_without_crashing() -> None:
    shape = spec.operation("sagemaker", "DescribeTrainingJob").input_shape
    errors = Validator().errors(shape, {"TrainingJobName": {"nested": "dict"}})
    assert errors == [
        "Value '{nested=dict}' at 'trainingJobName' failed to satisfy constraint: Member must be of type String"
    ]


def test_java_surrogate_pairs_become_code_points() -> None:
    pattern = "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*"
    assert compiled(pattern).fullmatch("table \U0001f600 name")
    assert not compiled(pattern).fullmatch("bad \x01")
