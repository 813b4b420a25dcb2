"""The provider of one plugin process: configuration, API client, resources and this run's plans."""

from __future__ import annotations

import os
from typing import Any

from tf.types import Unknown
from tf.utils import Diagnostics

from provider import schema as schema_module
from provider.client import Client, Unreachable
from provider.diagnostics import add_unreachable
from provider.identity import identify
from provider.resource import Resource
from provider.session import Session
from provider.validation import validate_config


def resource_classes() -> dict[str, type[Resource]]:
    from provider.resources import cluster, cluster_backup, project, restore_job, snapshot

    classes = (
        project.Project,
        cluster.Cluster,
        cluster_backup.ClusterBackup,
        snapshot.Snapshot,
        restore_job.RestoreJob,
    )
    return {c.type_name: c for c in classes}


def data_source_classes() -> dict[str, Any]:
    from provider.data_sources import backup_status, snapshots

    return {
        snapshots.Snapshots.type_name: snapshots.Snapshots,
        backup_status.BackupStatus.type_name: backup_status.BackupStatus,
    }


class Plugin:
    """Everything one Terraform run's provider instance keeps between calls."""

    def __init__(self) -> None:
        # The resources get the session, not the plugin: the client reaches them through it at configure.
        self.session = Session()
        self.resources = {name: cls(self.session) for name, cls in resource_classes().items()}
        self.data_sources = {name: cls(self.session) for name, cls in data_source_classes().items()}

    def validate(self, diags: Diagnostics, config: dict[str, Any]) -> None:
        validate_config(diags, schema_module.load().provider, config)
        url = config.get("url")
        if isinstance(url, str) and not url.startswith(("http://", "https://")):
            diags.add_error(
                "Invalid provider url",
                f"{url!r} is not an http:// or https:// URL. Set url to what `cloudbackup serve` prints, "
                f"such as http://127.0.0.1:8080.",
                path=["url"],
            )

    def configure(self, diags: Diagnostics, config: dict[str, Any]) -> None:
        """Settings from the provider block, else the environment; then one call to check URL and key."""
        provider = schema_module.load().provider
        values: dict[str, Any] = {}
        for attribute in provider.attributes:
            value = config.get(attribute.name)
            if value is Unknown:
                diags.add_error(
                    f"The provider's {attribute.name} is not known yet",
                    f"{attribute.name} depends on a value known only after apply. Give it a value known at "
                    f"time, or set {attribute.env}.",
                    path=[attribute.name],
                )
                return
            if value is None and attribute.env:
                value = os.environ.get(attribute.env) or None
            if value is None and attribute.has_default:
                value = attribute.default
            values[attribute.name] = value
        missing = [name for name in ("public_key", "private_key") if not values.get(name)]
        if missing:
            diags.add_error(
                "Missing cloudbackup API key",
                f"The provider needs an API key pair and has no {' and no '.join(missing)}. Set public_key "
                f"and private_key in the provider block, or CLOUDBACKUP_PUBLIC_KEY and "
                f"CLOUDBACKUP_PRIVATE_KEY; "
                f"`cloudbackup keys create` prints a new pair.",
                path=[missing[0]],
            )
            return
        try:
            client = Client(values["url"], values["public_key"], values["private_key"])
        except ValueError as exc:
            diags.add_error(
                "Invalid provider url",
                f"{exc}. Set url (or CLOUDBACKUP_URL) to the address `cloudbackup serve` prints.",
                path=["url"],
            )
            return
        try:
            identity = identify(diags, client)
        except Unreachable as exc:
            add_unreachable(diags, exc, "Configuring the provider")
            return
        if identity is None:
            return
        client.key_project = identity.project_id
        self.session.configure(client, identity)
