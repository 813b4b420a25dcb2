"""What a plan that deletes snapshots (R9) is told: a preview of what goes, and deletion protection."""

from __future__ import annotations

from typing import Any

from tf.utils import Diagnostics

from provider.client import ApiError, Client

DELETION_PROTECTED = "DELETION_PROTECTED"
# Terraform releases from this one plan destroys through the provider (the plan_destroy capability);
# earlier ones only call ApplyResourceChange, so the preview is shown there instead.
PLAN_DESTROY_SINCE = (1, 3)


def plans_destroys(terraform_version: str | None) -> bool:
    """Whether this Terraform asks the provider to plan a destroy (unknown versions are assumed recent)."""
    if not terraform_version:
        return True
    try:
        major, minor = (int(part) for part in terraform_version.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= PLAN_DESTROY_SINCE


def size_text(total: int) -> str:
    amount = float(total)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{int(amount)} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def age_text(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 2 * 3600:
        return f"{seconds // 60} minutes"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} hours"
    return f"{seconds // 86400} days"


def preview(
    diags: Diagnostics, client: Client, project_id: str, cluster_name: str, action: str, when: str = "plan"
) -> None:
    """A warning naming every snapshot of the cluster that `action` deletes; nothing if it has none."""
    try:
        backup = client.backup(project_id, cluster_name)
        snapshots = client.snapshots(project_id, cluster_name) if backup is not None else []
    except ApiError:
        return
    if not snapshots or backup is None:
        return
    scheduled = sum(1 for s in snapshots if s.get("snapshotType") == "scheduled")
    on_demand = len(snapshots) - scheduled
    total = sum(int(s.get("storageSizeBytes") or 0) for s in snapshots)
    age = backup.get("snapshotAgeSeconds")
    newest = (
        f"the newest completed one was taken {age_text(int(age))} ago"
        if age is not None
        else "none of them completed"
    )
    moment = "when this plan is applied" if when == "plan" else "now"
    diags.add_warning(
        f"{action} deletes {len(snapshots)} snapshot(s) of cluster '{cluster_name}'",
        f"{action} deletes every snapshot of cluster '{cluster_name}' from storage immediately (R9), "
        f"{moment}: {len(snapshots)} snapshot(s) ({scheduled} scheduled, {on_demand} on-demand), "
        f"{size_text(total)} in total; {newest}. They cannot be restored afterwards. To keep them, restore"
        f" the newest into another cluster first, or set deletion_protection = true to make Terraform "
        f"refuse this.",
    )


def preview_at_apply(
    diags: Diagnostics, client: Client, terraform_version: str, current: Any, cluster_name: str, action: str
) -> None:
    """The preview at apply, for a Terraform that planned the destroy without asking the provider."""
    if not plans_destroys(terraform_version) and not current.get("deletion_protection"):
        preview(diags, client, current["project_id"], cluster_name, action, when="apply")


def refuse(diags: Diagnostics, type_name: str, action: str, cluster_name: Any) -> None:
    """The plan-time error of a protected resource, saying how to proceed."""
    diags.add_error(
        f"Deletion protection is on for this {type_name}",
        f"{action} would delete every snapshot of cluster '{cluster_name}' (R9), and deletion_protection is"
        f" true. To proceed, set deletion_protection = false and run `terraform apply` (that change alone), "
        f"then run the destroy or the change again.",
        path=["deletion_protection"],
    )


def backup_protected(
    diags: Diagnostics, client: Client, project_id: str, cluster_name: str, action: str
) -> bool:
    """Refuse a cluster's termination while its backup, wherever it is managed, has deletion protection."""
    try:
        backup = client.backup(project_id, cluster_name)
    except ApiError:
        return False
    if not (backup and backup.get("deletionProtection")):
        return False
    diags.add_error(
        "The cluster's backup has deletion protection",
        f"{action} would delete every snapshot of cluster '{cluster_name}' (R9), and its backup has "
        f"deletion protection. To proceed, set deletion_protection = false on its "
        f"cloudbackup_cluster_backup and run `terraform apply`, then run the destroy or the change again.",
    )
    return True


def refused_at_apply(diags: Diagnostics, error: ApiError, type_name: str) -> bool:
    """The shim's 409 DELETION_PROTECTED as a Terraform diagnostic; False for any other error."""
    if error.code != DELETION_PROTECTED:
        return False
    diags.add_error(
        f"Deletion protection is on for this {type_name}",
        f"The API refused to delete it: {error.detail} In Terraform: set deletion_protection = false on the "
        f"resource, run `terraform apply`, then destroy again. Nothing was deleted.",
        path=["deletion_protection"],
    )
    return True
