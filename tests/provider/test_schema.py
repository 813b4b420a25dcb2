"""The generated Terraform schema: types, flags, defaults, descriptions, and the checked-in provider.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provider import docs, schema
from provider.runtime import schema_cache, tls
from provider.schema import PROVIDER_JSON


def all_attributes() -> list[tuple[str, schema.Attribute]]:
    schemas = schema.load()
    out = []
    for type_schema in [schemas.provider, *schemas.resources.values(), *schemas.data_sources.values()]:
        out += [(f"{type_schema.type_name}.{a.name}", a) for a in type_schema.attributes]
        for block in type_schema.blocks:
            out += [(f"{type_schema.type_name}.{block.name}.{a.name}", a) for a in block.attributes]
    return out


def test_every_type_of_the_contract_is_declared() -> None:
    schemas = schema.load()
    assert set(schemas.resources) == {
        "cloudbackup_project",
        "cloudbackup_cluster",
        "cloudbackup_cluster_backup",
        "cloudbackup_snapshot",
        "cloudbackup_restore_job",
    }
    assert set(schemas.data_sources) == {"cloudbackup_snapshots", "cloudbackup_backup_status"}
    assert [a.name for a in schemas.provider.attributes] == ["url", "public_key", "private_key"]


@pytest.mark.parametrize(
    ("name", "attribute"), all_attributes(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_attribute_has_a_one_sentence_description_ending_in_a_full_stop(name: str, attribute) -> None:
    assert attribute.description and attribute.description.endswith("."), name


def test_attributes_with_defaults_are_optional_and_computed_so_plans_can_fill_them_in() -> None:
    cluster = schema.load().resources["cloudbackup_cluster"]
    assert (cluster.attribute("cluster_type").default, cluster.attribute("disk_size_gb").default) == (
        "REPLICASET",
        10,
    )
    assert all(
        cluster.attribute(n).optional and cluster.attribute(n).computed
        for n in ("cluster_type", "disk_size_gb")
    )
    region = cluster.block("region")
    assert (region.attribute("priority").default, region.attribute("electable_nodes").default) == (7, 3)
    backup = schema.load().resources["cloudbackup_cluster_backup"]
    assert backup.attribute("method").default == "CLOUD_PROVIDER_SNAPSHOTS"


def test_types_flags_and_replacement_follow_the_json_schema() -> None:
    schemas = schema.load()
    cluster = schemas.resources["cloudbackup_cluster"]
    assert cluster.attribute("disk_size_gb").kind.tf_type() == b'"number"'
    assert cluster.attribute("backup_enabled").kind.tf_type() == b'"bool"'
    assert cluster.attribute("name").force_new and not cluster.attribute("instance_size").force_new
    assert cluster.block("region").nesting == "set" and cluster.block("region").min_items == 1
    snapshots = schemas.data_sources["cloudbackup_snapshots"].attribute("snapshots")
    assert json.loads(snapshots.kind.tf_type())[0] == "list"
    assert json.loads(snapshots.kind.tf_type())[1][0] == "object"
    provider = schemas.provider
    assert provider.attribute("private_key").sensitive and provider.attribute("url").env == "CLOUDBACKUP_URL"
    assert schemas.resources["cloudbackup_cluster_backup"].block("timeouts").nesting == "single"


def test_the_protocol_schema_carries_every_attribute() -> None:
    from tf.gen import tfplugin_pb2 as pb

    response = pb.GetProviderSchema.Response.FromString(schema.provider_schema_response())
    block = response.resource_schemas["cloudbackup_cluster"].block
    names = {a.name for a in block.attributes}
    assert {"project_id", "instance_size", "preferred_region"} <= names
    assert block.block_types[0].type_name == "region" and block.block_types[0].min_items == 1
    assert response.provider.block.attributes[2].sensitive


def test_the_checked_in_provider_json_is_what_the_generator_makes() -> None:
    assert json.loads(PROVIDER_JSON.read_text()) == schema.provider_json(), (
        "provider-schema/provider.json is stale: run `python -m provider.docs`"
    )


def test_the_checked_in_docs_are_what_the_generator_makes() -> None:
    for relative, text in docs.pages().items():
        path = docs.DOCS / relative
        assert path.exists() and path.read_text() == text, (
            f"docs/{relative} is stale: run `python -m provider.docs`"
        )


def test_the_schema_kept_on_disk_is_the_generated_response_named_by_its_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tls.CACHE_ENV, str(tmp_path / "cache"))
    data = schema_cache.build()
    assert data == schema.provider_schema_response()
    assert Path(schema_cache.path()).read_bytes() == data
    extra = tmp_path / "generator-part.py"
    extra.write_text("one = 1\n")
    monkeypatch.setattr(schema_cache, "_GENERATOR", (*schema_cache._GENERATOR, str(extra)))
    before = schema_cache.path()
    extra.write_text("one = 2\n")
    assert schema_cache.path() != before
