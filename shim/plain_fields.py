"""A cluster's plain fields: top-level scalar body fields kept as they are in the column of the same name.

`diskSizeGB` is the column `disk_size_gb`, `comment` would be `comment`: a field the cluster schema adds
needs its column (and an Alembic revision), and is then written and shown without code of its own here.
Fields with rules (a disk that cannot shrink) are checked by the service before they are written.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from contract import documents
from shim.store.models import Cluster

_SCALARS = frozenset({"string", "integer", "number", "boolean"})


def column_name(field: str) -> str:
    """The snake_case column of a camelCase field: diskSizeGB -> disk_size_gb."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", field).lower()


def _scalar(schema: dict[str, Any]) -> bool:
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return any(kind in _SCALARS for kind in kinds)


def fields_of(doc: dict[str, Any], columns: set[str]) -> tuple[tuple[str, str], ...]:
    """(field, column) for every scalar property of a body schema that has a column of its name."""
    found = []
    for field, spec in doc["properties"].items():
        schema = documents.resolve(spec["$ref"], doc["$id"])[0] if "$ref" in spec else spec
        if _scalar(schema) and column_name(field) in columns:
            found.append((field, column_name(field)))
    return tuple(found)


@cache
def plain_fields() -> tuple[tuple[str, str], ...]:
    """The cluster's plain fields: its schema document against the Cluster table."""
    return fields_of(documents.document("cluster"), set(Cluster.__table__.columns.keys()))


def render(row: Cluster) -> dict[str, Any]:
    """The plain fields of a cluster as the API shows them."""
    return {field: getattr(row, column) for field, column in plain_fields()}


def apply(row: Cluster, body: dict[str, Any]) -> None:
    """Write the plain fields a (validated) request body gives; those it leaves out keep their value."""
    for field, column in plain_fields():
        if field in body:
            setattr(row, column, body[field])
