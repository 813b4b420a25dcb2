"""The OpenAPI 3.1 document: generated from provider-schema/ and the routes, every reference resolving."""

from __future__ import annotations

from typing import Any

from flask import Flask

from shim import schema_files


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/api/atlas/v1.0/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_the_document_is_openapi_3_1_with_digest_security(app: Flask) -> None:
    doc = document(app)
    assert doc["openapi"] == "3.1.0"
    digest = doc["components"]["securitySchemes"]["digest"]
    assert (digest["type"], digest["scheme"]) == ("http", "digest")
    # The description tells a reader which half of the key pair goes where.
    assert "public key" in digest["description"] and "private key" in digest["description"]
    # Every API operation needs the key; the probes of a load balancer (/healthz, /readyz) do not.
    operations = [
        (path, method, operation)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]
    for path, method, operation in operations:
        wanted = [] if path in ("/healthz", "/readyz") else [{"digest": []}]
        assert operation.get("security", doc.get("security")) == wanted, (path, method)


def test_every_route_of_the_contract_is_documented(app: Flask) -> None:
    paths = document(app)["paths"]
    base = "/api/atlas/v1.0"
    expected = {
        "/groups": {"get", "post"},
        "/groups/{group_id}": {"get", "delete"},
        "/groups/{group_id}/clusters": {"get", "post"},
        "/groups/{group_id}/clusters/{cluster_name}": {"get", "patch", "delete"},
        "/groups/{group_id}/clusters/{cluster_name}/backup": {"get", "put", "delete"},
        "/groups/{group_id}/clusters/{cluster_name}/backup/snapshots": {"get", "post"},
        "/groups/{group_id}/clusters/{cluster_name}/backup/snapshots/{snapshot_id}": {"get", "delete"},
        "/groups/{group_id}/clusters/{cluster_name}/backup/restoreJobs": {"get", "post"},
        "/groups/{group_id}/clusters/{cluster_name}/backup/restoreJobs/{job_id}": {"get"},
        "/admin/clock": {"get", "post"},
    }
    for path, methods in expected.items():
        assert set(paths[base + path]) == methods, path
    assert "/healthz" in paths


def test_request_bodies_come_from_the_provider_schema_documents(app: Flask) -> None:
    doc = document(app)
    schemas = doc["components"]["schemas"]
    cluster = schema_files.document("cluster")
    assert schemas["ClusterRequest"]["required"] == cluster["required"]
    assert set(schemas["ClusterRequest"]["properties"]) == set(cluster["properties"])
    assert schemas["ClusterPriority"]["description"] == cluster["$defs"]["priority"]["description"]
    post = doc["paths"]["/api/atlas/v1.0/groups/{group_id}/clusters"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ClusterRequest"
    }
    assert "201" in post["responses"] and "409" in post["responses"]
    assert not any("x-terraform" in str(key) for key in schemas)
    assert "x-terraform" not in str(schemas)


def test_every_reference_in_the_document_resolves(app: Flask) -> None:
    doc = document(app)
    for ref in set(refs(doc)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"], ref


def test_list_operations_answer_results_total_count_and_links(app: Flask) -> None:
    doc = document(app)
    listing = doc["paths"]["/api/atlas/v1.0/groups/{group_id}/clusters/{cluster_name}/backup/snapshots"][
        "get"
    ]
    schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"results", "totalCount", "links"}
    assert schema["properties"]["results"]["items"] == {"$ref": "#/components/schemas/Snapshot"}
    assert {p["name"] for p in listing["parameters"]} >= {"pageNum", "itemsPerPage"}
