"""What one run's resources share: this run's plans, and the client and identity given at configure."""

from __future__ import annotations

from dataclasses import dataclass, field

from provider.client import Client
from provider.identity import Identity
from provider.planning import Run


class NotConfigured(RuntimeError):
    """A resource was used before ConfigureProvider succeeded."""


@dataclass
class Session:
    """Handed to every resource when the plugin starts; ConfigureProvider fills in client and identity.

    Resources read it rather than the plugin, so that they depend on what they use and not on the
    plugin that holds them.
    """

    run: Run = field(default_factory=Run)
    client: Client | None = None
    identity: Identity | None = None
    # The Terraform release driving this process, from ConfigureProvider ("" if not told).
    terraform_version: str = ""

    def require_client(self) -> Client:
        if self.client is None:
            raise NotConfigured("the provider is not configured")
        return self.client

    def configure(self, client: Client, identity: Identity) -> None:
        self.client = client
        self.identity = identity
