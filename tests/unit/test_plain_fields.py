"""The shim's plain cluster fields: scalar body fields kept in the column of their name, from the schema."""

from __future__ import annotations

import copy

from contract import documents
from shim import plain_fields
from shim.store.models import Cluster


def test_a_cluster_shows_and_takes_its_scalar_fields_by_their_column_names() -> None:
    row = Cluster(name="orders", cluster_type="REPLICASET", disk_size_gb=10, deletion_protection=False)
    shown = plain_fields.render(row)
    expected = {"name": "orders", "clusterType": "REPLICASET", "diskSizeGB": 10, "deletionProtection": False}
    assert {field: shown.get(field) for field in expected} == expected
    plain_fields.apply(row, {"diskSizeGB": 20, "providerSettings": {"providerName": "AZURE"}})
    # What the body leaves out keeps its value; what is not a plain field is the service's to write.
    assert (row.disk_size_gb, row.cluster_type, row.provider_name) == (20, "REPLICASET", None)


def test_a_string_field_added_to_the_schema_is_plain_once_it_has_a_column() -> None:
    doc = copy.deepcopy(documents.document("cluster"))
    doc["properties"]["ownerNote"] = {"type": ["string", "null"], "maxLength": 256}
    columns = set(Cluster.__table__.columns.keys())
    assert ("ownerNote", "owner_note") in plain_fields.fields_of(doc, columns | {"owner_note"})
    assert ("ownerNote", "owner_note") not in plain_fields.fields_of(doc, columns)
    # Objects and arrays have shapes of their own, and providerBackupEnabled has no column.
    fields = {field for field, _ in plain_fields.fields_of(doc, columns)}
    assert not fields & {"providerSettings", "replicationSpecs", "providerBackupEnabled"}
    assert plain_fields.column_name("diskSizeGB") == "disk_size_gb"
