"""Which Terraform attribute an API body field is, derived from each schema's x-terraform and its body.

An attribute and a body field are the same field when they name the same schema: the attribute's `$ref`
is the `$ref` (or the location) of exactly one place in the request body, and no other settable
attribute names it. A block is the body property that holds its attributes. A refusal's or an error's
JSON pointer is then reported on the attribute at fault without a hand-written table per resource.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from functools import cache
from typing import Any

from referencing.jsonschema import DRAFT202012

from contract import documents

Path = list[str]
# Parts of a document that are no part of the request body.
_NOT_BODY = frozenset({"$defs", "x-terraform", "$schema", "$id"})


def _body_refs(doc: dict[str, Any]) -> dict[str, set[str]]:
    """Every `$ref` used in the request body, and every body location as a `#/...` ref, to its pointers."""
    found: dict[str, set[str]] = defaultdict(set)
    base = doc["$id"]
    # This document as given (a trial field included), beside the others its refs may name.
    resolver = documents.registry().with_resource(base, DRAFT202012.create_resource(doc)).resolver(base)

    def walk(node: Any, location: str, pointer: str, seen: frozenset[str]) -> None:
        if not isinstance(node, dict):
            return
        found[location].add(pointer)
        ref = node.get("$ref")
        if isinstance(ref, str):
            found[ref].add(pointer)
            # Local refs lead further into the body ($defs/providerSettings holds instanceSizeName).
            if ref.startswith("#") and ref not in seen:
                walk(resolver.lookup(ref).contents, ref, pointer, seen | {ref})
        for name, child in (node.get("properties") or {}).items():
            walk(child, f"{location}/properties/{name}", f"{pointer}/{name}", seen)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{location}/items", f"{pointer}/0", seen)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{location}/additionalProperties", f"{pointer}/*", seen)
        if isinstance(node.get("propertyNames"), dict):
            # A map's keys (regionsConfig's region names) are the map itself.
            walk(node["propertyNames"], f"{location}/propertyNames", pointer, seen)

    body = {key: value for key, value in doc.items() if key not in _NOT_BODY}
    walk(body, "#", "", frozenset())
    return found


def _settable(attributes: Mapping[str, Any]) -> dict[str, str]:
    """Attribute name -> its `$ref`, for the attributes a configuration sets."""
    return {
        name: spec["$ref"]
        for name, spec in attributes.items()
        if "$ref" in spec and (spec.get("required") or spec.get("optional"))
    }


def _unique(refs: Mapping[str, str], body: Mapping[str, set[str]]) -> dict[str, str]:
    """Attribute -> body pointer, where the attribute's ref is one body place and no other attribute's."""
    users: dict[str, int] = defaultdict(int)
    for ref in refs.values():
        users[ref] += 1
    return {
        name: next(iter(body[ref]))
        for name, ref in refs.items()
        if users[ref] == 1 and len(body.get(ref, ())) == 1
    }


def fields_of(doc: dict[str, Any]) -> dict[str, Path]:
    """API JSON pointer -> the attribute path it is, for one schema document."""
    terraform = doc.get("x-terraform") or {}
    body = _body_refs(doc)
    fields: dict[str, Path] = {
        pointer: [attribute]
        for attribute, pointer in _unique(_settable(terraform.get("attributes") or {}), body).items()
        if pointer
    }
    for block, spec in (terraform.get("blocks") or {}).items():
        pointers = [
            pointer
            for ref in _settable(spec.get("attributes") or {}).values()
            for pointer in body.get(ref, ())
            if pointer
        ]
        tops = {pointer.split("/")[1] for pointer in pointers}
        if len(tops) == 1:
            fields[f"/{tops.pop()}"] = [block]
    return fields


@cache
def _field_map(name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((pointer, tuple(path)) for pointer, path in fields_of(documents.document(name)).items())


def field_map(name: str) -> dict[str, Path]:
    """API JSON pointer -> the attribute path it is, for the schema document `name` (such as "cluster")."""
    return {pointer: list(path) for pointer, path in _field_map(name)}
