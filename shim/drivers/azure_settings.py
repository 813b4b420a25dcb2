"""Settings and credentials of the azure driver, from flags and environment variables."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential

DEFAULT_ENDPOINT = "https://management.azure.com"

ENV_SUBSCRIPTION = "AZURE_SUBSCRIPTION_ID"
ENV_RESOURCE_GROUP = "CLOUDBACKUP_AZURE_RESOURCE_GROUP"
ENV_ENDPOINT = "CLOUDBACKUP_AZURE_ENDPOINT"
ENV_ACCESS_TOKEN = "CLOUDBACKUP_AZURE_ACCESS_TOKEN"
ENV_CA_BUNDLE = "REQUESTS_CA_BUNDLE"
# Optional: seconds between status requests of an operation when Azure sends no Retry-After (default 5).
ENV_POLLING_INTERVAL = "CLOUDBACKUP_AZURE_POLLING_INTERVAL"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Resource group names: letters, digits, _ - . ( ), not ending in a period.
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")


class AzureConfigurationError(Exception):
    """The azure driver cannot start: settings are missing or wrong, or Azure refuses the credential."""


@dataclass(frozen=True)
class AzureSettings:
    """Everything the azure driver needs; `from_env_and_flags` reads the contract's flags and variables."""

    subscription_id: str | None
    resource_group: str | None
    endpoint: str = DEFAULT_ENDPOINT
    access_token: str | None = field(default=None, repr=False)
    # Seconds between status requests of a long-running operation, unless Azure's Retry-After says otherwise.
    polling_interval: float = 5.0
    # Threads that step operations (operations in flight are not bounded by this: waiting holds no thread).
    max_workers: int = 16
    # True (the system's trust store, or REQUESTS_CA_BUNDLE), False, or the path of a PEM bundle.
    connection_verify: bool | str = True
    # azure-core's RetryPolicy for 408, 429 and 5xx: exponential backoff, Retry-After honoured when sent.
    retry_total: int = 8
    retry_backoff_factor: float = 0.8
    retry_backoff_max: float = 60.0
    connection_timeout: float = 30.0
    read_timeout: float = 120.0
    disk_sku: str = "Premium_LRS"
    snapshot_sku: str = "Standard_LRS"

    @classmethod
    def from_env_and_flags(
        cls,
        *,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        endpoint: str | None = None,
        environ: Mapping[str, str] | None = None,
        validate: bool = True,
        **overrides: Any,
    ) -> AzureSettings:
        """Flags win over environment variables; `overrides` sets any other field (tests, benchmarks).

        Raises AzureConfigurationError naming every missing or malformed setting when `validate`.
        """
        env = os.environ if environ is None else environ
        ca_bundle = (env.get(ENV_CA_BUNDLE) or "").strip()
        values: dict[str, Any] = {
            "subscription_id": _first(subscription_id, env.get(ENV_SUBSCRIPTION)),
            "resource_group": _first(resource_group, env.get(ENV_RESOURCE_GROUP)),
            "endpoint": (_first(endpoint, env.get(ENV_ENDPOINT)) or DEFAULT_ENDPOINT).rstrip("/"),
            "access_token": _first(env.get(ENV_ACCESS_TOKEN)),
            # requests would pick REQUESTS_CA_BUNDLE up by itself; reading it here lets us check it at start.
            "connection_verify": ca_bundle or True,
        }
        polling = (env.get(ENV_POLLING_INTERVAL) or "").strip()
        if polling:
            try:
                values["polling_interval"] = float(polling)
            except ValueError:
                raise AzureConfigurationError(
                    f"{ENV_POLLING_INTERVAL} must be a number of seconds, not {polling!r}"
                ) from None
        values.update(overrides)
        settings = cls(**values)
        if validate:
            settings.validate()
        return settings

    def problems(self) -> list[str]:
        """What is missing or malformed, each in words that say how to fix it."""
        missing = []
        if not self.subscription_id:
            missing.append(f"--azure-subscription-id (or {ENV_SUBSCRIPTION})")
        if not self.resource_group:
            missing.append(f"--azure-resource-group (or {ENV_RESOURCE_GROUP})")
        problems = [f"the azure driver needs {' and '.join(missing)}"] if missing else []
        if self.subscription_id and not _GUID.match(self.subscription_id):
            problems.append(
                f"the Azure subscription id must be a GUID such as 00000000-0000-0000-0000-000000000000,"
                f" not {self.subscription_id!r}"
            )
        if self.resource_group and not _RESOURCE_GROUP.match(self.resource_group):
            problems.append(f"{self.resource_group!r} is not a valid Azure resource group name")
        if not self.endpoint.startswith("https://"):
            problems.append(
                f"the Azure endpoint (--azure-endpoint or {ENV_ENDPOINT}) must be an https:// URL,"
                f" not {self.endpoint!r}"
            )
        if isinstance(self.connection_verify, str) and not os.path.isfile(self.connection_verify):
            problems.append(f"the CA bundle {self.connection_verify!r} ({ENV_CA_BUNDLE}) is not a file")
        if self.max_workers < 1:
            problems.append(f"max_workers must be at least 1, not {self.max_workers}")
        if self.polling_interval <= 0:
            problems.append(
                f"the polling interval ({ENV_POLLING_INTERVAL}) must be positive, not {self.polling_interval}"
            )
        return problems

    def validate(self) -> None:
        problems = self.problems()
        if problems:
            raise AzureConfigurationError("; ".join(problems))


class StaticTokenCredential(TokenCredential):
    """A bearer token obtained beforehand (`az account get-access-token`); it is never refreshed.

    Its expiry is read from the token when it is a JWT, so azure-core knows when it stops working;
    after that Azure answers 401 and the operation fails with that error.
    """

    def __init__(self, token: str) -> None:
        self._token = token
        self._expires_on = _jwt_expiry(token) or int(time.time()) + 3600

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, self._expires_on)

    def close(self) -> None:
        pass


def make_credential(settings: AzureSettings) -> TokenCredential:
    """The static token when CLOUDBACKUP_AZURE_ACCESS_TOKEN is set, else DefaultAzureCredential."""
    if settings.access_token:
        return StaticTokenCredential(settings.access_token)
    # Imported here: azure-identity is heavy and only this path needs it.
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _first(*values: str | None) -> str | None:
    for value in values:
        if value is not None and value.strip():
            return value.strip()
    return None


def _jwt_expiry(token: str) -> int | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return int(payload["exp"])
    except (ValueError, KeyError, TypeError):
        return None
