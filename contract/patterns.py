"""JSON Schema `pattern`s read as JSON Schema means them (ECMA-262), for the shim and the provider alike."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema `pattern` compiled to mean what ECMA-262 (the language of JSON Schema) says it means.

    Python's `$` also matches before a final newline, so `^[a-z]+$` would accept "abc\\n"; in ECMA-262,
    without the multiline flag, `$` matches at the very end only, which is Python's `\\Z`.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return re.compile("".join(out))


@cache
def validator_class() -> Any:
    """Draft 2020-12 with `pattern` (and so `propertyNames` patterns) read as ECMA-262 regular expressions."""
    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Any, patrn: str, instance: Any, _schema: Any) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not ecma_regex(patrn).search(instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    return validators.extend(Draft202012Validator, {"pattern": pattern})
