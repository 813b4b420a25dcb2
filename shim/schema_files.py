"""The JSON Schemas, as the shim has always named them: a thin view of contract.documents."""

from __future__ import annotations

from typing import Any

from contract.documents import GENERATED, document, documents, registry, schema_dir
from contract.patterns import ecma_regex, validator_class

__all__ = [
    "GENERATED",
    "document",
    "documents",
    "ecma_regex",
    "registry",
    "resolve",
    "resolved_ref_base",
    "schema_dir",
    "validator_class",
]


def resolve(ref: str, base: str) -> dict[str, Any]:
    """The schema a $ref points at, followed through further $refs; `base` is the referring document's $id."""
    from contract.documents import resolve as resolve_with_base

    return resolve_with_base(ref, base)[0]


def resolved_ref_base(ref: str, base: str) -> str:
    """The $id of the document a $ref lands in, for resolving the refs inside what it points at."""
    return ref.partition("#")[0] or base
