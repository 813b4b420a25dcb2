"""Which Terraform attribute an API body field is, derived from each schema's x-terraform and its body.

An attribute and a body field are the same field when they name the same schema: the attribute's `$ref`
is the `$ref` (or the location) of exactly one place in the request body, and no other settable
attribute names it. A block is the body property that holds its attributes. A refusal's or an error's
JSON pointer is then reported on the attribute at fault without a hand-written table per resource, and
the provider builds request bodies and reads answers (`$defs/response`, matched the same way) from it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from referencing.jsonschema import DRAFT202012

from contract import documents

Path = list[str]
# Parts of a document that are no part of the request body.
_NOT_BODY = frozenset({"$defs", "x-terraform", "$schema", "$id"})


def _resolver(doc: dict[str, Any]) -> Any:
    """This document as given (a trial field included), beside the others its refs may name."""
    base = doc["$id"]
    return documents.registry().with_resource(base, DRAFT202012.create_resource(doc)).resolver(base)


def _places(doc: dict[str, Any], root: Any, start: str) -> dict[str, set[str]]:
    """Every `$ref` used under `root`, and every location under it as a `#/...` ref, to its pointers.

    Only the first `$ref` of a chain names a place: `targetGroupId` refers to `#/$defs/targetGroupId`,
    which is a group ID, and is no place of the group ID that `project_id` (a path parameter) names.
    """
    found: dict[str, set[str]] = defaultdict(set)
    resolver = _resolver(doc)

    def walk(node: Any, location: str, pointer: str, seen: frozenset[str], named: bool) -> None:
        if not isinstance(node, dict):
            return
        found[location].add(pointer)
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not named:
                found[ref].add(pointer)
            # Local refs lead further into the body ($defs/providerSettings holds instanceSizeName).
            if ref.startswith("#") and ref not in seen:
                walk(resolver.lookup(ref).contents, ref, pointer, seen | {ref}, True)
        for name, child in (node.get("properties") or {}).items():
            walk(child, f"{location}/properties/{name}", f"{pointer}/{name}", seen, False)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{location}/items", f"{pointer}/0", seen, False)
        if isinstance(node.get("additionalProperties"), dict):
            walk(
                node["additionalProperties"], f"{location}/additionalProperties", f"{pointer}/*", seen, False
            )
        if isinstance(node.get("propertyNames"), dict):
            # A map's keys (regionsConfig's region names) are the map itself.
            walk(node["propertyNames"], f"{location}/propertyNames", pointer, seen, False)

    walk(root, start, "", frozenset(), False)
    return found


def _body_refs(doc: dict[str, Any]) -> dict[str, set[str]]:
    """The places of the request body."""
    return _places(doc, {key: value for key, value in doc.items() if key not in _NOT_BODY}, "#")


def _response_refs(doc: dict[str, Any]) -> dict[str, set[str]]:
    """The places of the API's answer, `$defs/response` (none for a document without one)."""
    response = (doc.get("$defs") or {}).get("response")
    return _places(doc, response, "#/$defs/response") if isinstance(response, dict) else {}


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


@dataclass(frozen=True)
class Field:
    """One attribute of a resource as the API holds it: where a request sets it, where an answer has it."""

    attribute: str
    # JSON pointers into the request body and into the answer; None where the attribute is not there.
    request: str | None
    response: str | None
    # The JSON type of its values ("integer", "boolean", "string", ...) and the schema's default, if any.
    type: str | None
    default: Any
    settable: bool
    force_new: bool


def _schema(spec: Mapping[str, Any], resolver: Any) -> dict[str, Any]:
    """An attribute's schema with its `$ref` chain followed; keys nearer the attribute win."""
    node, merged = dict(spec), {}
    while isinstance(node.get("$ref"), str):
        merged = {**{k: v for k, v in node.items() if k != "$ref"}, **merged}
        resolved = resolver.lookup(node["$ref"])
        node, resolver = dict(resolved.contents), resolved.resolver
    return {**node, **merged}


def _json_type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if kinds else None
    return kind if isinstance(kind, str) else None


def attribute_fields(doc: dict[str, Any]) -> dict[str, Field]:
    """Every top-level attribute of one schema document as a Field (blocks are the resource's own work).

    A settable attribute is read back where it was written, when the answer has that place; any other
    attribute is the one place of the answer its `$ref` names that no written field took.
    """
    attributes: Mapping[str, Any] = (doc.get("x-terraform") or {}).get("attributes") or {}
    request = {a: p for a, p in _unique(_settable(attributes), _body_refs(doc)).items() if p}
    answer = _response_refs(doc)
    present = set().union(*answer.values()) if answer else set()
    response = {a: p for a, p in request.items() if p in present}
    claimed = set(request.values())
    rest = {name: spec["$ref"] for name, spec in attributes.items() if "$ref" in spec and name not in request}
    free = {ref: pointers - claimed for ref, pointers in answer.items()}
    response.update({a: p for a, p in _unique(rest, free).items() if p})
    resolver = _resolver(doc)
    fields: dict[str, Field] = {}
    for name, spec in attributes.items():
        schema = _schema(spec, resolver)
        fields[name] = Field(
            attribute=name,
            request=request.get(name),
            response=response.get(name),
            type=_json_type(schema),
            default=schema.get("default"),
            settable=bool(spec.get("required") or spec.get("optional")),
            force_new=bool(spec.get("forceNew")),
        )
    return fields
