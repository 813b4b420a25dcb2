"""Request validation against provider-schema/ and the OpenAPI components generated from it."""

from __future__ import annotations

from typing import Any

import pytest
from shimkit import cluster_body

from shim import schema_files, schemas
from shim.errors import ApiError


def refused(body: dict[str, Any], ref: str = schemas.CLUSTER) -> ApiError:
    with pytest.raises(ApiError) as caught:
        schemas.validate(body, ref)
    assert caught.value.code == "INVALID_ATTRIBUTE"
    return caught.value


def test_every_schema_document_is_in_the_registry() -> None:
    for uri in schema_files.documents():
        assert schemas.registry().contents(uri) == schema_files.documents()[uri]


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
    assert "Allowed fields: clusterType, deletionProtection, diskSizeGB, name" in error.detail


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
