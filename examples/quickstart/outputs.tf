output "storage_region" {
  description = "Region where the cluster's snapshots are stored (its preferred region)."
  value       = cloudbackup_cluster_backup.orders.storage_region
}

output "snapshot_ids" {
  description = "Identifiers of the cluster's stored snapshots, newest first."
  value       = data.cloudbackup_snapshots.orders.snapshots[*].id
}

output "on_demand_snapshot_id" {
  description = "Identifier of the on-demand snapshot."
  value       = cloudbackup_snapshot.first.id
}
