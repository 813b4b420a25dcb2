"""The rules R1-R11 as pure functions, each on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contract import rules
from contract.rules import ClusterShape, RegionSpec, SnapshotFacts

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
AZURE_M10 = ClusterShape("rs", "AZURE", "M10")


@pytest.mark.parametrize("tier", ["M0", "M2", "M5"])
def test_r1_refuses_the_shared_tiers(tier: str) -> None:
    refusal = rules.tier_refusal(ClusterShape("rs", "AZURE", tier))
    assert refusal is not None
    assert (refusal.code, refusal.field, refusal.rule, refusal.status) == (
        "TIER_NOT_SUPPORTED",
        "/providerSettings/instanceSizeName",
        "R1",
        400,
    )
    assert tier in refusal.detail and "M10 or larger" in refusal.detail


@pytest.mark.parametrize("tier", ["M10", "M30", "M700"])
def test_r1_accepts_dedicated_tiers(tier: str) -> None:
    assert rules.tier_refusal(ClusterShape("rs", "AZURE", tier)) is None


@pytest.mark.parametrize("provider", ["AWS", "GCP"])
def test_r2_refuses_other_providers_than_azure(provider: str) -> None:
    refusal = rules.provider_refusal(ClusterShape("rs", provider, "M10"))
    assert refusal is not None and refusal.code == "PROVIDER_NOT_SUPPORTED" and provider in refusal.detail
    assert rules.provider_refusal(AZURE_M10) is None


@pytest.mark.parametrize("kind", ["SHARDED", "GEOSHARDED"])
def test_r3_refuses_sharded_clusters(kind: str) -> None:
    refusal = rules.topology_refusal(ClusterShape("rs", "AZURE", "M10", kind))
    assert refusal is not None and refusal.code == "SHARDED_NOT_SUPPORTED" and refusal.field == "/clusterType"
    assert rules.topology_refusal(AZURE_M10) is None


def test_r4_locks_a_project_to_its_first_method_naming_it_and_how_to_unlock() -> None:
    refusal = rules.method_lock_refusal(
        "CLOUD_PROVIDER_SNAPSHOTS", {"b": "CONTINUOUS", "a": "CONTINUOUS"}, project_name="shop"
    )
    assert refusal is not None
    assert (refusal.code, refusal.status, refusal.rule) == ("BACKUP_METHOD_LOCKED", 409, "R4")
    assert (
        "CONTINUOUS" in refusal.detail
        and "'a', 'b'" in refusal.detail
        and "disable backup on" in refusal.detail
    )


def test_r4_allows_the_method_the_project_is_locked_to_and_an_unlocked_project() -> None:
    assert rules.method_lock_refusal("CONTINUOUS", {"a": "CONTINUOUS"}, project_name="p") is None
    assert rules.method_lock_refusal("CONTINUOUS", {}, project_name="p") is None


def test_r4_refuses_switching_the_method_of_a_cluster_in_place() -> None:
    refusal = rules.method_lock_refusal(
        "CONTINUOUS", {}, project_name="p", current="CLOUD_PROVIDER_SNAPSHOTS"
    )
    assert refusal is not None and "disable backup first" in refusal.detail


def test_r5_every_reason_is_reported_most_specific_first() -> None:
    sharded_aws = ClusterShape("rs", "AWS", "M5", "SHARDED")
    codes = [
        r.code
        for r in rules.enable_refusals(
            sharded_aws, "CLOUD_PROVIDER_SNAPSHOTS", {"x": "CONTINUOUS"}, project_name="p"
        )
    ]
    assert codes == [
        "TIER_NOT_SUPPORTED",
        "PROVIDER_NOT_SUPPORTED",
        "SHARDED_NOT_SUPPORTED",
        "BACKUP_METHOD_LOCKED",
    ]


def test_continuous_is_not_held_to_the_cluster_shape_rules() -> None:
    assert (
        rules.enable_refusals(ClusterShape("rs", "AWS", "M5", "SHARDED"), "CONTINUOUS", {}, project_name="p")
        == []
    )


def test_r6_the_preferred_region_is_the_one_of_highest_priority() -> None:
    regions = {"westus2": RegionSpec(6), "eastus2": RegionSpec(7), "uksouth": RegionSpec(5)}
    assert rules.preferred_region(regions) == "eastus2"
    assert rules.preferred_region({"westeurope": RegionSpec()}) == "westeurope"


def test_regions_must_be_azure_regions_for_azure_clusters_with_a_suggestion() -> None:
    (refusal,) = rules.region_refusals("AZURE", {"eastus3": RegionSpec()})
    assert (
        refusal.code == "INVALID_REGION"
        and refusal.field.endswith("/eastus3")
        and "Did you mean" in refusal.detail
    )
    assert rules.region_refusals("AWS", {"us-east-1": RegionSpec()}) == []


def test_regions_need_exactly_one_preferred_and_distinct_priorities() -> None:
    assert [r.code for r in rules.region_refusals("AZURE", {"eastus2": RegionSpec(6)})] == [
        "INVALID_REGION_PRIORITY"
    ]
    two = rules.region_refusals("AZURE", {"eastus2": RegionSpec(7), "westus2": RegionSpec(7)})
    assert len(two) == 1 and "all have" in two[0].detail
    shared = rules.region_refusals(
        "AZURE", {"eastus2": RegionSpec(7), "westus2": RegionSpec(5), "uksouth": RegionSpec(5)}
    )
    assert len(shared) == 1 and "share priority 5" in shared[0].detail
    assert rules.duplicate_region_refusal(["eastus2", "westus2", "eastus2"]) is not None
    assert rules.duplicate_region_refusal(["eastus2", "westus2"]) is None


def test_volumes_grow_but_do_not_shrink() -> None:
    assert rules.disk_size_refusal(10, 20) is None and rules.disk_size_refusal(10, 10) is None
    refusal = rules.disk_size_refusal(20, 10)
    assert refusal is not None and refusal.field == "/diskSizeGB"


def test_r7_slots_are_the_reference_plus_whole_days_without_drift() -> None:
    assert rules.slot_at_or_before(T0, T0 + 3 * DAY + timedelta(hours=5)) == T0 + 3 * DAY
    assert rules.next_slot_after(T0, T0 + 3 * DAY) == T0 + 4 * DAY
    assert rules.slots_between(T0, T0, T0 + 3 * DAY) == [T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]


def test_r7_a_due_slot_after_downtime_is_one_catch_up_then_the_next_future_slot() -> None:
    assert rules.due_slot(T0, T0 + DAY, T0 + DAY - timedelta(seconds=1)) is None
    assert rules.due_slot(T0, T0 + DAY, T0 + DAY) == (T0 + DAY, T0 + 2 * DAY)
    assert rules.due_slot(T0, T0 + DAY, T0 + 5 * DAY + timedelta(hours=1)) == (T0 + 5 * DAY, T0 + 6 * DAY)


def facts(*specs: tuple[int, str, bool]) -> list[SnapshotFacts]:
    return [SnapshotFacts(f"s{day}", T0 + day * DAY, status, scheduled) for day, status, scheduled in specs]


def test_r8_keeps_the_last_three_completed_scheduled_snapshots() -> None:
    expired = rules.expired_snapshots(facts(*[(d, "completed", True) for d in range(6)]))
    assert sorted(expired) == ["s0", "s1", "s2"]


def test_r8_a_failed_snapshot_neither_counts_nor_pushes_out_a_good_one() -> None:
    snapshots = facts(
        (0, "completed", True), (1, "completed", True), (2, "failed", True), (3, "completed", True)
    )
    assert rules.expired_snapshots(snapshots) == []
    snapshots += facts((4, "completed", True))
    assert rules.expired_snapshots(snapshots) == ["s0"]


def test_r8_never_expires_on_demand_snapshots() -> None:
    snapshots = facts(*[(d, "completed", True) for d in range(4)], (-5, "completed", False))
    assert rules.expired_snapshots(snapshots) == ["s0"]


def test_r10_restores_a_completed_snapshot_into_a_large_enough_azure_cluster() -> None:
    ok = rules.restore_refusals(
        snapshot_id="s",
        snapshot_status="completed",
        snapshot_disk_bytes=10 << 30,
        target=AZURE_M10,
        target_disk_gb=10,
    )
    assert ok == []
    refused = rules.restore_refusals(
        snapshot_id="s",
        snapshot_status="failed",
        snapshot_disk_bytes=20 << 30,
        target=ClusterShape("t", "GCP", "M10"),
        target_disk_gb=10,
    )
    assert [r.code for r in refused] == ["RESTORE_INVALID"] * 3


def test_r10_refuses_a_restore_across_regions_where_storage_cannot_do_it_naming_both_regions() -> None:
    refusal = rules.restore_region_refusal(
        "eastus2", ["eastus2", "westus2", "westus2", "centralus"], False, target_name="dst"
    )
    assert refusal is not None
    assert (refusal.code, refusal.field, refusal.rule, refusal.status) == (
        "RESTORE_INVALID",
        "/targetClusterName",
        "R10",
        400,
    )
    assert "stored in eastus2" in refusal.detail
    assert "'dst' has members in centralus, westus2:" in refusal.detail
    assert "Restore into a cluster whose members are all in eastus2" in refusal.detail


def test_r10_allows_a_same_region_restore_and_any_restore_where_storage_crosses_regions() -> None:
    assert rules.restore_region_refusal("eastus2", ["eastus2", "eastus2"], False) is None
    assert rules.restore_region_refusal("eastus2", ["westus2"], True) is None
    assert rules.restore_region_refusal("eastus2", [], False) is None
    unnamed = rules.restore_region_refusal("eastus2", ["westus2"], False)
    assert unnamed is not None and "the target cluster has members in westus2" in unnamed.detail


def test_r11_only_binds_clusters_with_cloud_provider_snapshots() -> None:
    m5 = ClusterShape("rs", "AZURE", "M5")
    assert [r.code for r in rules.change_refusals(m5, "CLOUD_PROVIDER_SNAPSHOTS")] == ["TIER_NOT_SUPPORTED"]
    assert "Disable backup first" in rules.change_refusals(m5, "CLOUD_PROVIDER_SNAPSHOTS")[0].detail
    assert rules.change_refusals(m5, "CONTINUOUS") == []
    assert rules.change_refusals(m5, None) == []
