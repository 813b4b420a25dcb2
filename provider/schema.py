"""The one generator: provider-schema/*.json to the Terraform schema, its protobuf, and provider.json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tf.types import Bool, List, Number, String, TfType

from contract import documents as contract_documents
from provider.types import Object, cty_json

PROVIDER_ADDRESS = "registry.terraform.io/cloudbackup/cloudbackup"
TYPE_PREFIX = "cloudbackup"
FORMAT_VERSION = "0.2"
# Written in a checkout by `python -m provider.docs`; contract/schemas/ is a directory there.
PROVIDER_JSON = Path(str(contract_documents.schema_dir() / "provider.json"))


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, eq=False)
class Attribute:
    """One Terraform attribute, with the JSON Schema fragment its values are validated against."""

    name: str
    kind: TfType
    description: str
    required: bool = False
    optional: bool = False
    computed: bool = False
    sensitive: bool = False
    force_new: bool = False
    default: Any = MISSING
    env: str | None = None
    fragment: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_default(self) -> bool:
        return self.default is not MISSING

    @property
    def settable(self) -> bool:
        """Whether a configuration may set it (required or optional)."""
        return self.required or self.optional


@dataclass(frozen=True)
class BlockType:
    """A nested block: set or single, with its own attributes."""

    name: str
    nesting: str
    description: str
    attributes: tuple[Attribute, ...]
    min_items: int = 0
    max_items: int = 0

    def attribute(self, name: str) -> Attribute:
        return next(a for a in self.attributes if a.name == name)


@dataclass(frozen=True)
class TypeSchema:
    """The schema of the provider, one resource or one data source."""

    type_name: str
    kind: str
    description: str
    document: str
    attributes: tuple[Attribute, ...]
    blocks: tuple[BlockType, ...] = ()
    import_id: str | None = None
    version: int = 0

    def attribute(self, name: str) -> Attribute:
        return next(a for a in self.attributes if a.name == name)

    def block(self, name: str) -> BlockType:
        return next(b for b in self.blocks if b.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes) + tuple(b.name for b in self.blocks)


@dataclass(frozen=True)
class Schemas:
    """Everything the provider declares."""

    provider: TypeSchema
    resources: dict[str, TypeSchema]
    data_sources: dict[str, TypeSchema]


# JSON Schema → Terraform


def inline(node: Any, base: str) -> Any:
    """A copy of a schema fragment with every $ref replaced by what it points at, so it stands alone."""
    if isinstance(node, list):
        return [inline(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        target, target_base = contract_documents.resolve(ref, base)
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return inline(merged, target_base)
    return {key: inline(value, base) for key, value in node.items()}


def _json_type(fragment: Mapping[str, Any]) -> str:
    kind = fragment.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if kinds else None
    if kind is None and "enum" in fragment:
        values = [v for v in fragment["enum"] if v is not None]
        kind = "string" if all(isinstance(v, str) for v in values) else "number"
    if kind is None:
        raise ValueError(f"schema fragment has no type: {fragment}")
    return kind


def tf_kind(fragment: Mapping[str, Any]) -> TfType:
    """The Terraform type of a (stand-alone) JSON Schema fragment."""
    kind = _json_type(fragment)
    if kind == "string":
        return String()
    if kind in ("integer", "number"):
        return Number()
    if kind == "boolean":
        return Bool()
    if kind == "array":
        return List(tf_kind(fragment["items"]))
    if kind == "object":
        return Object({name: tf_kind(sub) for name, sub in fragment.get("properties", {}).items()})
    raise ValueError(f"no Terraform type for JSON Schema type {kind!r}")


_X_KEYS = {"required", "optional", "computed", "forceNew", "sensitive", "env"}


def _attribute(name: str, spec: Mapping[str, Any], base: str, *, kind: str) -> Attribute:
    fragment = inline({k: v for k, v in spec.items() if k not in _X_KEYS}, base)
    description = fragment.get("description", "")
    default = fragment.get("default", MISSING)
    optional = bool(spec.get("optional"))
    computed = bool(spec.get("computed"))
    if kind != "provider" and optional and default is not MISSING:
        # Terraform lets a provider fill in a value the configuration left out only for computed attributes.
        computed = True
    return Attribute(
        name=name,
        kind=tf_kind(fragment),
        description=description,
        required=bool(spec.get("required")),
        optional=optional,
        computed=computed,
        sensitive=bool(spec.get("sensitive")),
        force_new=bool(spec.get("forceNew")),
        default=default,
        env=spec.get("env"),
        fragment=fragment,
    )


def _block(name: str, spec: Mapping[str, Any], base: str, *, kind: str) -> BlockType:
    if "$ref" in spec:
        target = inline({"$ref": spec["$ref"]}, base)
        required = set(target.get("required", ()))
        attributes = tuple(
            _attribute(attr, {**sub, ("required" if attr in required else "optional"): True}, base, kind=kind)
            for attr, sub in target.get("properties", {}).items()
        )
        description = spec.get("description", target.get("description", ""))
    else:
        attributes = tuple(_attribute(attr, sub, base, kind=kind) for attr, sub in spec["attributes"].items())
        description = spec.get("description", "")
    return BlockType(
        name=name,
        nesting=spec["nesting"],
        description=description,
        attributes=attributes,
        min_items=spec.get("minItems", 0),
        max_items=spec.get("maxItems", 0),
    )


def type_schema(document: Mapping[str, Any]) -> TypeSchema:
    """The Terraform schema that one document's x-terraform section describes."""
    x = document["x-terraform"]
    base = document["$id"]
    kind = x["kind"]
    return TypeSchema(
        type_name=x.get("typeName", TYPE_PREFIX),
        kind=kind,
        description=x.get("description", document.get("description", "")),
        document=base.rpartition(":")[2],
        attributes=tuple(
            _attribute(name, spec, base, kind=kind) for name, spec in x.get("attributes", {}).items()
        ),
        blocks=tuple(_block(name, spec, base, kind=kind) for name, spec in x.get("blocks", {}).items()),
        import_id=x.get("importId"),
    )


@cache
def load() -> Schemas:
    """Every schema the provider declares, generated from provider-schema/."""
    provider = None
    resources: dict[str, TypeSchema] = {}
    data_sources: dict[str, TypeSchema] = {}
    for document in contract_documents.documents().values():
        if "x-terraform" not in document:
            continue
        schema = type_schema(document)
        if schema.kind == "provider":
            provider = schema
        elif schema.kind == "resource":
            resources[schema.type_name] = schema
        elif schema.kind == "data_source":
            data_sources[schema.type_name] = schema
    if provider is None:
        raise ValueError("provider-schema/ has no document with x-terraform kind 'provider'")
    return Schemas(provider, dict(sorted(resources.items())), dict(sorted(data_sources.items())))


# Terraform's protocol (tfplugin6)


def to_pb(schema: TypeSchema):
    """The tfplugin6 Schema message of one type, through the tf package's schema classes."""
    from tf.schema import Attribute as TfAttribute
    from tf.schema import Block, NestedBlock, NestMode, TextFormat
    from tf.schema import Schema as TfSchema

    def attribute(a: Attribute) -> TfAttribute:
        return TfAttribute(
            a.name,
            a.kind,
            description=a.description,
            required=a.required,
            optional=a.optional,
            computed=a.computed,
            sensitive=a.sensitive,
            description_kind=TextFormat.Plain,
        )

    modes = {"set": NestMode.Set, "single": NestMode.Single}
    blocks = [
        NestedBlock(
            b.name,
            modes[b.nesting],
            Block(
                attributes=[attribute(a) for a in b.attributes],
                description=b.description,
                description_kind=TextFormat.Plain,
            ),
            min_items=b.min_items or None,
            max_items=b.max_items or None,
        )
        for b in schema.blocks
    ]
    return TfSchema(
        attributes=[attribute(a) for a in schema.attributes],
        block_types=blocks,
        version=schema.version,
        description=schema.description,
        description_kind=TextFormat.Plain,
    ).to_pb()


def server_capabilities() -> Any:
    """What current Terraform may rely on: null-planned destroys, a schema cached from an earlier start."""
    from tf.gen import tfplugin_pb2 as pb

    return pb.ServerCapabilities(plan_destroy=True, get_provider_schema_optional=True)


@cache
def provider_schema_response() -> bytes:
    """The serialized GetProviderSchema response: built once per process, it never changes."""
    from tf.gen import tfplugin_pb2 as pb

    schemas = load()
    return pb.GetProviderSchema.Response(
        provider=to_pb(schemas.provider),
        resource_schemas={name: to_pb(s) for name, s in schemas.resources.items()},
        data_source_schemas={name: to_pb(s) for name, s in schemas.data_sources.items()},
        server_capabilities=server_capabilities(),
    ).SerializeToString()


# `terraform providers schema -json`


def _attribute_json(a: Attribute) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": cty_json(a.kind),
        "description": a.description,
        "description_kind": "plain",
    }
    for flag in ("required", "optional", "computed", "sensitive"):
        if getattr(a, flag):
            out[flag] = True
    return out


def _block_json(
    attributes: tuple[Attribute, ...], blocks: tuple[BlockType, ...], description: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if attributes:
        out["attributes"] = {a.name: _attribute_json(a) for a in attributes}
    if blocks:
        out["block_types"] = {}
        for b in blocks:
            block: dict[str, Any] = {
                "nesting_mode": b.nesting,
                "block": _block_json(b.attributes, (), b.description),
            }
            if b.min_items:
                block["min_items"] = b.min_items
            if b.max_items:
                block["max_items"] = b.max_items
            out["block_types"][b.name] = block
    if description:
        out["description"] = description
    out["description_kind"] = "plain"
    return out


def _schema_json(schema: TypeSchema) -> dict[str, Any]:
    return {
        "version": schema.version,
        "block": _block_json(schema.attributes, schema.blocks, schema.description),
    }


def provider_json() -> dict[str, Any]:
    """The provider's schemas in the format of `terraform providers schema -json`."""
    schemas = load()
    return {
        "format_version": FORMAT_VERSION,
        "provider_schemas": {
            PROVIDER_ADDRESS: {
                "provider": _schema_json(schemas.provider),
                "resource_schemas": {name: _schema_json(s) for name, s in schemas.resources.items()},
                "data_source_schemas": {name: _schema_json(s) for name, s in schemas.data_sources.items()},
            }
        },
    }


def render_provider_json() -> str:
    return json.dumps(provider_json(), indent=2, sort_keys=True) + "\n"


def write_provider_json(path: Path = PROVIDER_JSON) -> Path:
    path.write_text(render_provider_json())
    return path


if __name__ == "__main__":
    print(write_provider_json())
