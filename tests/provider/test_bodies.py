"""Request bodies and read-back states come from each schema's field map, not from names in the resources."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
from tf.types import String
from tf.utils import Diagnostics

from contract import documents
from contract.fields import Field, attribute_fields
from provider import bodies as bodies_module
from provider.bodies import Bodies, bodies
from provider.data_sources.snapshots import item_attributes, listed
from provider.plugin import Plugin
from provider.resource import Resource
from provider.schema import Attribute

PID = "0123456789abcdef01234567"
SID = "89abcdef0123456789abcdef"
# Path parameters, which no body holds.
PATH = {"project_id": PID, "cluster_name": "orders"}


class EchoApi:
    """The API as an echo: each write is answered with what it set, the work already finished."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(body)
        return {
            **copy.deepcopy(body),
            "id": SID,
            "stateName": "IDLE",
            "status": "completed",
            "executed": False,
        }

    def post(self, path: str, body: Any = None, **query: Any) -> dict[str, Any]:
        return self._answer(body)

    def put(self, path: str, body: Any = None, **query: Any) -> dict[str, Any]:
        return self._answer(body)

    def patch(self, path: str, body: Any) -> dict[str, Any]:
        return self._answer(body)


def resource(type_name: str) -> tuple[Resource, EchoApi]:
    plugin = Plugin()
    api = EchoApi()
    plugin.session.client = api  # type: ignore[assignment]
    return plugin.resources[type_name], api


def resource_documents() -> dict[str, dict[str, Any]]:
    return {
        doc["x-terraform"]["typeName"]: doc
        for doc in documents.documents().values()
        if (doc.get("x-terraform") or {}).get("kind") == "resource"
    }


def written(doc: dict[str, Any]) -> dict[str, Field]:
    return {name: f for name, f in attribute_fields(doc).items() if f.settable and f.request}


def sample(field: Field, index: int) -> Any:
    """A value unlike the schema's default, and unlike every other attribute's."""
    if field.type == "integer":
        return 40 + index
    if field.type == "boolean":
        return not field.default
    return f"value-{index}"


def at(body: Any, pointer: str) -> Any:
    for part in pointer.split("/")[1:]:
        body = body[part]
    return body


def renamed(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of a document whose settable API fields have new top-level names, in request and answer."""
    doc = copy.deepcopy(doc)
    tops = {f.request.split("/")[1] for f in written(doc).values() if f.request}
    names = {top: f"renamed{top[0].upper()}{top[1:]}" for top in tops}
    places = [doc, doc["$defs"].get("response") or {}, doc["$defs"].get("patch") or {}]
    for place in places:
        properties = place.get("properties") or {}
        for old, new in names.items():
            if old in properties:
                properties[new] = properties.pop(old)
        if "required" in place:
            place["required"] = [names.get(name, name) for name in place["required"]]
    # Refs to a renamed place (the project's name is `#/properties/name`) follow it.
    text = json.dumps(doc)
    for old, new in names.items():
        text = text.replace(f'"#/properties/{old}"', f'"#/properties/{new}"')
    return json.loads(text), names


def using(monkeypatch: pytest.MonkeyPatch, type_name: str, doc: dict[str, Any]) -> None:
    """The provider reads `doc` as the schema document of `type_name`."""
    original = bodies_module.bodies
    monkeypatch.setattr(
        bodies_module, "bodies", lambda name: Bodies.of(doc) if name == type_name else original(name)
    )


def round_trip(resource: Resource, api: EchoApi, doc: dict[str, Any]) -> None:
    """Every settable attribute is sent where the map puts it, read back from the answer, and changed in
    place by an update that sends it alone."""
    fields = written(doc)
    values = {name: sample(field, i) for i, (name, field) in enumerate(sorted(fields.items()))}
    planned = {**resource.state(**PATH), **values}
    created = resource.create(Diagnostics(), planned)
    assert created is not None
    for name, field in fields.items():
        assert at(api.sent[-1], field.request or "") == values[name], f"{resource.type_name}.{name} not sent"
        if field.response:
            assert created[name] == values[name], f"{resource.type_name}.{name} not read back"

    for name, field in fields.items():
        if field.force_new:
            continue
        value = values[name]
        changed = {**planned, name: (not value) if isinstance(value, bool) else value * 2}
        updated = resource.update(Diagnostics(), planned, changed)
        assert updated is not None and updated[name] == changed[name]
        top = (field.request or "").split("/")[1]
        assert top in api.sent[-1]
        assert at(api.sent[-1], field.request or "") == changed[name]


@pytest.mark.parametrize("type_name", sorted(resource_documents()))
def test_every_settable_attribute_is_sent_and_read_back_where_the_schema_says(type_name: str) -> None:
    doc = resource_documents()[type_name]
    assert written(doc), f"{type_name} has no attribute the field map places in its body"
    round_trip(*resource(type_name), doc)


@pytest.mark.parametrize("type_name", sorted(resource_documents()))
def test_an_api_field_renamed_in_the_schema_alone_is_sent_and_read_under_its_new_name(
    type_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A resource that spelled an API field itself would still send and read the old name.
    doc, names = renamed(resource_documents()[type_name])
    using(monkeypatch, type_name, doc)
    cloudbackup, api = resource(type_name)
    round_trip(cloudbackup, api, doc)
    assert not set(names) & {key for body in api.sent for key in body}


def test_a_cluster_field_added_to_the_schema_alone_is_sent_changed_and_read_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = copy.deepcopy(resource_documents()["cloudbackup_cluster"])
    doc["$defs"]["comment"] = {"type": "string", "maxLength": 256, "description": "A note for people."}
    for place in (doc, doc["$defs"]["patch"], doc["$defs"]["response"]):
        place["properties"]["comment"] = {"$ref": "#/$defs/comment"}
    doc["x-terraform"]["attributes"]["comment"] = {"$ref": "#/$defs/comment", "optional": True}
    using(monkeypatch, "cloudbackup_cluster", doc)
    cluster, api = resource("cloudbackup_cluster")
    # The Terraform schema is provider/schema.py's work from the same document: here, one more attribute.
    cluster.schema = dataclasses.replace(
        cluster.schema,
        attributes=(*cluster.schema.attributes, Attribute("comment", String(), "", optional=True)),
    )
    round_trip(cluster, api, doc)
    prior = {**cluster.state(**PATH), "name": "orders", "comment": "old", "region": []}
    # A plan that changes it alone is a change in place; left out of the configuration, it is cleared.
    assert cluster.changes_in_place(prior, {**prior, "comment": "new"})
    cluster.update(Diagnostics(), prior, {**prior, "comment": None})
    assert api.sent[-1] == {"comment": None}


def test_an_answer_without_a_field_reads_as_the_schema_default() -> None:
    cluster = bodies_module.from_body("cloudbackup_cluster", {"name": "orders"})
    assert (cluster["deletion_protection"], cluster["disk_size_gb"]) == (False, 10)
    assert cluster["state"] is None
    restore = bodies_module.from_body(
        "cloudbackup_restore_job", {"id": SID, "targetClusterName": "reports", "status": "queued"}
    )
    assert (restore["id"], restore["target_cluster_name"], restore["status"]) == (SID, "reports", "queued")


def test_a_listed_snapshot_reads_each_of_its_attributes_where_the_snapshot_resource_does() -> None:
    fields = bodies("cloudbackup_snapshot").fields
    answer: dict[str, Any] = {}
    for index, name in enumerate(item_attributes()):
        pointer = fields[name].response
        assert pointer, f"{name}: the snapshot resource reads it from no answer field"
        answer[pointer.lstrip("/")] = f"value {index}"
    assert listed(answer) == {name: f"value {i}" for i, name in enumerate(item_attributes())}
