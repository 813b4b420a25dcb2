"""Values as Terraform sends them: msgpack or JSON, with unknowns plain (extension 0) or refined (12)."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from tf.gen import tfplugin_pb2 as pb
from tf.types import Unknown

# cty's msgpack encoding: extension 0 is a plain unknown; extension 12 (Terraform 1.6 and later) is an
# unknown that carries refinements, a msgpack map keyed by small integers.
PLAIN_UNKNOWN = 0
REFINED_UNKNOWN = 12
REFINEMENT_NAMES = {
    1: "is_null",
    2: "string_prefix",
    3: "number_lower_bound",
    4: "number_upper_bound",
    5: "length_lower_bound",
    6: "length_upper_bound",
}


def refinements(data: bytes) -> dict[str, Any]:
    """What a refined unknown promises (not null, a string prefix, bounds); {} for what cannot be read.

    Refinements only narrow an unknown: reading them is optional, so a payload this version does not
    understand is not an error.
    """
    try:
        raw = msgpack.unpackb(data, strict_map_key=False)
    except (ValueError, msgpack.UnpackException):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {REFINEMENT_NAMES[key]: value for key, value in raw.items() if key in REFINEMENT_NAMES}


def _ext_hook(code: int, data: bytes) -> Any:
    if code in (PLAIN_UNKNOWN, REFINED_UNKNOWN):
        return Unknown
    return msgpack.ExtType(code, data)


def decode(value: pb.DynamicValue) -> Any:
    """A DynamicValue as Python values, every unknown (plain or refined) as tf's `Unknown`."""
    if value.json:
        return json.loads(value.json)
    if value.msgpack:
        return msgpack.unpackb(value.msgpack, ext_hook=_ext_hook, strict_map_key=False)
    return None
