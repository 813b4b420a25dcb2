"""Configuration values checked against the JSON Schema fragment each attribute was generated from."""

from __future__ import annotations

from functools import cache
from typing import Any

from tf.types import Unknown
from tf.utils import Diagnostics

from provider.schema import Attribute, TypeSchema


def is_known(value: Any) -> bool:
    """Whether a value and everything inside it is known at plan time."""
    if value is Unknown:
        return False
    if isinstance(value, dict):
        return all(is_known(v) for v in value.values())
    if isinstance(value, list):
        return all(is_known(v) for v in value)
    return True


@cache
def _validator(attribute: Attribute) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(dict(attribute.fragment))


def check_value(diags: Diagnostics, attribute: Attribute, value: Any, path: list[Any]) -> None:
    """One error per invalid known value, on its path; unknown and null values pass."""
    if value is None or not is_known(value):
        return
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    errors = list(_validator(attribute).iter_errors(value))
    if not errors:
        return
    error = min(errors, key=lambda e: len(list(e.path)))
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value if v is not None)
        problem = f"{value!r} is not one of {allowed}."
    elif error.validator == "pattern":
        problem = f"{value!r} has characters or a form this attribute does not allow."
    else:
        problem = f"{error.message}."
    diags.add_error(
        f"Invalid value for {attribute.name}",
        f"{problem} {attribute.description}",
        path=path,
    )


def block_elements(schema: TypeSchema, config: dict[str, Any], name: str) -> list[tuple[list[Any], Any]]:
    """(path, element) for each known element of a nested block in a configuration."""
    block = schema.block(name)
    value = config.get(name)
    if value is None or value is Unknown:
        return []
    if block.nesting == "single":
        return [([name], value)]
    elements = [e for e in value if e is not Unknown]
    # A set's elements have no index Terraform can point at; with one block, point at it.
    return [([name, (0,)] if len(value) == 1 else [name], e) for e in elements]


def validate_config(diags: Diagnostics, schema: TypeSchema, config: dict[str, Any]) -> None:
    """Every attribute and nested-block attribute the configuration sets, against its fragment."""
    for attribute in schema.attributes:
        if attribute.settable:
            check_value(diags, attribute, config.get(attribute.name), [attribute.name])
    for block in schema.blocks:
        for path, element in block_elements(schema, config, block.name):
            for attribute in block.attributes:
                sub = [*path, attribute.name] if path[-1] != block.name or block.nesting == "single" else path
                check_value(diags, attribute, element.get(attribute.name), sub)
