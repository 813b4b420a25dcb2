"""cloudbackup_cluster: a cluster and its volumes; destroying it terminates it and deletes its snapshots."""

from __future__ import annotations

from typing import Any

from tf.types import Unknown
from tf.utils import Diagnostics

from contract import rules
from provider import deletion
from provider.client import ApiError, seg
from provider.planning import PlannedCluster, check_cluster_change, check_regions, known
from provider.resource import DEFAULT_TIMEOUT_SECONDS, Resource, State, split_import_id
from provider.validation import block_elements
from provider.waiting import wait_for

READY = "IDLE"
# What the cluster's backup was when Terraform last created, changed or imported it. The
# cloudbackup_cluster_backup resource is what enables backup, so a refresh keeps these as they were:
# reading them live would report the configuration's own work as a change made outside Terraform.
WRITTEN_ONLY = ("backup_enabled", "backup_method")


def regions_body(regions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The API's replicationSpecs for a set of region blocks."""
    config = {
        r["name"]: {"priority": int(r["priority"]), "electableNodes": int(r["electable_nodes"])}
        for r in sorted(regions, key=lambda r: r["name"])
    }
    return [{"regionsConfig": config}]


class Cluster(Resource):
    type_name = "cloudbackup_cluster"
    lifecycle = (
        "Creating it waits until the cluster is IDLE. Changes of tier, type, regions or disk size are "
        "made in place; a cluster with cloud provider snapshots enabled cannot move to M0, M2 or M5, to a"
        " sharded type or to another provider (disable backup first), and its volumes can grow but not "
        "shrink. Destroying it terminates the cluster and deletes all its snapshots from storage."
    )

    def _path(self, project_id: str, name: str | None = None) -> str:
        base = f"/groups/{seg(project_id)}/clusters"
        return f"{base}/{seg(name)}" if name is not None else base

    def body(self, values: State) -> dict[str, Any]:
        return {**super().body(values), "replicationSpecs": regions_body(values.get("region") or [])}

    def _state(self, project_id: str, data: dict[str, Any]) -> State:
        specs = data.get("replicationSpecs") or [{}]
        regions = [
            {"name": name, "priority": cfg.get("priority"), "electable_nodes": cfg.get("electableNodes")}
            for name, cfg in sorted((specs[0].get("regionsConfig") or {}).items())
        ]
        preferred = data.get("preferredRegion")
        if preferred is None and regions:
            specs = {r["name"]: rules.RegionSpec(r["priority"], r["electable_nodes"]) for r in regions}
            preferred = rules.preferred_region(specs)
        enabled = bool(data.get("providerBackupEnabled") or data.get("backupMethod"))
        state = self.from_body(
            data,
            project_id=project_id,
            region=regions,
            preferred_region=preferred,
            backup_enabled=enabled,
            backup_method=data.get("backupMethod") if enabled else None,
        )
        state["id"] = f"{project_id}/{state['name']}"
        return state

    # validation and planning

    def validate(self, diags: Diagnostics, config: State) -> None:
        super().validate(diags, config)
        if diags.has_errors():
            return
        regions = config.get("region")
        elements = block_elements(self.schema, config, "region")

        def path_for(pointer: str | None) -> list[Any]:
            # With one region block Terraform can point at its attribute; a set of several has no index.
            if len(elements) != 1 or not pointer or not pointer.startswith(rules.REGIONS + "/"):
                return ["region"]
            return [*elements[0][0], "priority" if pointer.endswith("/priority") else "name"]

        if regions is not None and regions is not Unknown:
            check_regions(diags, config.get("provider_name"), regions, path_for)

    def modify_plan(self, diags: Diagnostics, prior: State | None, planned: State, config: State) -> None:
        project_id, name = planned.get("project_id"), planned.get("name")
        planned["id"] = f"{project_id}/{name}" if known(project_id, name) else Unknown
        regions = planned.get("region")
        if regions is not None and known(regions) and all(known(r) and known(*r.values()) for r in regions):
            specs = {
                r["name"]: rules.RegionSpec(int(r["priority"]), int(r["electable_nodes"])) for r in regions
            }
            planned["preferred_region"] = rules.preferred_region(specs) if specs else Unknown
        else:
            planned["preferred_region"] = Unknown
        if prior is None or self._changes(prior, planned):
            if prior is None:
                planned["state"] = Unknown
            # An update answers with the live backup setting.
            for attribute in WRITTEN_ONLY:
                planned[attribute] = Unknown
        self.session.run.record_cluster(
            PlannedCluster(
                project_id,
                str(name),
                planned.get("provider_name"),
                planned.get("instance_size"),
                planned.get("cluster_type"),
                planned.get("disk_size_gb"),
                [r.get("name") for r in regions]
                if known(regions) and all(known(r) for r in regions)
                else Unknown,
                planned.get("preferred_region"),
            )
        )
        check_cluster_change(diags, self._live_backup(prior, planned), planned)
        if prior is not None and any(prior.get(n) != planned.get(n) for n in ("project_id", "name")):
            self._before_deleting(diags, prior, "Replacing this cloudbackup_cluster")

    def plan_destroy(self, diags: Diagnostics, prior: State) -> None:
        self._before_deleting(diags, prior, "Destroying this cloudbackup_cluster")

    def _before_deleting(self, diags: Diagnostics, prior: State, action: str) -> None:
        """Refuse when protected, else preview the snapshots that terminating the cluster deletes."""
        if prior.get("deletion_protection"):
            deletion.refuse(diags, self.type_name, action, prior.get("name"))
        elif self.session.client is not None and not deletion.backup_protected(
            diags, self.client, prior["project_id"], prior["name"], action
        ):
            deletion.preview(diags, self.client, prior["project_id"], prior["name"], action)

    def _changes(self, prior: State, planned: State) -> bool:
        # A state written before an attribute existed holds null for it: the same as its default.
        if self.changes_in_place(prior, planned):
            return True
        regions = planned.get("region")
        if not known(regions) or not all(known(r) and known(*r.values()) for r in regions):
            return True
        return regions_body(prior.get("region") or []) != regions_body(regions)

    def _live_backup(self, prior: State | None, planned: State) -> State | None:
        """The prior state with the backup the API holds now: R11 is about the live setting."""
        if prior is None or not self._changes(prior, planned) or self.session.client is None:
            return prior
        try:
            data = self.session.client.cluster(prior["project_id"], prior["name"])
        except ApiError:
            return prior
        if data is None:
            return prior
        live = self._state(prior["project_id"], data)
        return {**prior, **{attribute: live[attribute] for attribute in WRITTEN_ONLY}}

    # CRUD

    def _wait_ready(self, project_id: str, name: str) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            data = self.client.get(self._path(project_id, name))
            return data if data.get("stateName") in (READY, None) else None

        import time

        return wait_for(ready, deadline=time.monotonic() + DEFAULT_TIMEOUT_SECONDS)

    def create(self, diags: Diagnostics, planned: State) -> State | None:
        project_id = planned["project_id"]
        data = self.client.post(self._path(project_id), self.body(planned))
        if data.get("stateName") not in (READY, None):
            data = self._wait_ready(project_id, planned["name"])
        return self._state(project_id, data)

    def read(self, diags: Diagnostics, current: State) -> State | None:
        project_id, client = current["project_id"], self.client
        try:
            data = client.cluster(project_id, current["name"])
        except ApiError as error:
            if error.not_found:
                return None
            raise
        if data is None:
            return None
        if data.get("providerBackupEnabled"):
            # Its snapshots are what Terraform reads next, as a rule (its backup came with the cluster list).
            name = current["name"]
            client.prefetch(lambda: client.snapshots(project_id, name))
        state = self._state(project_id, data)
        if current.get("backup_enabled") is not None:
            for attribute in WRITTEN_ONLY:
                state[attribute] = current.get(attribute)
        return state

    def update(self, diags: Diagnostics, prior: State, planned: State) -> State | None:
        project_id, name = planned["project_id"], planned["name"]
        body = self.changed_body(prior, planned)
        if body:
            data = self.client.patch(self._path(project_id, name), body)
            if data.get("stateName") not in (READY, None):
                data = self._wait_ready(project_id, name)
        else:
            data = self.client.get(self._path(project_id, name))
        return self._state(project_id, data)

    def delete(self, diags: Diagnostics, current: State) -> None:
        path = self._path(current["project_id"], current["name"])
        deletion.preview_at_apply(
            diags,
            self.client,
            self.session.terraform_version,
            current,
            current["name"],
            "Destroying this cloudbackup_cluster",
        )
        try:
            self.client.delete(path)
        except ApiError as error:
            if error.not_found or deletion.refused_at_apply(diags, error, self.type_name):
                return
            raise

        def gone() -> bool | None:
            try:
                self.client.get(path)
            except ApiError as error:
                if error.not_found:
                    return True
                raise
            return None

        import time

        wait_for(gone, deadline=time.monotonic() + DEFAULT_TIMEOUT_SECONDS)

    def import_(self, diags: Diagnostics, import_id: str) -> State | None:
        project_id, name = split_import_id(import_id, "PROJECT_ID/NAME")
        return self.read(diags, {"project_id": project_id, "name": name})
