"""The azure driver: members are managed disks, snapshots full copies of them, through azure-mgmt-compute.

Storage. Each member of a cluster is an Azure managed disk in its region, created EMPTY with the cluster's
`diskSizeGB` when the cluster is created (`create_volume`), named `cb-<cluster id>-<region>-m<member>` and
tagged `cloudbackup-managed=true`, `cloudbackup-project-id`, `cloudbackup-cluster-id`,
`cloudbackup-cluster-name` and `cloudbackup-member`; terminating the cluster deletes its disks
(`delete_volume`). Every handle is an ARM resource id, so a disk made elsewhere can be adopted by its id.

Snapshots. A snapshot is a FULL copy (`incremental: false`, createOption `Copy`) of a member's disk,
stored in the region the control plane passes (the cluster's preferred region, R6), named
`cb-snap-<snapshot id>` in the configured resource group and tagged `cloudbackup-managed=true`,
`cloudbackup-snapshot-id=<snapshot id>` plus the project and cluster, so every Azure snapshot traces to its
record and `list_snapshots` finds them for reconciliation. Azure exposes no content digest of a disk or a
snapshot, so `checksum` is always None and `expected_checksum` cannot be checked; `storageSizeBytes` is the
snapshot's `diskSizeBytes` (a full snapshot stores the whole disk; Azure does not report used bytes).

Operations. `start_snapshot` and `start_restore` return a token once Azure answered the request that
creates the snapshot or disk (so a recorded token always names something Azure knows of); the operation
then runs as steps on a bounded pool (`max_workers` threads), waiting between Azure's status answers on
one timer thread, so a hundred clusters snapshot at once. Requests answered 408, 429 or 5xx are retried
by azure-core with exponential backoff, honouring Retry-After. A permanent failure is reported with
Azure's own error code and message. The names are deterministic, so after a restart `poll` derives an
operation's state from Azure itself (GET of the snapshot or disk: provisioningState; a missing resource
is `ResourceNotFound`).

Restore. The restored disk replaces the member's disk; the old disk is deleted after the new one succeeded.
The new disk is created from the snapshot in the target's region, named `<member disk>-r<8 hex digits>`
and tagged like the old one plus `cloudbackup-restored-from=<snapshot id>`, and `volumeHandle` in the
result is its id. A restore is all or nothing: if the new disk fails, or Azure refuses to delete the old
one, the new disk is removed and the member keeps its old disk. A snapshot in another region than the
target is refused, not copied: Azure creates a disk only from a snapshot in the same region and copies
across regions only incremental snapshots, so the operation fails with `CrossRegionRestoreNotSupported`,
naming both regions (`cross_region_restore` is False, so the control plane refuses such a restore first).

The driver is thread-safe: the scheduler and API threads may call it at once.

Long because it is one driver behind one interface (shim/drivers/base.py); what it knows of
Azure's operations, names and tags is read in one place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.polling.base_polling import BadResponse, BadStatus
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.core.polling.arm_polling import ARMPolling
from requests import Session
from requests.adapters import HTTPAdapter

from .azure_ops import OperationRunner, Steps
from .azure_settings import AzureConfigurationError, AzureSettings, make_credential
from .base import DriverError, OperationStatus, StoredSnapshot, VolumeSpec

__all__ = ["AzureConfigurationError", "AzureDriver", "AzureSettings"]

log = logging.getLogger(__name__)

GIB = 1 << 30

TAG_MANAGED = "cloudbackup-managed"
# The same names the control plane passes in `tags` (shim/service/engine.py), so no fact is tagged twice.
TAG_PROJECT = "cloudbackup-project-id"
TAG_CLUSTER = "cloudbackup-cluster-id"
TAG_CLUSTER_NAME = "cloudbackup-cluster-name"
TAG_MEMBER = "cloudbackup-member"
TAG_SNAPSHOT = "cloudbackup-snapshot-id"
TAG_RESTORED_FROM = "cloudbackup-restored-from"
TAG_PREFIX = "cloudbackup-"

_NAME_MAX = 80  # Azure's limit for disk and snapshot names
_TAG_VALUE_MAX = 256
_RESTORED_SUFFIX = re.compile(r"-r[0-9a-f]{8}$")
_ARM_ID = re.compile(
    r"^/?subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.Compute/(?P<kind>disks|snapshots)/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
_SUCCEEDED = "succeeded"
_FAILED = frozenset({"failed", "canceled"})
_DELETING = "deleting"
_GONE = _FAILED | {_DELETING}


class AzureDriver:
    """Volumes and snapshots in Azure through azure-mgmt-compute (see the module docstring)."""

    name = "azure"
    # Azure creates a disk only from a snapshot in the same region (see start_restore).
    cross_region_restore = False

    def __init__(
        self,
        settings: AzureSettings | None = None,
        *,
        credential: Any = None,
        check_access: bool = True,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Connect to Azure Resource Manager; with `check_access`, list the resource group's snapshots once.

        Without `settings`, they come from `AzureSettings.from_env_and_flags` with the flags given here.
        Raises AzureConfigurationError, naming what to fix, when settings are missing, no token can be
        obtained, Azure refuses the credential, or the subscription or resource group does not exist.
        """
        if settings is None:
            settings = AzureSettings.from_env_and_flags(
                subscription_id=subscription_id, resource_group=resource_group, endpoint=endpoint
            )
        settings.validate()
        self.settings = settings
        self._group: str = settings.resource_group  # type: ignore[assignment]  # validated above
        self._owns_credential = credential is None
        self._credential = credential if credential is not None else make_credential(settings)
        self._session = Session()
        # One pooled connection per pool thread, plus room for the callers' own synchronous requests.
        adapter = HTTPAdapter(pool_maxsize=settings.max_workers + 8)
        self._session.mount("https://", adapter)
        transport = RequestsTransport(
            session=self._session,
            session_owner=False,
            connection_verify=settings.connection_verify,
            connection_timeout=settings.connection_timeout,
            read_timeout=settings.read_timeout,
        )
        retry = RetryPolicy(
            retry_total=settings.retry_total,
            retry_status=settings.retry_total,
            retry_backoff_factor=settings.retry_backoff_factor,
            retry_backoff_max=settings.retry_backoff_max,
        )
        self._client = ComputeManagementClient(
            self._credential,
            settings.subscription_id,  # type: ignore[arg-type]  # validated above
            base_url=settings.endpoint,
            # The token's audience is the endpoint, also in sovereign clouds.
            credential_scopes=[f"{settings.endpoint}/.default"],
            transport=transport,
            retry_policy=retry,
            polling_interval=settings.polling_interval,
        )
        self._runner = OperationRunner(settings.max_workers, describe_error, name="azure-driver")
        self._facts: dict[str, _DiskFacts] = {}
        self._facts_lock = threading.Lock()
        self._closed = threading.Event()
        if check_access:
            try:
                self._check_access()
            except BaseException:
                self.close()
                raise

    # -- volumes ----------------------------------------------------------------------------------

    def create_volume(self, spec: VolumeSpec) -> str:
        """Create the member's EMPTY managed disk of `spec.size_gb` GiB in its region; return its ARM id."""
        name = _azure_name(f"cb-{spec.cluster_id}-{_location(spec.region)}-m{spec.member}")
        tags = {
            TAG_MANAGED: "true",
            TAG_PROJECT: spec.project_id,
            TAG_CLUSTER: spec.cluster_id,
            TAG_CLUSTER_NAME: spec.cluster_name,
            TAG_MEMBER: str(spec.member),
        }
        body = {
            "location": _location(spec.region),
            "tags": _tag_values(tags),
            "sku": {"name": self.settings.disk_sku},
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": spec.size_gb},
        }
        disk = self._call(lambda: self._client.disks.begin_create_or_update(self._group, name, body).result())
        self._remember(disk)
        return str(disk.id)

    def delete_volume(self, handle: str) -> None:
        ref = self._ref(handle, "disks")
        self._forget(ref)
        self._delete(ref)

    def resize_volume(self, handle: str, size_gb: int) -> None:
        ref = self._ref(handle, "disks")
        body = {"properties": {"diskSizeGB": size_gb}}
        self._call(lambda: self._client.disks.begin_update(ref.group, ref.name, body).result())

    # -- snapshots --------------------------------------------------------------------------------

    def start_snapshot(
        self, *, volume_handle: str, region: str, snapshot_id: str, tags: dict[str, str]
    ) -> str:
        """Start a full copy of the member's disk, stored in `region` as `cb-snap-<snapshot_id>`.

        Tags: the disk's project and cluster tags, then `tags` (keys without the `cloudbackup-` prefix get
        it), then `cloudbackup-managed=true` and `cloudbackup-snapshot-id=<snapshot_id>`.
        """
        disk = self._ref(volume_handle, "disks")
        snapshot = _ArmRef(
            self.settings.subscription_id or "", self._group, "snapshots", snapshot_name(snapshot_id)
        )
        token = _token(op="snapshot", snapshot=snapshot.id)
        # The PUT is sent before the token is returned: once the control plane records the token, Azure
        # holds the snapshot, and a restarted process finds it by the token (see poll).
        self._runner.start(
            token,
            self._snapshot_steps(disk, snapshot, _location(region), snapshot_id, tags),
            first_step_here=True,
        )
        return token

    def _snapshot_steps(
        self, disk: _ArmRef, snapshot: _ArmRef, region: str, snapshot_id: str, tags: dict[str, str]
    ) -> Steps:
        facts = self._disk_facts(disk)
        if facts.location != region:
            raise DriverError(
                "RegionMismatch",
                f"disk {disk.name} is in {facts.location}; Azure keeps a snapshot in its disk's region,"
                f" so it cannot be stored in {region}",
            )
        all_tags = {**facts.traced_tags, **_prefixed(tags), TAG_MANAGED: "true", TAG_SNAPSHOT: snapshot_id}
        body = {
            "location": region,
            "tags": _tag_values(all_tags),
            "sku": {"name": self.settings.snapshot_sku},
            "properties": {
                "creationData": {"createOption": "Copy", "sourceResourceId": facts.id},
                "incremental": False,
            },
        }
        earlier = _get_or_none(lambda: self._client.snapshots.get(snapshot.group, snapshot.name))
        if earlier is not None and _state(earlier) not in _GONE:
            # Taken before (a start repeated after the process died before recording its token): finish
            # with that copy rather than taking a second one.
            created = yield from self._await_existing(snapshot, earlier)
            return _snapshot_result(created)
        if earlier is not None:
            self._delete(snapshot)  # what a failed earlier attempt left: make room for a new copy
        method = self._stepped()
        self._client.snapshots.begin_create_or_update(snapshot.group, snapshot.name, body, polling=method)
        created = yield from self._await_or_discard(method, snapshot)
        return _snapshot_result(created)

    def delete_snapshot(self, handle: str) -> None:
        self._delete(self._ref(handle, "snapshots"))

    def snapshot_exists(self, handle: str) -> bool:
        """Whether Azure holds the snapshot; one that Failed (or is being deleted) holds nothing usable."""
        ref = self._ref(handle, "snapshots")
        snapshot = self._call(lambda: _get_or_none(lambda: self._client.snapshots.get(ref.group, ref.name)))
        return snapshot is not None and _state(snapshot) not in _GONE

    def list_snapshots(self) -> list[StoredSnapshot]:
        """Every snapshot in the resource group tagged `cloudbackup-managed=true` (all pages).

        One whose creation Failed (left by a crash before the driver removed it) traces to no record:
        its `snapshot_id` is None, so reconciliation deletes it as an orphan.
        """

        def collect() -> list[StoredSnapshot]:
            found = []
            for snapshot in self._client.snapshots.list_by_resource_group(self._group):
                tags = snapshot.tags or {}
                if tags.get(TAG_MANAGED) == "true":
                    snapshot_id = None if _state(snapshot) in _GONE else tags.get(TAG_SNAPSHOT)
                    found.append(StoredSnapshot(str(snapshot.id), snapshot_id, _location(snapshot.location)))
            return found

        return self._call(collect)

    # -- restore ----------------------------------------------------------------------------------

    def start_restore(
        self, *, snapshot_handle: str, target_volume_handle: str, region: str, expected_checksum: str | None
    ) -> str:
        """The restored disk replaces the member's disk; the old disk is deleted after the new one succeeded.

        A new managed disk is created from the snapshot in the target's region (createOption `Copy`),
        named `<old disk name>-r<8 hex digits>`, tagged like the old disk and `cloudbackup-restored-from`;
        once Azure reports it Succeeded the old disk is deleted and `volumeHandle` is the new disk's id (the
        new disk keeps the old one's size; a target smaller than the snapshot fails, `TargetTooSmall`). If
        creating the new disk or deleting the old one fails, the new disk is removed and the old one is
        the member's disk still. A snapshot stored in another region than `region` fails with
        `CrossRegionRestoreNotSupported`: Azure cannot create a disk from it there. Azure keeps no content
        digest, so `expected_checksum` is not checked and the result's `checksum` is None.
        """
        snapshot = self._ref(snapshot_handle, "snapshots")
        old = self._ref(target_volume_handle, "disks")
        new = _ArmRef(old.subscription, old.group, "disks", restored_disk_name(old.name, snapshot.name))
        token = _token(op="restore", disk=new.id, replaces=old.id, snapshot=snapshot.id)
        steps = self._restore_steps(snapshot, old, new, _location(region))
        self._runner.start(token, steps, first_step_here=True)
        return token

    def _restore_steps(self, snapshot_ref: _ArmRef, old: _ArmRef, new: _ArmRef, region: str) -> Steps:
        snapshot = self._client.snapshots.get(snapshot_ref.group, snapshot_ref.name)
        if _location(snapshot.location) != region:
            raise DriverError(
                "CrossRegionRestoreNotSupported",
                f"snapshot {snapshot_ref.name} is stored in {_location(snapshot.location)} and the target is"
                f" in {region}; Azure creates a disk only from a snapshot in the same region (and copies only"
                f" incremental snapshots across regions): restore into a cluster whose disks are in"
                f" {_location(snapshot.location)}",
            )
        old_disk = _get_or_none(lambda: self._client.disks.get(old.group, old.name))
        if old_disk is None:
            # A restore started again after a crash may find its own work done: new disk ready, old one gone.
            done = _get_or_none(lambda: self._client.disks.get(new.group, new.name))
            if done is not None and _state(done) == _SUCCEEDED:
                return _restore_result(done)
            raise _target_missing(old)
        if _location(old_disk.location) != region:
            raise DriverError(
                "RegionMismatch", f"the target disk {old.name} is in {old_disk.location}, not in {region}"
            )
        snapshot_size = int(snapshot.properties.disk_size_gb or 0)
        old_size = int(old_disk.properties.disk_size_gb or 0)
        if old_size < snapshot_size:
            raise DriverError(
                "TargetTooSmall",
                f"the target disk {old.name} has {old_size} GiB and the snapshot {snapshot_size} GiB;"
                " grow the target cluster's disks first",
            )
        tags = {
            **(old_disk.tags or {}),
            TAG_RESTORED_FROM: (snapshot.tags or {}).get(TAG_SNAPSHOT, snapshot_ref.name),
        }
        body: dict[str, Any] = {
            "location": region,
            "tags": _tag_values(tags),
            "properties": {
                "creationData": {"createOption": "Copy", "sourceResourceId": str(snapshot.id)},
                # A larger target keeps its size.
                "diskSizeGB": old_size,
            },
        }
        if old_disk.sku is not None and old_disk.sku.name:
            body["sku"] = {"name": old_disk.sku.name}
        earlier = _get_or_none(lambda: self._client.disks.get(new.group, new.name))
        if earlier is not None:
            # An attempt whose token was never recorded (the process died right after Azure accepted it)
            # made this disk already: finish with it rather than asking for it again.
            created = yield from self._await_existing(new, earlier)
        else:
            method = self._stepped()
            self._client.disks.begin_create_or_update(new.group, new.name, body, polling=method)
            created = yield from self._await_or_discard(method, new)
        yield from self._replace(old, new)
        self._remember(created)
        return _restore_result(created)

    def _await_existing(self, ref: _ArmRef, resource: Any) -> Generator[float, None, Any]:
        """Wait for a resource an earlier attempt asked for; one that Failed is removed and reported."""
        while _state(resource) != _SUCCEEDED:
            if _state(resource) in _GONE:
                self._discard(ref)
                raise DriverError(
                    "ProvisioningFailed",
                    f"{ref.kind[:-1]} {ref.name}, asked for by an earlier attempt, has provisioningState"
                    f" {_state(resource).capitalize()} in Azure; it was removed: try again",
                )
            yield self.settings.polling_interval
            resource = getattr(self._client, ref.kind).get(ref.group, ref.name)
        return resource

    def _replace(self, old: _ArmRef, new: _ArmRef) -> Generator[float, None, None]:
        """Delete the old disk; if Azure refuses, drop the new one instead: a restore is all or nothing."""
        self._forget(old)
        method = self._stepped()
        try:
            self._client.disks.begin_delete(old.group, old.name, polling=method)
            yield from _await(method)
        except ResourceNotFoundError:
            return
        except HttpResponseError:
            self._discard(new)
            raise

    def _finish_restore_steps(self, old: _ArmRef, new: _ArmRef, created: Any) -> Steps:
        yield from self._replace(old, new)
        return _restore_result(created)

    # -- operations -------------------------------------------------------------------------------

    def poll(self, token: str) -> OperationStatus:
        """The operation's state: from this process while it runs here, else derived from Azure.

        When Azure cannot be asked right now (unreachable, throttling or 5xx beyond the retries, a refused
        credential), azure-core's exception propagates: it says nothing about the operation, so the
        caller polls again later.
        """
        status = self._runner.status(token)
        if status is not None:
            return status
        try:
            spec = json.loads(token)
            op = spec["op"]
        except (ValueError, KeyError, TypeError):
            return OperationStatus(
                "failed", error_code="InvalidOperationToken", error_message=f"not an azure token: {token!r}"
            )
        try:
            if op == "snapshot":
                return self._derive_snapshot(self._ref(spec["snapshot"], "snapshots"))
            if op == "restore":
                return self._derive_restore(
                    token, self._ref(spec["disk"], "disks"), self._ref(spec["replaces"], "disks")
                )
        except DriverError as exc:
            return OperationStatus("failed", error_code=exc.code, error_message=exc.message)
        return OperationStatus(
            "failed", error_code="InvalidOperationToken", error_message=f"unknown operation {op!r}"
        )

    def _derive_snapshot(self, ref: _ArmRef) -> OperationStatus:
        snapshot = _get_or_none(lambda: self._client.snapshots.get(ref.group, ref.name))
        if snapshot is None:
            return OperationStatus(
                "failed",
                error_code="ResourceNotFound",
                error_message=f"snapshot {ref.name} is not in resource group {ref.group}: it was never"
                " created or has been deleted",
            )
        state = _state(snapshot)
        if state == _SUCCEEDED:
            return OperationStatus("succeeded", result=_snapshot_result(snapshot))
        if state in _FAILED or state == _DELETING:
            return _provisioning_failed(ref, state)
        return OperationStatus("inProgress")

    def _derive_restore(self, token: str, new: _ArmRef, old: _ArmRef) -> OperationStatus:
        disk = _get_or_none(lambda: self._client.disks.get(new.group, new.name))
        if disk is None and _get_or_none(lambda: self._client.disks.get(old.group, old.name)) is None:
            missing = _target_missing(old)  # as the operation itself reported it
            return OperationStatus("failed", error_code=missing.code, error_message=missing.message)
        if disk is None:
            return OperationStatus(
                "failed",
                error_code="ResourceNotFound",
                error_message=f"the restored disk {new.name} is not in resource group {new.group}: it was"
                " never created or has been deleted; the member's disk was left as it was",
            )
        state = _state(disk)
        if state in _FAILED or state == _DELETING:
            return _provisioning_failed(new, state)
        if state != _SUCCEEDED:
            return OperationStatus("inProgress")
        if _get_or_none(lambda: self._client.disks.get(old.group, old.name)) is None:
            return OperationStatus("succeeded", result=_restore_result(disk))
        # The process stopped between the new disk's success and the old one's deletion: finish that here.
        self._runner.start(token, self._finish_restore_steps(old, new, disk))
        return self._runner.status(token) or OperationStatus("inProgress")

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._runner.close()
        self._client.close()
        self._session.close()
        if self._owns_credential:
            close = getattr(self._credential, "close", None)
            if close is not None:
                close()

    # -- helpers ----------------------------------------------------------------------------------

    def _disk_facts(self, ref: _ArmRef) -> _DiskFacts:
        """A disk's id, region and tracing tags: these never change, so one GET per disk is enough."""
        with self._facts_lock:
            facts = self._facts.get(ref.id.lower())
        if facts is None:
            facts = self._remember(self._client.disks.get(ref.group, ref.name))
        return facts

    def _remember(self, disk: Any) -> _DiskFacts:
        tags = {
            k: v for k, v in (disk.tags or {}).items() if k in (TAG_PROJECT, TAG_CLUSTER, TAG_CLUSTER_NAME)
        }
        facts = _DiskFacts(str(disk.id), _location(disk.location), tags)
        with self._facts_lock:
            self._facts[facts.id.lower()] = facts
        return facts

    def _forget(self, ref: _ArmRef) -> None:
        with self._facts_lock:
            self._facts.pop(ref.id.lower(), None)

    def _stepped(self) -> _SteppedPolling:
        return _SteppedPolling(self.settings.polling_interval, self.settings.endpoint)

    def _ref(self, handle: str, kind: str) -> _ArmRef:
        ref = _ArmRef.parse(handle)
        if ref is None or ref.kind != kind:
            raise DriverError("InvalidHandle", f"{handle!r} is not the ARM id of a managed {kind[:-1]}")
        if ref.subscription.lower() != (self.settings.subscription_id or "").lower():
            raise DriverError(
                "InvalidHandle",
                f"{handle!r} is in subscription {ref.subscription}, not in {self.settings.subscription_id}",
            )
        return ref

    def _delete(self, ref: _ArmRef) -> None:
        def delete() -> None:
            try:
                poller = getattr(self._client, ref.kind).begin_delete(ref.group, ref.name)
            except ResourceNotFoundError:
                return
            poller.result()

        self._call(delete)

    def _await_or_discard(self, method: _SteppedPolling, ref: _ArmRef) -> Generator[float, None, Any]:
        """Wait for a create; if Azure reports it Failed, remove the failed resource it leaves behind."""
        try:
            return (yield from _await(method))
        except HttpResponseError:
            if method.status().lower() in _FAILED:
                self._discard(ref)
            raise

    def _discard(self, ref: _ArmRef) -> None:
        """Best effort, without waiting: a failed resource is of no use and would be billed."""
        try:
            getattr(self._client, ref.kind).begin_delete(ref.group, ref.name, polling=False)
        except Exception as exc:  # the failure being reported matters more than this clean-up
            log.warning("could not delete %s after its creation failed: %s", ref.id, exc)

    def _call(self, fn: Any) -> Any:
        """Run a synchronous call; Azure's refusals become DriverError(code, message).

        Transient trouble that outlasted the retries (unreachable, 408, 429, 5xx) propagates as azure-core
        raised it: it is no verdict on the request, which may succeed when tried again.
        """
        try:
            return fn()
        except HttpResponseError as exc:
            if exc.status_code is not None and (exc.status_code in (408, 429) or exc.status_code >= 500):
                raise
            code, message = describe_error(exc)
            raise DriverError(code, message) from exc

    def _check_access(self) -> None:
        where = f"resource group {self._group} of subscription {self.settings.subscription_id}"
        try:
            next(iter(self._client.snapshots.list_by_resource_group(self._group).by_page()), None)
        except ClientAuthenticationError as exc:
            # DefaultAzureCredential appends every credential it tried and why each failed: a page of text.
            reason, _, tried = _one_line(exc).partition(" Attempted credentials:")
            reason = reason.rstrip(".")
            if tried:
                log.debug("DefaultAzureCredential tried:%s", tried)
                reason += " (CLOUDBACKUP_LOG_LEVEL=DEBUG logs each credential it tried)"
            raise AzureConfigurationError(
                f"the azure driver could not authenticate to {self.settings.endpoint}: {reason}. Set"
                " CLOUDBACKUP_AZURE_ACCESS_TOKEN (az account get-access-token --query accessToken -o tsv) or"
                " configure azure-identity's DefaultAzureCredential (az login, AZURE_CLIENT_ID/"
                "AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or a managed identity)"
            ) from exc
        except HttpResponseError as exc:
            code, message = describe_error(exc)
            hint = {
                "ResourceGroupNotFound": f"create the resource group {self._group} or name another one",
                "SubscriptionNotFound": "check AZURE_SUBSCRIPTION_ID",
                "AuthorizationFailed": f"give the identity a role over disks and snapshots in {where}",
            }.get(code, f"check the settings for {where}")
            raise AzureConfigurationError(
                f"the azure driver cannot use {where} at {self.settings.endpoint}: {code}: {message} ({hint})"
            ) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise AzureConfigurationError(
                f"the azure driver cannot reach {self.settings.endpoint}: {_one_line(exc)}"
                " (check CLOUDBACKUP_AZURE_ENDPOINT, the network, and REQUESTS_CA_BUNDLE behind a TLS proxy)"
            ) from exc


class _SteppedPolling(ARMPolling):
    """azure-mgmt-core's ARM polling, driven one status request at a time by the driver's runner.

    azure-core's LROPoller normally polls on a thread of its own per operation; reporting "finished"
    until the runner takes over keeps it from starting one, and the runner then asks Azure for the
    status between timer waits. The algorithms (Azure-AsyncOperation, Location, provisioningState),
    Retry-After between polls and the final GET stay azure-mgmt-core's own.
    """

    def __init__(self, interval: float, endpoint: str) -> None:
        super().__init__(interval, path_format_arguments={"endpoint": endpoint})
        self._driven = False

    def finished(self) -> bool:
        return super().finished() if self._driven else True

    def take_over(self) -> None:
        self._driven = True

    def refresh(self) -> None:
        """One status request; a bad answer fails the operation as azure-core's own loop would."""
        try:
            self.update_status()
        except (BadStatus, BadResponse) as err:
            raise HttpResponseError(response=self._pipeline_response.http_response, error=err) from err

    def delay(self) -> float:
        return self._extract_delay()

    def outcome(self) -> Any:
        """The final resource, or Azure's error (code and message of the operation) as HttpResponseError."""
        self.run()  # finished already: raises on failure, else does the final GET where one is needed
        return self.resource()


def _await(method: _SteppedPolling) -> Generator[float, None, Any]:
    method.take_over()
    while not method.finished():
        yield method.delay()
        method.refresh()
    return method.outcome()


@dataclass(frozen=True)
class _DiskFacts:
    id: str
    location: str
    traced_tags: dict[str, str]


@dataclass(frozen=True)
class _ArmRef:
    subscription: str
    group: str
    kind: str
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> _ArmRef | None:
        match = _ARM_ID.match(resource_id or "")
        if not match:
            return None
        return cls(match["sub"], match["group"], match["kind"].lower(), match["name"])

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.group}"
            f"/providers/Microsoft.Compute/{self.kind}/{self.name}"
        )


def snapshot_name(snapshot_id: str) -> str:
    """The Azure snapshot's name for a snapshot record."""
    return _azure_name(f"cb-snap-{snapshot_id}")


def restored_disk_name(old_disk_name: str, snapshot: str) -> str:
    """`<member disk>-r<8 hex>`: deterministic, so a restore started again finds its own disk."""
    base = _RESTORED_SUFFIX.sub("", old_disk_name)
    digest = hashlib.sha256(f"{snapshot}|{old_disk_name}".encode()).hexdigest()
    suffix = f"-r{digest[:8]}"
    if f"{base}{suffix}" == old_disk_name:  # a 1 in 2**32 coincidence; a name must differ from the old one
        suffix = f"-r{digest[8:16]}"
    return base[: _NAME_MAX - len(suffix)] + suffix


def describe_error(exc: BaseException) -> tuple[str, str]:
    """Azure's error code and message for an exception, or the closest honest description."""
    if isinstance(exc, DriverError):
        return exc.code, exc.message
    if isinstance(exc, HttpResponseError):
        error = exc.error
        if error is not None and error.code:
            return str(error.code), str(error.message or exc.message)
        if exc.status_code is None:
            return "AuthenticationFailed" if isinstance(
                exc, ClientAuthenticationError
            ) else "AzureError", _one_line(exc)
        return f"Http{exc.status_code}", _one_line(exc)
    if isinstance(exc, ServiceRequestError):
        return "ServiceUnreachable", _one_line(exc)
    if isinstance(exc, ServiceResponseError):
        return "ServiceResponseError", _one_line(exc)
    return type(exc).__name__, _one_line(exc)


def _target_missing(old: _ArmRef) -> DriverError:
    return DriverError("ResourceNotFound", f"the disk to restore onto, {old.id}, does not exist")


def _snapshot_result(snapshot: Any) -> dict[str, object]:
    props = snapshot.properties
    size = int(props.disk_size_bytes or (props.disk_size_gb or 0) * GIB)
    # checksum: Azure exposes no digest of a snapshot's content.
    return {"handle": str(snapshot.id), "storageSizeBytes": size, "diskSizeBytes": size, "checksum": None}


def _restore_result(disk: Any) -> dict[str, object]:
    return {"volumeHandle": str(disk.id), "checksum": None}


def _provisioning_failed(ref: _ArmRef, state: str) -> OperationStatus:
    if state == _DELETING:
        code, what = "ResourceDeleting", "is being deleted"
    else:
        code, what = "ProvisioningFailed", f"has provisioningState {state.capitalize()}"
    return OperationStatus(
        "failed", error_code=code, error_message=f"{ref.kind[:-1]} {ref.name} {what} in Azure"
    )


def _state(resource: Any) -> str:
    return str(resource.properties.provisioning_state or "").lower()


def _get_or_none(fetch: Any) -> Any:
    try:
        return fetch()
    except ResourceNotFoundError:
        return None


def _token(**fields: str) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _location(region: str) -> str:
    """Azure's location name: "East US 2" and "eastus2" are the same place."""
    return region.replace(" ", "").lower()


def _azure_name(raw: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "-", raw)
    if len(name) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{name[: _NAME_MAX - 9]}-{digest}"


def _prefixed(tags: dict[str, str]) -> dict[str, str]:
    return {(k if k.startswith(TAG_PREFIX) else f"{TAG_PREFIX}{k}"): v for k, v in tags.items()}


def _tag_values(tags: dict[str, str]) -> dict[str, str]:
    return {k: str(v)[:_TAG_VALUE_MAX] for k, v in tags.items()}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
