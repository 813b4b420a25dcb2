"""Configuration values checked against the JSON Schema fragment each attribute was generated from."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from tf.types import Unknown
from tf.utils import Diagnostics

from contract.patterns import ecma_regex
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
    from contract.patterns import validator_class

    return validator_class()(dict(attribute.fragment))


# Keywords whose meaning `_accepts` reproduces exactly as jsonschema applies them; the rest are annotations.
_QUICK_KEYWORDS = frozenset(
    {"type", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "description", "default"}
)
_QUICK_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


@cache
def _quick_check(attribute: Attribute) -> Callable[[Any], bool] | None:
    """A check that accepts a valid value without importing jsonschema (60 ms of a cold start).

    Only for fragments of simple keywords (all of ours); it says True only where jsonschema would
    accept the value, and anything else goes to jsonschema, whose answer and message are the ones used.
    """
    fragment = attribute.fragment
    declared = fragment.get("type")
    if isinstance(declared, list) and len([t for t in declared if t != "null"]) == 1:
        # A nullable type (a field a PATCH may clear): a configuration's null never comes here.
        declared = next(t for t in declared if t != "null")
    kind = _QUICK_TYPES.get(declared) if isinstance(declared, str) else None
    if kind is None or not set(fragment) <= _QUICK_KEYWORDS:
        return None
    enum = fragment.get("enum")
    if enum is not None and not all(isinstance(item, str) for item in enum):
        return None
    # Read as JSON Schema means it (ECMA-262: `$` is the very end), as the shim reads it.
    pattern = ecma_regex(fragment["pattern"]) if "pattern" in fragment else None
    low, high = fragment.get("minimum"), fragment.get("maximum")
    shortest, longest = fragment.get("minLength"), fragment.get("maxLength")

    def accepts(value: Any) -> bool:
        if not kind(value) or (enum is not None and value not in enum):
            return False
        if isinstance(value, str):
            size = len(value)
            return (
                (pattern is None or pattern.search(value) is not None)
                and (shortest is None or size >= shortest)
                and (longest is None or size <= longest)
            )
        return (low is None or value >= low) and (high is None or value <= high)

    return accepts


def check_value(diags: Diagnostics, attribute: Attribute, value: Any, path: list[Any]) -> None:
    """One error per invalid known value, on its path; unknown and null values pass."""
    if value is None or not is_known(value):
        return
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    quick = _quick_check(attribute)
    if quick is not None and quick(value):
        return
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
