"""Projects: list, read, create and delete (a project with clusters is refused)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError

from shim.errors import CANNOT_DELETE_GROUP_WITH_CLUSTERS, DUPLICATE_PROJECT_NAME, ApiError
from shim.service import lookups
from shim.service.common import new_id
from shim.service.context import Job
from shim.store import queries
from shim.store.models import Project

log = logging.getLogger(__name__)


class Projects(Job):
    """The projects of the API."""

    def list_projects(self, *, only: str | None, offset: int, limit: int) -> tuple[list[Project], int]:
        with self.ctx.store.read() as session:
            return queries.projects_page(session, only=only, offset=offset, limit=limit)

    def project_summaries(self, project_ids: Iterable[str]) -> dict[str, tuple[str | None, int]]:
        with self.ctx.store.read() as session:
            return queries.project_summaries(session, project_ids)

    def get_project(self, project_id: str) -> Project:
        with self.ctx.store.read() as session:
            return lookups.project(session, project_id)

    def create_project(self, name: str) -> Project:
        try:
            with self.ctx.store.write() as session:
                if queries.project_by_name(session, name) is not None:
                    raise self._duplicate_project(name)
                project = Project(id=new_id(), name=name, created_at=self.ctx.now())
                session.add(project)
        except IntegrityError:
            raise self._duplicate_project(name) from None
        return project

    @staticmethod
    def _duplicate_project(name: str) -> ApiError:
        return ApiError(
            409,
            DUPLICATE_PROJECT_NAME,
            f"A project named '{name}' already exists. Pick another name.",
            ["/name"],
        )

    def delete_project(self, project_id: str) -> None:
        with self.ctx.store.write() as session:
            project = lookups.project(session, project_id)
            count = queries.cluster_count(session, project_id)
            if count:
                raise ApiError(
                    409,
                    CANNOT_DELETE_GROUP_WITH_CLUSTERS,
                    f"Project '{project.name}' still has {count} cluster(s). Terminate them first "
                    f"(DELETE .../clusters/NAME), then delete the project.",
                )
            session.delete(project)
