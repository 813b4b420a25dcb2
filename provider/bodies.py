"""Request bodies from Terraform values, and Terraform values from API answers, by each schema's field map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from tf.types import Unknown

from contract import documents
from contract.fields import Field, attribute_fields

State = dict[str, Any]


def _parts(pointer: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]


def _get(body: Any, pointer: str) -> Any:
    for part in _parts(pointer):
        if not isinstance(body, Mapping):
            return None
        body = body.get(part)
    return body


def _put(body: dict[str, Any], pointer: str, value: Any) -> None:
    *parents, last = _parts(pointer)
    for part in parents:
        body = body.setdefault(part, {})
    body[last] = value


def _api_value(field: Field, value: Any) -> Any:
    """A Terraform value as the API's JSON type: Terraform numbers are not told integer from float."""
    if field.type == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if field.type == "boolean" and value is not None:
        return bool(value)
    return value


@dataclass(frozen=True)
class Bodies:
    """The translation for one schema document: attribute <-> request field <-> answer field."""

    fields: Mapping[str, Field]

    @classmethod
    def of(cls, document: dict[str, Any]) -> Bodies:
        return cls(attribute_fields(document))

    def _written(self) -> list[Field]:
        return [f for f in self.fields.values() if f.settable and f.request]

    def _value(self, field: Field, state: Mapping[str, Any]) -> Any:
        """An attribute's value as the API takes it; left out (None), the schema's default."""
        value = state.get(field.attribute)
        return _api_value(field, field.default if value is None else value)

    def to_body(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """The request body for these values: every settable attribute the body has, nulls left out."""
        body: dict[str, Any] = {}
        for field in self._written():
            value = self._value(field, state)
            if value is not None:
                _put(body, field.request or "", value)
        return body

    @staticmethod
    def changes(prior_body: Mapping[str, Any], planned_body: Mapping[str, Any]) -> dict[str, Any]:
        """The top-level fields of `planned_body` that differ from `prior_body` (null for one cleared)."""
        changed = {key: value for key, value in planned_body.items() if prior_body.get(key) != value}
        changed.update({key: None for key in prior_body if key not in planned_body})
        return changed

    def from_body(self, body: Mapping[str, Any], **given: Any) -> State:
        """Every attribute's value in an answer (null: its schema default); `given` ones (blocks too) win."""
        state: State = {}
        for name, field in self.fields.items():
            value = _get(body, field.response) if field.response else None
            state[name] = field.default if value is None else value
        return {**state, **given}

    def in_place(self) -> list[str]:
        """The attributes an update sends in place: settable, in the body, not forcing a replacement."""
        return [f.attribute for f in self._written() if not f.force_new]

    def differs(self, prior: Mapping[str, Any], planned: Mapping[str, Any]) -> bool:
        """Whether a plan changes (or may change, being unknown) an attribute an update sends in place."""
        for field in self._written():
            if field.force_new:
                continue
            value = planned.get(field.attribute)
            if value is Unknown or self._value(field, planned) != self._value(field, prior):
                return True
        return False


def _document_of(type_name: str) -> dict[str, Any]:
    for document in documents.documents().values():
        if (document.get("x-terraform") or {}).get("typeName") == type_name:
            return document
    raise KeyError(f"no schema document declares {type_name}")


@cache
def bodies(type_name: str) -> Bodies:
    """The translation for a resource type, such as cloudbackup_cluster."""
    return Bodies.of(_document_of(type_name))


def to_body(type_name: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """The request body that creates a `type_name` with these attribute values."""
    return bodies(type_name).to_body(state)


def from_body(type_name: str, body: Mapping[str, Any], **given: Any) -> State:
    """The attribute values of a `type_name` the API answered with; `given` ones (path parameters) win."""
    return bodies(type_name).from_body(body, **given)
