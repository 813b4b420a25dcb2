"""The JSON Schema documents, read through importlib.resources, and the one referencing.Registry over them."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# Generated from the others (by `python -m provider.docs`), so not a document the code reads.
GENERATED = frozenset({"provider.json"})
PREFIX = "urn:cloudbackup:"


def schema_dir() -> Traversable:
    """contract/schemas/, wherever the package is installed (a checkout, a wheel, a zip)."""
    return files("contract") / "schemas"


def missing() -> str | None:
    """What is missing for the documents to load (a sentence), or None when they are all there."""
    directory = schema_dir()
    if not directory.is_dir():
        return f"the schema directory {directory} is not installed"
    names = {entry.name for entry in directory.iterdir()}
    if not any(name.endswith(".json") and name not in GENERATED for name in names):
        return f"the schema directory {directory} holds no schema documents"
    return None


@cache
def documents() -> dict[str, dict[str, Any]]:
    """Every hand-written schema document, by its $id (such as urn:cloudbackup:cluster)."""
    docs: dict[str, dict[str, Any]] = {}
    for entry in sorted(schema_dir().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json") or entry.name in GENERATED:
            continue
        doc = json.loads(entry.read_text(encoding="utf-8"))
        docs[doc["$id"]] = doc
    return docs


def document(name: str) -> dict[str, Any]:
    """One document by its short name, such as "cluster" or "snapshots.data"."""
    return documents()[f"{PREFIX}{name}"]


def _without_schema(doc: dict[str, Any]) -> dict[str, Any]:
    """A document without its `$schema`: with it, jsonschema would validate a referenced document with the
    stock validator that `$schema` names, not with the shim's, which reads patterns as ECMA-262 (all
    documents are draft 2020-12)."""
    return {key: value for key, value in doc.items() if key != "$schema"}


@cache
def registry() -> Registry[Any]:
    """Every document as a resource, so that $refs between them resolve."""
    return Registry().with_resources(
        (uri, DRAFT202012.create_resource(_without_schema(doc))) for uri, doc in documents().items()
    )


def with_documents(extra: dict[str, dict[str, Any]]) -> Registry[Any]:
    """The registry plus further documents (the shim's own), for validators that reach both."""
    resources: list[tuple[str, Resource[Any]]] = [
        (uri, DRAFT202012.create_resource(_without_schema(doc))) for uri, doc in extra.items()
    ]
    return registry().with_resources(resources)


def resolve(ref: str, base: str) -> tuple[dict[str, Any], str]:
    """The schema a $ref points at, followed through further $refs, and the $id of the document it is in.

    `base` is the referring document's $id. Keys beside a $ref win over those of its target, as in the
    documents' own usage ("this field is that type, with this description").
    """
    node: dict[str, Any] = registry().resolver(base_uri=base).lookup(ref).contents
    # Every document has an absolute $id and every $ref is either local or names one, so the document a
    # lookup lands in is the ref's own target.
    landed = ref.partition("#")[0] or base
    if "$ref" in node:
        merged = {k: v for k, v in node.items() if k != "$ref"}
        inner, landed = resolve(node["$ref"], landed)
        return {**inner, **merged}, landed
    return node, landed
