"""cloudbackup_project: a project (an Atlas group), the unit locked to one backup method."""

from __future__ import annotations

from tf.utils import Diagnostics

from provider.client import ApiError, seg
from provider.resource import Resource, State, split_import_id


class Project(Resource):
    type_name = "cloudbackup_project"
    lifecycle = (
        "Creating it creates the project; destroying it deletes the project, which must have no clusters "
        "left."
    )

    def _state(self, data: dict) -> State:
        return self.from_body(data)

    def modify_plan(self, diags: Diagnostics, prior: State | None, planned: State, config: State) -> None:
        if prior is None or planned.get("name") != prior.get("name"):
            self.session.run.record_new_project(planned.get("name"))
            self.unknown_computed(planned)
            identity = self.session.identity
            if identity is not None and identity.project_id is not None:
                diags.add_error(
                    "Creating a project needs an organization API key",
                    f"The provider's key reaches project {identity.project_id} alone, and only an "
                    f"organization key creates projects. Set public_key and private_key (or "
                    f"CLOUDBACKUP_PUBLIC_KEY and CLOUDBACKUP_PRIVATE_KEY) to a key made by `cloudbackup keys "
                    f"create` without --project.",
                    path=["name"],
                )

    def create(self, diags: Diagnostics, planned: State) -> State | None:
        return self._state(self.client.post("/groups", self.body(planned)))

    def read(self, diags: Diagnostics, current: State) -> State | None:
        client = self.client
        try:
            data = client.project(current["id"])
            client.prefetch(lambda: client.clusters(current["id"]))
            state = self._state(data)
            if "backup_method" in current:
                # The method a backup of this configuration locks the project to is that resource's work,
                # not a change outside Terraform: keep it as of creation or import.
                state["backup_method"] = current["backup_method"]
            return state
        except ApiError as error:
            if error.not_found:
                return None
            raise

    def delete(self, diags: Diagnostics, current: State) -> None:
        try:
            self.client.delete(f"/groups/{seg(current['id'])}")
        except ApiError as error:
            if not error.not_found:
                raise

    def import_(self, diags: Diagnostics, import_id: str) -> State | None:
        (project_id,) = split_import_id(import_id, "PROJECT_ID")
        return self.read(diags, {"id": project_id})
