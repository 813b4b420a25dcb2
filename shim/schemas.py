"""Request validation against provider-schema/, and the OpenAPI document generated from the same files.

Long because request validation and the OpenAPI document are two readings of the same
schema files and routes, kept in one module so that they cannot drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry

from contract import documents as contract_documents
from shim import schema_files
from shim.errors import INVALID_ATTRIBUTE, MALFORMED_REQUEST, ApiError

BASE_PATH = "/api/atlas/v1.0"
URN = "urn:cloudbackup:"

# The request bodies the API accepts, as references into provider-schema/.
PROJECT = f"{URN}project"
CLUSTER = f"{URN}cluster"
CLUSTER_PATCH = f"{URN}cluster#/$defs/patch"
CLUSTER_BACKUP = f"{URN}cluster_backup"
SNAPSHOT = f"{URN}snapshot"
RESTORE_JOB = f"{URN}restore_job"
CLOCK_ADVANCE = "urn:cloudbackup:shim#/$defs/clockAdvance"

# Schemas of the shim's own test facility (/admin/clock); not a resource, so not in provider-schema/.
SHIM_DOCUMENT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:cloudbackup:shim",
    "title": "Shim facilities",
    "description": "Schemas of the shim's own endpoints that are not Terraform resources.",
    "$defs": {
        "clockAdvance": {
            "type": "object",
            "description": "How far to move the manual clock.",
            "additionalProperties": False,
            "required": ["advanceSeconds"],
            "properties": {
                "advanceSeconds": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 31622400,
                    "description": (
                        "Seconds to move the clock forward (at most 31622400, 366 days, per call); every "
                        "schedule slot passed is taken."
                    ),
                }
            },
        },
        "clock": {
            "type": "object",
            "description": "The manual clock.",
            "properties": {"now": {"$ref": "urn:cloudbackup:common#/$defs/timestamp"}},
        },
        "identity": {
            "type": "object",
            "description": "The service, its API version, and what the calling API key reaches.",
            "required": ["service", "apiVersion", "publicKey", "scope", "projectId", "readOnly"],
            "properties": {
                "service": {"type": "string", "const": "cloudbackup", "description": "Always cloudbackup."},
                "apiVersion": {"type": "string", "description": "Version of this API, such as 1.0."},
                "publicKey": {"type": "string", "description": "The public key the request was signed with."},
                "scope": {
                    "type": "string",
                    "enum": ["organization", "project"],
                    "description": "organization: every project; project: projectId alone.",
                },
                "projectId": {
                    "type": ["string", "null"],
                    "description": "The one project a project key reaches; null for an organization key.",
                },
                "readOnly": {"type": "boolean", "description": "Whether the key may only read."},
                "crossRegionRestore": {
                    "type": "boolean",
                    "description": "Whether the storage restores a snapshot into volumes of another region.",
                },
            },
        },
        "health": {
            "type": "object",
            "description": "Whether the shim is up.",
            "properties": {
                "status": {"type": "string", "description": "ok when the shim answers."},
                "driver": {"type": "string", "description": "Name of the snapshot driver in use."},
            },
        },
        "readiness": {
            "type": "object",
            "description": "Whether the shim can serve requests: its database answers and is at its schema.",
            "properties": {
                "status": {"type": "string", "description": "ready, when the shim can serve requests."},
                "schemaRevision": {"type": "string", "description": "The database's schema revision."},
            },
        },
    },
}


def all_documents() -> dict[str, dict[str, Any]]:
    """provider-schema/'s documents plus the shim's own, by $id."""
    return {**contract_documents.documents(), SHIM_DOCUMENT["$id"]: SHIM_DOCUMENT}


@cache
def registry() -> Registry:
    """The contract's registry plus the shim's own document, so that $refs between them resolve."""
    return contract_documents.with_documents({SHIM_DOCUMENT["$id"]: SHIM_DOCUMENT})


@cache
def validator(ref: str) -> Draft202012Validator:
    """A validator for the body schema `ref` points at (patterns read as ECMA-262, as JSON Schema means)."""
    validator_class: type[Draft202012Validator] = schema_files.validator_class()
    return validator_class({"$ref": ref}, registry=registry())


# --- reading and validating request bodies ----------------------------------------------------------


# The deepest body of the API nests 4 levels (cluster > replicationSpecs > [0] > regionsConfig > region).
MAX_BODY_DEPTH = 32


class JsonObject(dict[str, Any]):
    """A JSON object that remembers the keys it saw more than once (json.loads keeps only the last)."""

    duplicates: list[str]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> JsonObject:
    obj = JsonObject()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def parse_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is {}; anything else is MALFORMED_REQUEST."""
    if not raw.strip():
        return JsonObject()
    mimetype = (content_type or "").split(";")[0].strip().lower()
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(
            400,
            MALFORMED_REQUEST,
            f"The request body must be JSON sent with Content-Type: application/json, not "
            f"{mimetype or 'no Content-Type'}.",
        )
    too_deep = ApiError(
        400,
        MALFORMED_REQUEST,
        f"The request body is nested more than {MAX_BODY_DEPTH} levels deep; no request of this API "
        "needs that.",
    )
    try:
        body = json.loads(raw, object_pairs_hook=_pairs_hook)
    except RecursionError:
        raise too_deep from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ApiError(400, MALFORMED_REQUEST, f"The request body is not valid JSON: {error}.") from None
    if _depth(body) > MAX_BODY_DEPTH:
        # Validation and the duplicate-key walk recurse: a deep body must stop here, not at Python's limit.
        raise too_deep
    if not isinstance(body, dict):
        raise ApiError(
            400, MALFORMED_REQUEST, f"The request body must be a JSON object, not {type(body).__name__}."
        )
    return body


def _depth(node: Any) -> int:
    """How deeply arrays and objects nest in a parsed body, counted without recursion."""
    deepest = 0
    pending = [(node, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            pending.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def duplicate_keys(node: Any, pointer: str = "") -> list[tuple[str, str]]:
    """Every (object pointer, key) that a JSON object in the body listed more than once."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        found += [(pointer, key) for key in getattr(node, "duplicates", [])]
        for key, value in node.items():
            found += duplicate_keys(value, f"{pointer}/{escape(key)}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += duplicate_keys(value, f"{pointer}/{index}")
    return found


def escape(part: object) -> str:
    """One JSON pointer segment."""
    return str(part).replace("~", "~0").replace("/", "~1")


def pointer(parts: Iterable[object]) -> str:
    return "".join(f"/{escape(part)}" for part in parts)


def _allowed_properties(schema: dict[str, Any]) -> list[str]:
    return sorted(schema.get("properties", {}))


def describe(error: ValidationError) -> tuple[str, str]:
    """The JSON pointer of the field at fault and a sentence saying what is wrong with it."""
    path = list(error.absolute_path)
    where = pointer(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    hint = f" ({schema['description']})" if isinstance(schema.get("description"), str) else ""
    kind = error.validator
    if kind == "required" and isinstance(error.instance, dict):
        missing = next((name for name in error.validator_value if name not in error.instance), "")
        field = f"{where}/{escape(missing)}"
        return field, f"Missing required field {field}."
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_properties(schema)
        extras = [name for name in error.instance if name not in allowed]
        if schema.get("properties") is not None or schema.get("additionalProperties") is False:
            field = f"{where}/{escape(extras[0])}" if extras else where
            return field, (
                f"Unknown field {field}: the API does not accept it here. "
                f"Allowed fields: {', '.join(allowed) or 'none'}."
            )
        bad = extras[0] if extras else ""
        return f"{where}/{escape(bad)}", f"Invalid attribute {where}/{escape(bad)}: {error.message}."
    if "propertyNames" in error.absolute_schema_path:
        # A key of the object broke the rule for names (a region name): point at that key.
        field = f"{where}/{escape(error.instance)}"
        return field, f"Invalid name {field}: {error.message}.{hint}"
    if kind == "type":
        expected = error.validator_value
        expected_text = " or ".join(expected) if isinstance(expected, list) else expected
        return where, (
            f"Invalid attribute {where or '/'}: expected {expected_text}, "
            f"got {_json_type(error.instance)}.{hint}"
        )
    if kind == "enum":
        options = ", ".join(json.dumps(option) for option in error.validator_value)
        return (
            where,
            f"Invalid attribute {where}: {json.dumps(error.instance)} is not one of {options}.{hint}",
        )
    if kind in ("minProperties", "maxProperties", "minItems", "maxItems") and not where:
        return where, f"Invalid request body: {error.message}."
    return where, f"Invalid attribute {where or '/'}: {error.message}.{hint}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def validate(body: dict[str, Any], ref: str) -> None:
    """Raise INVALID_ATTRIBUTE naming the field at fault (and every field at fault in `parameters`)."""
    errors = list(validator(ref).iter_errors(body))
    if not errors:
        return
    first = best_match(errors)
    field, detail = describe(first)
    fields = [field, *sorted({describe(error)[0] for error in errors} - {field})]
    # The body itself (pointer "") is reported as "/" so that it still names something.
    raise ApiError(400, INVALID_ATTRIBUTE, detail, [f or "/" for f in fields])


# --- the OpenAPI document -------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says of one view: its bodies, statuses and query parameters."""

    summary: str
    request: str | None = None
    response: str | None = None
    status: int = 200
    listing: bool = False
    query: tuple[str, ...] = ()
    errors: tuple[int, ...] = (400, 401, 403, 404)
    auth: bool = True


def operation(**kwargs: Any) -> Callable[[F], F]:
    """Describe a view for the OpenAPI document (the view's docstring is the fallback summary)."""

    def decorate(view: F) -> F:
        view.openapi = Operation(**kwargs)  # type: ignore[attr-defined]
        return view

    return decorate


def _short(doc_id: str) -> str:
    return doc_id.removeprefix(URN)


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_.]", text) if part)


def component_name(doc_id: str, def_name: str | None = None) -> str:
    """Components: common's defs by their own name; a document's body is <Doc>Request, its response <Doc>."""
    short = _short(doc_id)
    if short in ("common", "shim"):
        return _camel(def_name or short)
    if def_name is None:
        return f"{_camel(short)}Request"
    if def_name == "response":
        return _camel(short)
    return _camel(short) + _camel(def_name)


def _lookup(doc_id: str, ptr: str) -> Any:
    node: Any = all_documents()[doc_id]
    for part in filter(None, ptr.split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


DROPPED = frozenset({"$schema", "$id", "$defs", "x-terraform"})


def _convert(node: Any, doc_id: str) -> Any:
    """A schema node with its refs pointed at components (or inlined when they point elsewhere)."""
    if isinstance(node, list):
        return [_convert(item, doc_id) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED:
            continue
        if key == "$ref":
            target, _, ptr = value.partition("#")
            target = target or doc_id
            match = re.fullmatch(r"/\$defs/([^/]+)", ptr)
            if not ptr:
                out["$ref"] = f"#/components/schemas/{component_name(target)}"
            elif match:
                out["$ref"] = f"#/components/schemas/{component_name(target, match.group(1))}"
            else:
                out.update(_convert(_lookup(target, ptr), target))
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: _convert(sub, doc_id) for name, sub in value.items()}
        else:
            out[key] = _convert(value, doc_id)
    return out


def components() -> dict[str, Any]:
    """Every body and definition of the documents, as OpenAPI components."""
    schemas: dict[str, Any] = {}
    for doc_id, doc in all_documents().items():
        kind = doc.get("x-terraform", {}).get("kind")
        if kind in ("provider", "data_source"):
            continue
        if "properties" in doc or doc.get("type") == "object":
            schemas[component_name(doc_id)] = _convert(doc, doc_id)
        for def_name, sub in doc.get("$defs", {}).items():
            schemas[component_name(doc_id, def_name)] = _convert(sub, doc_id)
    return schemas


def _ref(ref: str) -> dict[str, str]:
    target, _, ptr = ref.partition("#")
    match = re.fullmatch(r"/\$defs/([^/]+)", ptr)
    return {"$ref": f"#/components/schemas/{component_name(target, match.group(1) if match else None)}"}


def _error_responses(statuses: Iterable[int]) -> dict[str, Any]:
    reasons = {
        400: "Bad input or a refused rule.",
        401: "Missing or wrong Digest credentials.",
        403: "The API key may not do this.",
        404: "No such resource, or one the API key cannot reach.",
        409: "The request conflicts with the current state.",
    }
    return {
        str(status): {
            "description": reasons.get(status, "Error."),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in statuses
    }


QUERY_PARAMETERS: dict[str, dict[str, Any]] = {
    "pageNum": {
        "description": "Page of the list to return, from 1.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "itemsPerPage": {
        "description": "Items per page, 1 to 500 (default 100).",
        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
    },
    "dryRun": {
        "description": "Only check the rules; change nothing.",
        "schema": {"type": "boolean", "default": False},
    },
}

PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "groupId": _ref(f"{URN}common#/$defs/groupId"),
    "clusterName": _ref(f"{URN}common#/$defs/clusterName"),
    "snapshotId": _ref(f"{URN}common#/$defs/objectId"),
    "jobId": _ref(f"{URN}common#/$defs/objectId"),
}


def openapi_document(
    rules: Iterable[tuple[str, Iterable[str], Callable[..., Any]]], *, title: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes given as (Flask rule, methods, view)."""
    paths: dict[str, dict[str, Any]] = {}
    for rule, methods, view in rules:
        op: Operation | None = getattr(view, "openapi", None)
        if op is None:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)
        item = paths.setdefault(path, {})
        for method in sorted(set(methods) - {"HEAD", "OPTIONS"}):
            item[method.lower()] = _path_operation(op, path, method, view)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1.0",
            "description": "Atlas-style cloud provider snapshots for Azure-backed replica sets. "
            "Schemas are generated from provider-schema/.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": "/"}],
        "security": [{"digest": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components(),
            "securitySchemes": {
                "digest": {
                    "type": "http",
                    "scheme": "digest",
                    "description": "HTTP Digest: the API public key as user, the private key as password.",
                }
            },
        },
    }


def _path_operation(op: Operation, path: str, method: str, view: Callable[..., Any]) -> dict[str, Any]:
    summary = op.summary or (view.__doc__ or "").strip().splitlines()[0]
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": PATH_PARAMETERS.get(name, {"type": "string"}),
        }
        for name in re.findall(r"{([^}]+)}", path)
    ]
    query = op.query + (("pageNum", "itemsPerPage") if op.listing else ())
    parameters += [{"name": name, "in": "query", **QUERY_PARAMETERS[name]} for name in query]
    result: dict[str, Any] = {
        "operationId": f"{view.__name__}",
        "summary": summary,
        "parameters": parameters,
    }
    if not op.auth:
        result["security"] = []
    if op.request:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.request)}},
        }
    if op.status == 204:
        success: dict[str, Any] = {"description": "Done; no content."}
    else:
        schema: dict[str, Any] = _ref(op.response) if op.response else {"type": "object"}
        if op.listing:
            schema = {
                "type": "object",
                "properties": {
                    "results": {"type": "array", "items": schema},
                    "totalCount": {"type": "integer", "description": "Number of items in the whole list."},
                    "links": _ref(f"{URN}common#/$defs/links"),
                },
            }
        success = {"description": summary, "content": {"application/json": {"schema": schema}}}
    result["responses"] = {str(op.status): success, **_error_responses(op.errors if op.auth else ())}
    return result
