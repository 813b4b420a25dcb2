"""What every resource shares: plans built from the schema (defaults, kept computed values), API bodies
translated by the schema's field map (provider/bodies.py), timeouts."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from tf.types import Unknown
from tf.utils import Diagnostics

from contract.fields import field_map
from provider import bodies
from provider import schema as schema_module
from provider.client import Client
from provider.destroy_run import terraform_destroys
from provider.diagnostics import Path
from provider.schema import TypeSchema
from provider.session import Session
from provider.validation import validate_config

State = dict[str, Any]
DEFAULT_TIMEOUT_SECONDS = 60 * 60
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """Seconds in a Go-style duration such as "90s", "30m" or "1h30m"."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 30m or 2h")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


class ImportIdError(ValueError):
    """An import ID that does not have the documented form."""


def split_import_id(import_id: str, form: str) -> list[str]:
    """The parts of an import ID of the form `A/B/C`: exactly that many non-empty parts."""
    expected = form.count("/") + 1
    parts = import_id.split("/")
    if len(parts) != expected or not all(parts):
        raise ImportIdError(f"Expected an import ID of the form {form}, got {import_id!r}.")
    return parts


class Resource:
    """One resource type; subclasses name their type and fill in the CRUD hooks."""

    type_name: ClassVar[str]
    # What create waits for and what destroy does, for the docs.
    lifecycle: ClassVar[str] = ""
    # API JSON pointers (error parameters, rule fields) → the attribute they concern; by default the
    # schema's field map (contract/fields.py).
    fields: Mapping[str, Path] = {}

    def __init__(self, session: Session) -> None:
        self.session = session
        self.schema: TypeSchema = schema_module.load().resources[self.type_name]
        self.fields = self.fields or field_map(self.schema.document)

    @property
    def client(self) -> Client:
        return self.session.require_client()

    # validation

    def validate(self, diags: Diagnostics, config: State) -> None:
        validate_config(diags, self.schema, config)

    # planning

    def plan(self, diags: Diagnostics, prior: State | None, config: State) -> tuple[State, list[Path]]:
        """The planned state: configuration, defaults for what it omits, computed values kept or unknown."""
        planned: State = {}
        for attribute in self.schema.attributes:
            value = config.get(attribute.name)
            if attribute.settable and value is not None:
                planned[attribute.name] = value
            elif attribute.has_default and attribute.settable:
                planned[attribute.name] = attribute.default
            elif attribute.computed:
                planned[attribute.name] = prior.get(attribute.name) if prior is not None else Unknown
            else:
                planned[attribute.name] = None
        for block in self.schema.blocks:
            planned[block.name] = self._plan_block(block, config.get(block.name))
        # Rule checks never block a destroy: Terraform plans the configuration before destroying, and a
        # resource whose creation failed would fail that plan on the same rule.
        self.modify_plan(Diagnostics() if terraform_destroys() else diags, prior, planned, config)
        replace = []
        if prior is not None:
            replace = [
                [a.name]
                for a in self.schema.attributes
                if a.force_new and not _same(prior.get(a.name), planned.get(a.name))
            ]
        return planned, replace

    @staticmethod
    def _plan_block(block: schema_module.BlockType, value: Any) -> Any:
        def element(item: Any) -> Any:
            if item is Unknown or item is None:
                return item
            out = {}
            for attribute in block.attributes:
                given = item.get(attribute.name)
                out[attribute.name] = attribute.default if given is None and attribute.has_default else given
            return out

        if value is None or value is Unknown:
            return value
        if block.nesting == "single":
            return element(value)
        return [element(item) for item in value]

    def modify_plan(self, diags: Diagnostics, prior: State | None, planned: State, config: State) -> None:
        """Adjust a plan: computed values that will change become unknown; plan-time checks add errors."""

    def plan_destroy(self, diags: Diagnostics, prior: State) -> None:
        """A planned destroy (Terraform 1.3+): warnings of what it deletes, errors if it must not happen."""

    # CRUD

    def create(self, diags: Diagnostics, planned: State) -> State | None:
        raise NotImplementedError

    def read(self, diags: Diagnostics, current: State) -> State | None:
        raise NotImplementedError

    def update(self, diags: Diagnostics, prior: State, planned: State) -> State | None:
        # Every attribute the API can change forces a replacement; only timeouts change in place.
        return planned

    def delete(self, diags: Diagnostics, current: State) -> None:
        raise NotImplementedError

    def import_(self, diags: Diagnostics, import_id: str) -> State | None:
        raise NotImplementedError

    # API bodies: what the field map gives, and what a resource adds of its own (overriding these)

    def body(self, values: State) -> dict[str, Any]:
        """The request body for these values."""
        return bodies.to_body(self.type_name, values)

    def changed_body(self, prior: State, planned: State) -> dict[str, Any]:
        """The body of an in-place update: the top-level fields whose value the plan changes."""
        return bodies.bodies(self.type_name).changes(self.body(prior), self.body(planned))

    def changes_in_place(self, prior: State, planned: State) -> bool:
        """Whether the plan changes (or may change: unknown) a field that an in-place update sends."""
        return bodies.bodies(self.type_name).differs(prior, planned)

    def in_place_attributes(self) -> list[str]:
        """The attributes an in-place update sends: settable, in the body, not forcing a replacement."""
        return bodies.bodies(self.type_name).in_place()

    def from_body(self, data: dict[str, Any], **given: Any) -> State:
        """The state the API answered with; `given` values (path parameters, the resource's own) win."""
        return self.state(**bodies.from_body(self.type_name, data, **given))

    # helpers

    def state(self, **values: Any) -> State:
        """A full state: every attribute and block, None where not given."""
        return {name: values.get(name) for name in self.schema.names}

    def replaced(self, prior: State, planned: State) -> bool:
        """Whether the plan changes an attribute that forces a replacement."""
        return any(prior.get(a.name) != planned.get(a.name) for a in self.schema.attributes if a.force_new)

    def unknown_computed(self, planned: State) -> None:
        """Every attribute the API alone sets becomes unknown: what a new object will have."""
        for attribute in self.schema.attributes:
            if attribute.computed and not attribute.settable:
                planned[attribute.name] = Unknown

    def deadline(self, planned: State, action: str = "create") -> float:
        """When the wait for `action` gives up: the timeouts block, else 60 minutes."""
        timeouts = planned.get("timeouts") or {}
        text = timeouts.get(action) if isinstance(timeouts, dict) else None
        seconds = duration_seconds(text) if text else DEFAULT_TIMEOUT_SECONDS
        return time.monotonic() + seconds


def _same(a: Any, b: Any) -> bool:
    if a is Unknown or b is Unknown:
        return False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b
