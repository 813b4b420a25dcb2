"""contract.fields: the attribute an API field is, read from the schema documents, not from tables."""

from __future__ import annotations

import copy

from contract import documents, rules
from contract.fields import field_map, fields_of
from provider.diagnostics import field_path


def test_every_field_a_cluster_rule_refuses_lands_on_the_attribute_a_user_changes() -> None:
    fields = field_map("cluster")
    assert field_path(rules.INSTANCE_SIZE, fields) == ["instance_size"]
    assert field_path(rules.PROVIDER_NAME, fields) == ["provider_name"]
    assert field_path(rules.CLUSTER_TYPE, fields) == ["cluster_type"]
    assert field_path(rules.DISK_SIZE, fields) == ["disk_size_gb"]
    # A region's fields (and the regions as a whole) are the region block.
    assert field_path(rules.REGIONS, fields) == ["region"]
    assert field_path("/replicationSpecs/0/regionsConfig/eastus9/priority", fields) == ["region"]
    assert field_path("/name", fields) == ["name"]


def test_a_backup_method_and_a_snapshot_description_are_their_attributes() -> None:
    assert field_path(rules.METHOD, field_map("cluster_backup")) == ["method"]
    assert field_path("/description", field_map("snapshot")) == ["description"]


def test_a_schema_shared_by_two_attributes_names_neither() -> None:
    # Were cluster_name and target_cluster_name both plain cluster names, the body's targetClusterName
    # would not be told apart by the schema alone, so it maps to no attribute rather than to a wrong one.
    doc = copy.deepcopy(documents.document("restore_job"))
    common_name = "urn:cloudbackup:common#/$defs/clusterName"
    doc["properties"]["targetClusterName"] = {"$ref": common_name}
    doc["x-terraform"]["attributes"]["target_cluster_name"]["$ref"] = common_name
    restore = fields_of(doc)
    assert field_path("/targetClusterName", restore) is None
    assert field_path("/snapshotId", restore) == ["snapshot_id"]


def test_a_restore_target_is_its_own_schema_so_its_fields_land_on_the_target_attributes() -> None:
    restore = field_map("restore_job")
    assert field_path("/targetClusterName", restore) == ["target_cluster_name"]
    assert field_path("/targetGroupId", restore) == ["target_project_id"]
    assert field_path("/snapshotId", restore) == ["snapshot_id"]


def test_a_field_added_to_the_schema_alone_is_mapped() -> None:
    doc = copy.deepcopy(documents.document("cluster"))
    doc["$defs"]["label"] = {"type": "string", "maxLength": 64, "description": "A note for people."}
    doc["properties"]["label"] = {"$ref": "#/$defs/label"}
    doc["x-terraform"]["attributes"]["label"] = {"$ref": "#/$defs/label", "optional": True}
    assert field_path("/label", fields_of(doc)) == ["label"]
    assert field_path("/label", field_map("cluster")) is None
