output "cluster_id" {
  description = "Identifier of the cluster: PROJECT_ID/NAME."
  value       = cloudbackup_cluster.this.id
}

output "cluster_name" {
  description = "Name of the cluster, once its backup is enabled (use it for snapshots and restores)."
  value       = cloudbackup_cluster_backup.this.cluster_name
}

output "storage_region" {
  description = "Region where the cluster's snapshots are stored."
  value       = cloudbackup_cluster_backup.this.storage_region
}

output "snapshot_ids" {
  description = "Identifiers of the cluster's stored snapshots, newest first, as of the last refresh."
  value       = cloudbackup_cluster_backup.this.snapshot_ids
}
