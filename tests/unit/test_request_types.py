"""domain.request: the typed CreateTrainingJob request agrees with botocore's model member by
member, and a request the API accepts is one of its values."""

from __future__ import annotations

import typing

import botocore.session

from trainforge.domain import request as typed


def _model_shape(name: str) -> typing.Any:
    return botocore.session.get_session().get_service_model("sagemaker").shape_for(name)


def test_every_structure_has_the_models_members_and_required_members() -> None:
    checked = 0
    for name, value in vars(typed).items():
        if not (isinstance(value, type) and typing.is_typeddict(value)):
            continue
        shape = _model_shape(name)
        assert set(value.__annotations__) == set(shape.members), name
        assert value.__required_keys__ == frozenset(shape.required_members), name
        checked += 1
    assert checked >= 30


def test_the_request_structure_is_the_operations_input() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert model.operation_model("CreateTrainingJob").input_shape.name == (
        typed.CreateTrainingJobRequest.__name__
    )
