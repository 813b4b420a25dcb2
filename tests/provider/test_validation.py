"""Configuration values: the quick check agrees with jsonschema, which a valid configuration never needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from provider import schema
from provider.validation import _quick_check, _validator

SAMPLES = [
    "",
    "a",
    "AZURE",
    "aws",
    "M10",
    "M1",
    "CLOUD_PROVIDER_SNAPSHOTS",
    "eastus2",
    "0123456789abcdef01234567",
    "0123456789ABCDEF01234567",
    "orders-1",
    "orders-1\n",
    "eastus2\n",
    "30m\n",
    "-orders",
    "bad value!",
    "30m",
    "1h30m",
    "30 minutes",
    "taken by the quickstart",
    "x" * 300,
    0,
    1,
    7,
    8,
    10,
    4096,
    4097,
    -1,
    1.5,
    True,
    False,
]


def settable_attributes() -> list[tuple[str, schema.Attribute]]:
    schemas = schema.load()
    out = []
    for type_schema in [schemas.provider, *schemas.resources.values(), *schemas.data_sources.values()]:
        out += [(f"{type_schema.type_name}.{a.name}", a) for a in type_schema.attributes if a.settable]
        for block in type_schema.blocks:
            out += [(f"{type_schema.type_name}.{block.name}.{a.name}", a) for a in block.attributes]
    return out


@pytest.mark.parametrize(
    ("name", "attribute"), settable_attributes(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_the_quick_check_accepts_exactly_what_jsonschema_accepts(
    name: str, attribute: schema.Attribute
) -> None:
    quick = _quick_check(attribute)
    assert quick is not None, f"{name}: its fragment would need jsonschema for every value"
    for value in SAMPLES:
        valid = not list(_validator(attribute).iter_errors(value))
        assert quick(value) == valid, f"{name}: {value!r}"


def test_a_name_with_a_trailing_newline_is_invalid_in_terraform_as_in_the_api() -> None:
    attributes = dict(settable_attributes())
    for name in ("cloudbackup_cluster.name", "cloudbackup_project.name", "cloudbackup_cluster.region.name"):
        attribute = attributes[name]
        value = "orders-1" if name != "cloudbackup_cluster.region.name" else "eastus2"
        assert _quick_check(attribute)(value)  # type: ignore[misc]
        assert list(_validator(attribute).iter_errors(value + "\n")), name


def test_a_valid_configuration_is_validated_without_importing_jsonschema() -> None:
    code = (
        "import sys\n"
        "from tf.utils import Diagnostics\n"
        "from provider import schema\n"
        "from provider.validation import validate_config\n"
        "diags = Diagnostics()\n"
        "cluster = schema.load().resources['cloudbackup_cluster']\n"
        "validate_config(diags, cluster, {'project_id': '0123456789abcdef01234567', 'name': 'orders',\n"
        "    'provider_name': 'AZURE', 'instance_size': 'M10', 'disk_size_gb': 10,\n"
        "    'region': [{'name': 'eastus2', 'priority': 7, 'electable_nodes': 3}]})\n"
        "assert not diags.has_errors()\n"
        "print('jsonschema' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
