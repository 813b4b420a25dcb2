"""Finds and reads the JSON Schemas in provider-schema/, and resolves the $refs between them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "provider-schema"
GENERATED = frozenset({"provider.json"})


@cache
def documents() -> dict[str, dict[str, Any]]:
    """Every hand-written schema document, by its $id (such as urn:cloudbackup:cluster)."""
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        if path.name in GENERATED:
            continue
        doc = json.loads(path.read_text())
        docs[doc["$id"]] = doc
    return docs


def document(name: str) -> dict[str, Any]:
    """One document by its short name, such as "cluster" or "snapshots.data"."""
    return documents()[f"urn:cloudbackup:{name}"]


def resolve(ref: str, base: str) -> dict[str, Any]:
    """The schema a $ref points at, followed through further $refs; `base` is the referring document's $id."""
    target, _, pointer = ref.partition("#")
    doc_id = target or base
    node: Any = documents()[doc_id]
    for part in filter(None, pointer.split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if "$ref" in node:
        merged = {k: v for k, v in node.items() if k != "$ref"}
        return {**resolve(node["$ref"], doc_id), **merged}
    return node


def resolved_ref_base(ref: str, base: str) -> str:
    """The $id of the document a $ref lands in, for resolving the refs inside what it points at."""
    target = ref.partition("#")[0]
    return target or base


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
