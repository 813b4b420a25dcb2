"""Every tfplugin6 method, sent to a real plugin process over TLS and HTTP/2: served, or UNIMPLEMENTED."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from pluginkit import PluginProcess
from tf.gen import tfplugin_pb2 as pb

from provider import schema

SERVICE = pb.DESCRIPTOR.services_by_name["Provider"]
OK = 0
UNIMPLEMENTED = 12
NOT_SERVED = {"MoveResourceState", "CallFunction"}
PROJECT = "cloudbackup_project"
SNAPSHOTS = "cloudbackup_snapshots"


def dynamic(value: Any) -> pb.DynamicValue:
    return pb.DynamicValue(msgpack=msgpack.packb(value))


def nulls(names: tuple[str, ...], **values: Any) -> dict[str, Any]:
    return {name: values.get(name) for name in names}


def requests() -> dict[str, Any]:
    """A well-formed request for each method (the provider is never configured: its calls fail softly)."""
    schemas = schema.load()
    provider = nulls(schemas.provider.names)
    project = nulls(schemas.resources[PROJECT].names, name="proto")
    existing = nulls(schemas.resources[PROJECT].names, name="proto", id="0" * 24)
    return {
        "GetMetadata": pb.GetMetadata.Request(),
        "GetProviderSchema": pb.GetProviderSchema.Request(),
        "ValidateProviderConfig": pb.ValidateProviderConfig.Request(config=dynamic(provider)),
        "ValidateResourceConfig": pb.ValidateResourceConfig.Request(
            type_name=PROJECT, config=dynamic(project)
        ),
        "ValidateDataResourceConfig": pb.ValidateDataResourceConfig.Request(
            type_name=SNAPSHOTS, config=dynamic(nulls(schemas.data_sources[SNAPSHOTS].names))
        ),
        "UpgradeResourceState": pb.UpgradeResourceState.Request(
            type_name=PROJECT, raw_state=pb.RawState(json=json.dumps(existing).encode())
        ),
        "ConfigureProvider": pb.ConfigureProvider.Request(config=dynamic(provider)),
        "ReadResource": pb.ReadResource.Request(type_name=PROJECT, current_state=dynamic(existing)),
        "PlanResourceChange": pb.PlanResourceChange.Request(
            type_name=PROJECT,
            prior_state=dynamic(None),
            proposed_new_state=dynamic(project),
            config=dynamic(project),
        ),
        "ApplyResourceChange": pb.ApplyResourceChange.Request(
            type_name=PROJECT,
            prior_state=dynamic(existing),
            planned_state=dynamic(None),
            config=dynamic(None),
        ),
        "ImportResourceState": pb.ImportResourceState.Request(type_name=PROJECT, id="0" * 24),
        "MoveResourceState": pb.MoveResourceState.Request(),
        "ReadDataSource": pb.ReadDataSource.Request(
            type_name=SNAPSHOTS, config=dynamic(nulls(schemas.data_sources[SNAPSHOTS].names))
        ),
        "GetFunctions": pb.GetFunctions.Request(),
        "CallFunction": pb.CallFunction.Request(name="nothing"),
        "StopProvider": pb.StopProvider.Request(),
    }


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[PluginProcess]:
    process = PluginProcess(tmp_path)
    process.connect()
    yield process
    process.close()


def test_every_method_of_the_provider_service_is_served_or_answered_unimplemented(
    plugin: PluginProcess,
) -> None:
    bodies = requests()
    assert set(bodies) == {method.name for method in SERVICE.methods}, (
        "a tfplugin6 method has no request here"
    )
    statuses = {}
    for method in SERVICE.methods:
        answer = plugin.call(f"/tfplugin6.Provider/{method.name}", bodies[method.name].SerializeToString())
        statuses[method.name] = answer.status
        if answer.status == OK:
            response_type = pb.DESCRIPTOR.message_types_by_name[method.output_type.containing_type.name]
            decoded = getattr(pb, response_type.name).Response.FromString(answer.body)
            assert decoded.IsInitialized()
    assert statuses == {m.name: UNIMPLEMENTED if m.name in NOT_SERVED else OK for m in SERVICE.methods}


@pytest.mark.parametrize("path", ["/tfplugin6.Provider/NoSuchMethod", "/tfplugin5.Provider/GetSchema", "/x"])
def test_an_unknown_method_is_answered_unimplemented_and_the_connection_goes_on(
    plugin: PluginProcess, path: str
) -> None:
    answer = plugin.call(path)
    assert answer.status == UNIMPLEMENTED and path in answer.message
    assert plugin.call("/tfplugin6.Provider/StopProvider").status == OK


def test_a_cold_start_offers_the_capabilities_current_terraform_asks_about(plugin: PluginProcess) -> None:
    # The first call of a start is answered from the cached schema bytes: they must carry the same.
    first = pb.GetProviderSchema.Response.FromString(
        plugin.call("/tfplugin6.Provider/GetProviderSchema").body
    )
    metadata = pb.GetMetadata.Response.FromString(plugin.call("/tfplugin6.Provider/GetMetadata").body)
    for capabilities in (first.server_capabilities, metadata.server_capabilities):
        assert capabilities.plan_destroy and capabilities.get_provider_schema_optional
    schemas = schema.load()
    assert sorted(r.type_name for r in metadata.resources) == sorted(schemas.resources)
    assert [d.type_name for d in metadata.data_sources] == list(schemas.data_sources)
    assert sorted(first.resource_schemas) == sorted(schemas.resources)


def test_a_destroy_is_planned_as_a_null_state_without_error(plugin: PluginProcess) -> None:
    existing = nulls(schema.load().resources[PROJECT].names, name="proto", id="0" * 24)
    request = pb.PlanResourceChange.Request(
        type_name=PROJECT,
        prior_state=dynamic(existing),
        proposed_new_state=dynamic(None),
        config=dynamic(None),
    )
    answer = plugin.call("/tfplugin6.Provider/PlanResourceChange", request.SerializeToString())
    planned = pb.PlanResourceChange.Response.FromString(answer.body)
    assert answer.status == OK and not planned.diagnostics
    assert msgpack.unpackb(planned.planned_state.msgpack) is None
