"""The shapes of the operations trainforge implements, read from the pruned model JSON that
``spec`` caches, without botocore: what validating a request (``validate``) and shaping a result
(``serializer``) need, for the server and the CLI alike.

botocore's ``botocore.model`` brings its HTTP stack along when imported (urllib3, its auth and
utilities: about a tenth of a second), which ``trainforge run`` would pay before its job starts
only to check a request. These shapes expose the part of botocore's shape interface that
validation and serialization read (``name``, ``type_name``, ``metadata``, ``required_members``,
``members``, ``member``, ``key``, ``value``), with the same meaning, over the same model data, so
a request is refused with the same words whichever reads it. The wire parsers (``parser``,
``query``, ``protocols``' decoding) keep botocore's model.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from trainforge.aws import spec

# botocore.model.Shape.METADATA_ATTRS: what a shape's ``metadata`` holds.
_METADATA_ATTRS = (
    "required",
    "min",
    "max",
    "pattern",
    "sensitive",
    "enum",
    "idempotencyToken",
    "error",
    "exception",
    "endpointdiscoveryid",
    "retryable",
    "document",
    "union",
    "contextParam",
    "clientContextParams",
    "requiresLength",
)


class Shape:
    """One shape of a service model. A member's traits (``locationName``, ...) never change
    what validation or serialization read, so a member is the shape it names."""

    def __init__(self, name: str, model: Mapping[str, Any], service: _Service) -> None:
        self.name = name
        self.type_name: str = model["type"]
        self._model = model
        self._service = service

    @functools.cached_property
    def metadata(self) -> dict[str, Any]:
        return {attr: self._model[attr] for attr in _METADATA_ATTRS if attr in self._model}

    @functools.cached_property
    def required_members(self) -> list[str]:
        return list(self._model.get("required", []))

    @functools.cached_property
    def members(self) -> dict[str, Shape]:
        """A structure's members in the model's order."""
        return {
            name: self._service.shape(ref["shape"])
            for name, ref in self._model.get("members", {}).items()
        }

    @functools.cached_property
    def member(self) -> Shape:
        """A list's member."""
        return self._service.shape(self._model["member"]["shape"])

    @functools.cached_property
    def key(self) -> Shape:
        """A map's key."""
        return self._service.shape(self._model["key"]["shape"])

    @functools.cached_property
    def value(self) -> Shape:
        """A map's value."""
        return self._service.shape(self._model["value"]["shape"])

    def __repr__(self) -> str:
        return f"<Shape({self.name})>"


class _Service:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self._shapes: dict[str, Shape] = {}

    def shape(self, name: str) -> Shape:
        found = self._shapes.get(name)
        if found is None:
            found = self._shapes[name] = Shape(name, self._data["shapes"][name], self)
        return found

    def operation_shape(self, operation: str, direction: str) -> Shape | None:
        ref = self._data["operations"][operation].get(direction)
        return self.shape(ref["shape"]) if ref else None


@functools.cache
def _service(service_name: str) -> _Service:
    return _Service(spec.model_data(service_name))


def input_shape(service_name: str, operation: str) -> Shape | None:
    return _service(service_name).operation_shape(operation, "input")


def output_shape(service_name: str, operation: str) -> Shape | None:
    return _service(service_name).operation_shape(operation, "output")
