"""Finds and reads the JSON Schemas in provider-schema/, and resolves the $refs between them."""

from __future__ import annotations

import json
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
