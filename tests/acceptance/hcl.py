"""HCL snippets the acceptance tests assemble their configurations from."""

from __future__ import annotations


def project(name: str, label: str = "p") -> str:
    return f'resource "cloudbackup_project" "{label}" {{\n  name = "{name}"\n}}\n'


def cluster(
    name: str,
    *,
    label: str = "c",
    project: str = "cloudbackup_project.p.id",
    size: str = "M10",
    provider: str = "AZURE",
    cluster_type: str | None = None,
    disk: int | None = None,
    regions: tuple[tuple[str, int | None], ...] = (("eastus2", 7), ("westus2", 6)),
    nodes: int | None = 1,
    size_expression: str | None = None,
) -> str:
    """A cluster; `size_expression` is an HCL expression for the tier instead of the literal `size`."""
    tier = size_expression or f'"{size}"'
    lines = [
        f'resource "cloudbackup_cluster" "{label}" {{',
        f"  project_id    = {project}",
        f'  name          = "{name}"',
        f'  provider_name = "{provider}"',
        f"  instance_size = {tier}",
    ]
    if cluster_type:
        lines.append(f'  cluster_type  = "{cluster_type}"')
    if disk:
        lines.append(f"  disk_size_gb  = {disk}")
    for region, priority in regions:
        lines.append(f'  region {{\n    name = "{region}"')
        if priority is not None:
            lines.append(f"    priority = {priority}")
        if nodes is not None:
            lines.append(f"    electable_nodes = {nodes}")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def backup(
    *,
    label: str = "b",
    project: str = "cloudbackup_project.p.id",
    cluster: str = "cloudbackup_cluster.c.name",
    method: str | None = None,
    timeout: str | None = None,
) -> str:
    lines = [
        f'resource "cloudbackup_cluster_backup" "{label}" {{',
        f"  project_id   = {project}",
        f"  cluster_name = {cluster}",
    ]
    if method:
        lines.append(f'  method       = "{method}"')
    if timeout:
        lines.append(f'  timeouts {{\n    create = "{timeout}"\n  }}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def snapshot(
    description: str, *, label: str = "s", cluster: str = "cloudbackup_cluster_backup.b.cluster_name"
) -> str:
    return (
        f'resource "cloudbackup_snapshot" "{label}" {{\n'
        f"  project_id   = cloudbackup_project.p.id\n"
        f"  cluster_name = {cluster}\n"
        f'  description  = "{description}"\n'
        f"}}\n"
    )
