"""Terraform 1.6+ sends unknowns with refinements (msgpack extension 12): they are unknowns, never errors."""

from __future__ import annotations

import msgpack
from tf.gen import tfplugin_pb2 as pb
from tf.types import Unknown

from provider.runtime.values import decode, refinements
from provider.service import ProviderService

# What Terraform 1.11 sends for `description = "before ${cloudbackup_cluster.c.id}"`:
# not null, with the prefix "before ".
REFINED = msgpack.ExtType(12, msgpack.packb({1: False, 2: "before "}))


def _dynamic(value: dict) -> pb.DynamicValue:
    return pb.DynamicValue(msgpack=msgpack.packb(value))


def test_a_refined_unknown_decodes_as_unknown_and_its_refinements_can_be_read() -> None:
    decoded = decode(_dynamic({"description": REFINED, "cluster_name": "c1"}))
    assert decoded["description"] is Unknown
    assert decoded["cluster_name"] == "c1"
    assert refinements(REFINED.data) == {"is_null": False, "string_prefix": "before "}


def test_refinements_this_version_cannot_read_are_not_an_error() -> None:
    assert refinements(b"\xc1") == {}
    assert refinements(msgpack.packb({99: True})) == {}


def test_a_resource_config_with_a_refined_unknown_validates_without_error() -> None:
    handlers = ProviderService().handlers()
    request = pb.ValidateResourceConfig.Request(
        type_name="cloudbackup_snapshot",
        config=_dynamic(
            {
                "project_id": "0123456789abcdef01234567",
                "cluster_name": "c1",
                "description": REFINED,
                "timeouts": None,
            }
        ),
    )
    answer = pb.ValidateResourceConfig.Response.FromString(
        handlers["/tfplugin6.Provider/ValidateResourceConfig"](request.SerializeToString())
    )
    assert [d.summary for d in answer.diagnostics] == []
