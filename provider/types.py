"""Terraform value types the tf package lacks (Object), and the cty type of any TfType as JSON."""

from __future__ import annotations

import json
from typing import Any

from tf.types import TfType, Unknown


class Object(TfType):
    """A cty object: a fixed set of named attributes, each with its own type; maps to a Python dict."""

    def __init__(self, attribute_types: dict[str, TfType]) -> None:
        self.attribute_types = attribute_types

    def encode(self, value: Any) -> Any:
        if value is None or value is Unknown:
            return value
        return {name: kind.encode(value.get(name)) for name, kind in self.attribute_types.items()}

    def decode(self, value: Any) -> Any:
        if value is None or value is Unknown:
            return value
        return {name: kind.decode(value.get(name)) for name, kind in self.attribute_types.items()}

    def tf_type(self) -> bytes:
        inner = ",".join(
            f"{json.dumps(name)}:{kind.tf_type().decode()}"
            for name, kind in sorted(self.attribute_types.items())
        )
        return f'["object",{{{inner}}}]'.encode()


def cty_json(kind: TfType) -> Any:
    """The cty type as `terraform providers schema -json` prints it ("string", ["list", ...], ...)."""
    return json.loads(kind.tf_type())
