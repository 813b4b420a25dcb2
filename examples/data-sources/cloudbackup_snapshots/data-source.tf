data "cloudbackup_snapshots" "example" {
  project_id   = cloudbackup_project.example.id
  cluster_name = cloudbackup_cluster_backup.example.cluster_name
}

output "newest_snapshot" {
  value = data.cloudbackup_snapshots.example.snapshots[0].id
}
