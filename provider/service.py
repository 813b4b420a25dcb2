"""The tfplugin6 Provider service on the tf package's protocol stubs: every failure becomes a diagnostic."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack
from tf.gen import tfplugin_pb2 as pb
from tf.types import Unknown
from tf.utils import Diagnostics, _to_attribute_path, to_dynamic_value

from provider import schema as schema_module
from provider.diagnostics import add_exception
from provider.plugin import Plugin
from provider.resource import ImportIdError, Resource
from provider.runtime.values import decode
from provider.schema import TypeSchema
from provider.session import NotConfigured

SERVICE = "/tfplugin6.Provider/"


def _decode(value: pb.DynamicValue) -> Any:
    return decode(value)


def _encode(value: Any) -> pb.DynamicValue:
    if value is None:
        return pb.DynamicValue(msgpack=msgpack.packb(None))
    return to_dynamic_value(value)


def conform(schema: TypeSchema, value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A state with exactly the schema's attributes and blocks: missing ones null, unknown names dropped."""
    if value is None:
        return None
    out = {}
    for name in schema.names:
        item = value.get(name)
        out[name] = None if item is Unknown else item
    return out


def _not_configured(diags: Diagnostics) -> None:
    diags.add_error(
        "The cloudbackup provider is not configured",
        "ConfigureProvider did not succeed, so the provider cannot call the API; fix the error reported for "
        "provider block above (url, public_key, private_key).",
    )


class ProviderService:
    """One handler per tfplugin6 method: request bytes in, response bytes out."""

    def __init__(self, plugin: Plugin | None = None) -> None:
        self.plugin = plugin or Plugin()

    def handlers(self) -> dict[str, Callable[[bytes], bytes]]:
        methods: dict[str, tuple[Any, Callable[[Any], Any]]] = {
            "GetProviderSchema": (pb.GetProviderSchema.Request, self.get_provider_schema),
            "GetMetadata": (pb.GetMetadata.Request, self.get_metadata),
            "ValidateProviderConfig": (pb.ValidateProviderConfig.Request, self.validate_provider_config),
            "ValidateResourceConfig": (pb.ValidateResourceConfig.Request, self.validate_resource_config),
            "ValidateDataResourceConfig": (pb.ValidateDataResourceConfig.Request, self.validate_data_config),
            "UpgradeResourceState": (pb.UpgradeResourceState.Request, self.upgrade_resource_state),
            "ConfigureProvider": (pb.ConfigureProvider.Request, self.configure_provider),
            "ReadResource": (pb.ReadResource.Request, self.read_resource),
            "PlanResourceChange": (pb.PlanResourceChange.Request, self.plan_resource_change),
            "ApplyResourceChange": (pb.ApplyResourceChange.Request, self.apply_resource_change),
            "ImportResourceState": (pb.ImportResourceState.Request, self.import_resource_state),
            "ReadDataSource": (pb.ReadDataSource.Request, self.read_data_source),
            "GetFunctions": (pb.GetFunctions.Request, lambda _: pb.GetFunctions.Response()),
            "StopProvider": (pb.StopProvider.Request, lambda _: pb.StopProvider.Response()),
        }
        table: dict[str, Callable[[bytes], bytes]] = {
            SERVICE + name: _unary(request_type, method) for name, (request_type, method) in methods.items()
        }
        table[SERVICE + "GetProviderSchema"] = lambda _: schema_module.provider_schema_response()
        table["/plugin.GRPCController/Shutdown"] = lambda _: b""
        return table

    # schema

    def get_provider_schema(self, request: Any) -> Any:
        return pb.GetProviderSchema.Response.FromString(schema_module.provider_schema_response())

    def get_metadata(self, request: Any) -> Any:
        schemas = schema_module.load()
        return pb.GetMetadata.Response(
            server_capabilities=schema_module.server_capabilities(),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=n) for n in schemas.resources],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=n) for n in schemas.data_sources],
        )

    # validation

    def validate_provider_config(self, request: Any) -> Any:
        diags = Diagnostics()
        _guard(
            diags,
            "Validating the provider configuration",
            lambda: self.plugin.validate(diags, _decode(request.config)),
        )
        return pb.ValidateProviderConfig.Response(diagnostics=diags.to_pb())

    def validate_resource_config(self, request: Any) -> Any:
        diags = Diagnostics()
        resource = self.plugin.resources[request.type_name]
        _guard(
            diags,
            f"Validating {request.type_name}",
            lambda: resource.validate(diags, _decode(request.config)),
        )
        return pb.ValidateResourceConfig.Response(diagnostics=diags.to_pb())

    def validate_data_config(self, request: Any) -> Any:
        diags = Diagnostics()
        source = self.plugin.data_sources[request.type_name]
        _guard(
            diags, f"Validating {request.type_name}", lambda: source.validate(diags, _decode(request.config))
        )
        return pb.ValidateDataResourceConfig.Response(diagnostics=diags.to_pb())

    def upgrade_resource_state(self, request: Any) -> Any:
        diags = Diagnostics()
        resource = self.plugin.resources[request.type_name]
        raw = request.raw_state.json
        if not raw:
            diags.add_error(
                "Cannot read this resource's state",
                f"The state of {request.type_name} is in the flatmap format of Terraform 0.11; remove it "
                f"with `terraform state rm` and import it again.",
            )
            return pb.UpgradeResourceState.Response(diagnostics=diags.to_pb())
        state = conform(resource.schema, json.loads(raw))
        return pb.UpgradeResourceState.Response(upgraded_state=_encode(state), diagnostics=diags.to_pb())

    # configuration

    def configure_provider(self, request: Any) -> Any:
        diags = Diagnostics()
        self.plugin.session.terraform_version = request.terraform_version
        _guard(
            diags, "Configuring the provider", lambda: self.plugin.configure(diags, _decode(request.config))
        )
        return pb.ConfigureProvider.Response(diagnostics=diags.to_pb())

    # resources

    def read_resource(self, request: Any) -> Any:
        diags = Diagnostics()
        resource = self.plugin.resources[request.type_name]
        current = _decode(request.current_state)
        new_state = _guard(
            diags,
            f"Reading {request.type_name}",
            lambda: resource.read(diags, current),
            resource,
            default=current,
        )
        if new_state is not None:
            new_state = conform(resource.schema, new_state)
            # Settings only the configuration holds (timeouts) are kept from the state Terraform sent.
            for block in resource.schema.blocks:
                new_state[block.name] = current.get(block.name) if current else None
        return pb.ReadResource.Response(
            new_state=_encode(new_state), diagnostics=diags.to_pb(), private=request.private
        )

    def plan_resource_change(self, request: Any) -> Any:
        diags = Diagnostics()
        resource = self.plugin.resources[request.type_name]
        prior = _decode(request.prior_state)
        config = _decode(request.config)
        proposed = _decode(request.proposed_new_state)
        if proposed is None:
            # A destroy (Terraform 1.3+ asks, since we offer plan_destroy): the planned state is null, and
            # the resource may warn of what it deletes or refuse (deletion protection).
            if prior is not None:
                _guard(
                    diags,
                    f"Planning the destroy of {request.type_name}",
                    lambda: resource.plan_destroy(diags, prior),
                    resource,
                )
            return pb.PlanResourceChange.Response(planned_state=_encode(None), diagnostics=diags.to_pb())
        result = _guard(
            diags,
            f"Planning {request.type_name}",
            lambda: resource.plan(diags, prior, config or {}),
            resource,
        )
        if result is None:
            return pb.PlanResourceChange.Response(
                planned_state=request.proposed_new_state, diagnostics=diags.to_pb()
            )
        planned, replace = result
        return pb.PlanResourceChange.Response(
            planned_state=_encode(planned),
            requires_replace=[_to_attribute_path(path) for path in replace],
            planned_private=request.prior_private,
            diagnostics=diags.to_pb(),
        )

    def apply_resource_change(self, request: Any) -> Any:
        diags = Diagnostics()
        resource = self.plugin.resources[request.type_name]
        prior = _decode(request.prior_state)
        planned = _decode(request.planned_state)
        if planned is None:
            _guard(diags, f"Destroying {request.type_name}", lambda: resource.delete(diags, prior), resource)
            # A failed destroy keeps the resource in the state, so that it can be destroyed again.
            new_state = prior if diags.has_errors() else None
        elif prior is None:
            new_state = _guard(
                diags, f"Creating {request.type_name}", lambda: resource.create(diags, planned), resource
            )
        else:
            new_state = _guard(
                diags,
                f"Updating {request.type_name}",
                lambda: resource.update(diags, prior, planned),
                resource,
                default=prior,
            )
        if new_state is not None:
            new_state = conform(resource.schema, new_state)
            if planned is not None:
                for block in resource.schema.blocks:
                    new_state[block.name] = planned.get(block.name)
        return pb.ApplyResourceChange.Response(new_state=_encode(new_state), diagnostics=diags.to_pb())

    def import_resource_state(self, request: Any) -> Any:
        diags = Diagnostics()
        resource = self.plugin.resources[request.type_name]

        def run() -> Any:
            try:
                return resource.import_(diags, request.id)
            except ImportIdError as exc:
                diags.add_error(f"Invalid import ID for {request.type_name}", str(exc))
                return None

        state = _guard(diags, f"Importing {request.type_name} {request.id}", run, resource)
        if state is None and not diags.has_errors():
            diags.add_error(
                f"Cannot import {request.type_name} {request.id}: it does not exist",
                f"Nothing answers to {request.id!r}. Check the IDs (form: {resource.schema.import_id}); "
                f"project IDs are 24 hexadecimal digits, as `cloudbackup_project.<name>.id` shows.",
            )
        imported = (
            [
                pb.ImportResourceState.ImportedResource(
                    type_name=request.type_name, state=_encode(conform(resource.schema, state))
                )
            ]
            if state is not None
            else []
        )
        return pb.ImportResourceState.Response(imported_resources=imported, diagnostics=diags.to_pb())

    def read_data_source(self, request: Any) -> Any:
        diags = Diagnostics()
        source = self.plugin.data_sources[request.type_name]
        config = _decode(request.config)
        state = _guard(diags, f"Reading {request.type_name}", lambda: source.read(diags, config), source)
        return pb.ReadDataSource.Response(
            state=_encode(state if state is not None else config), diagnostics=diags.to_pb()
        )


def _guard(
    diags: Diagnostics,
    action: str,
    call: Callable[[], Any],
    resource: Resource | Any = None,
    default: Any = None,
) -> Any:
    """Run one step; an exception becomes a diagnostic (API errors with the fix the shim suggests)."""
    try:
        return call()
    except NotConfigured:
        _not_configured(diags)
    except Exception as exc:
        add_exception(diags, exc, action, getattr(resource, "fields", None))
    return default


def _unary(request_type: Any, method: Callable[[Any], Any]) -> Callable[[bytes], bytes]:
    def handle(body: bytes) -> bytes:
        return method(request_type.FromString(body)).SerializeToString()

    return handle
