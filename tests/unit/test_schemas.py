"""Request validation against provider-schema/ and the OpenAPI components generated from it."""

from __future__ import annotations

from typing import Any

import pytest
from shimkit import cluster_body

from contract import documents
from shim import schema_files, schemas
from shim.errors import ApiError


def refused(body: dict[str, Any], ref: str = schemas.CLUSTER) -> ApiError:
    with pytest.raises(ApiError) as caught:
        schemas.validate(body, ref)
    assert caught.value.code == "INVALID_ATTRIBUTE"
    return caught.value


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [
            ref for value in node.values() for ref in refs(value)
        ]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def test_every_reference_in_every_schema_document_resolves_to_a_schema() -> None:
    resolver = schemas.registry().resolver()
    found = 0
    for uri, document in schema_files.documents().items():
        for ref in refs(document):
            target = resolver.lookup(ref if ref.startswith("urn:") else uri + ref).contents
            assert isinstance(target, dict) and target, f"{uri}: {ref}"
            found += 1
    assert found > 10


@pytest.mark.parametrize(
    ("ref", "body", "field"),
    [
        (schemas.CLUSTER, {**cluster_body(), "name": "-starts-with-a-hyphen"}, "/name"),
        (schemas.RESTORE_JOB, {"snapshotId": "xyz", "targetClusterName": "rs1"}, "/snapshotId"),
        (schemas.RESTORE_JOB, {"snapshotId": "0" * 24, "targetClusterName": "rs 1"}, "/targetClusterName"),
    ],
)
def test_rules_defined_in_the_common_document_are_enforced_where_other_documents_refer_to_them(
    ref: str, body: dict[str, Any], field: str
) -> None:
    assert refused(body, ref).parameters[0] == field


@pytest.mark.parametrize(
    ("ref", "body", "field"),
    [
        (schemas.CLUSTER, {**cluster_body(), "name": "abc\n"}, "/name"),
        (schemas.PROJECT, {"name": "proj\n"}, "/name"),
        (schemas.RESTORE_JOB, {"snapshotId": "0" * 24 + "\n", "targetClusterName": "rs1"}, "/snapshotId"),
        (
            schemas.CLUSTER,
            {**cluster_body(), "replicationSpecs": [{"regionsConfig": {"eastus2\n": {}}}]},
            "/replicationSpecs/0/regionsConfig/eastus2\n",
        ),
    ],
)
def test_a_pattern_ending_in_dollar_refuses_a_value_with_a_trailing_newline_as_json_schema_means(
    ref: str, body: dict[str, Any], field: str
) -> None:
    assert refused(body, ref).parameters[0] == field


def test_ecma_patterns_keep_dollar_signs_that_are_escaped_or_inside_a_class() -> None:
    assert schema_files.ecma_regex(r"^a\$$").search("a$")
    assert not schema_files.ecma_regex(r"^a\$$").search("a$\n")
    assert schema_files.ecma_regex(r"^[$a]+$").search("$a$")


def test_a_valid_cluster_passes_and_so_does_a_minimal_one() -> None:
    schemas.validate(cluster_body(), schemas.CLUSTER)
    schemas.validate(
        {
            "name": "a",
            "providerSettings": {"providerName": "AZURE", "instanceSizeName": "M10"},
            "replicationSpecs": [{"regionsConfig": {"eastus2": {}}}],
        },
        schemas.CLUSTER,
    )


def test_a_missing_field_is_named_by_its_pointer() -> None:
    error = refused({"name": "a", "replicationSpecs": [{"regionsConfig": {"eastus2": {}}}]})
    assert error.parameters == ["/providerSettings"]
    assert error.detail == "Missing required field /providerSettings."


def test_an_unknown_field_is_named_with_the_allowed_ones() -> None:
    error = refused({**cluster_body(), "tags": {}})
    assert error.parameters[0] == "/tags"
    # Every field the cluster document accepts, in order, whatever fields it gains.
    allowed = ", ".join(sorted(documents.document("cluster")["properties"]))
    assert f"Allowed fields: {allowed}." in error.detail
    assert "Allowed fields: clusterType, deletionProtection, diskSizeGB, name, " in error.detail


def test_a_bad_region_name_is_named_by_its_key() -> None:
    error = refused({**cluster_body(), "replicationSpecs": [{"regionsConfig": {"east us": {}}}]})
    assert error.parameters[0] == "/replicationSpecs/0/regionsConfig/east us"


def test_type_and_enum_errors_say_what_was_expected() -> None:
    error = refused({**cluster_body(), "diskSizeGB": True})
    assert "expected integer, got boolean" in error.detail
    error = refused({**cluster_body(), "clusterType": "STANDALONE"})
    assert '"STANDALONE" is not one of "REPLICASET", "SHARDED", "GEOSHARDED"' in error.detail


def test_every_field_at_fault_is_listed_in_parameters() -> None:
    body = {**cluster_body(name="-x"), "diskSizeGB": 0, "clusterType": "X"}
    assert set(refused(body).parameters) == {"/name", "/diskSizeGB", "/clusterType"}


def test_patch_validates_against_the_patch_definition() -> None:
    schemas.validate({"diskSizeGB": 20}, schemas.CLUSTER_PATCH)
    assert refused({"name": "x"}, schemas.CLUSTER_PATCH).parameters == ["/name"]


def test_bodies_are_read_as_json_objects_only() -> None:
    assert schemas.parse_body(b"", None) == {}
    assert schemas.parse_body(b'{"a": 1}', "application/json; charset=utf-8") == {"a": 1}
    for raw, content_type in ((b"{", "application/json"), (b"[]", "application/json"), (b"{}", "text/plain")):
        with pytest.raises(ApiError) as caught:
            schemas.parse_body(raw, content_type)
        assert caught.value.code == "MALFORMED_REQUEST"


def test_keys_given_twice_are_found_with_where_they_are() -> None:
    body = schemas.parse_body(b'{"a": {"x": 1, "x": 2}, "b": [{"y": 1, "y": 1}]}', "application/json")
    assert schemas.duplicate_keys(body) == [("/a", "x"), ("/b/0", "y")]


def test_components_inline_references_that_do_not_point_at_a_definition() -> None:
    components = schemas.components()
    project = components["Project"]
    assert (
        project["properties"]["name"]["pattern"]
        == schema_files.document("project")["properties"]["name"]["pattern"]
    )
    assert project["properties"]["id"] == {"$ref": "#/components/schemas/GroupId"}
    assert components["ClusterRequest"]["properties"]["name"] == {"$ref": "#/components/schemas/ClusterName"}
