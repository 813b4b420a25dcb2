resource "cloudbackup_cluster_backup" "example" {
  project_id   = cloudbackup_project.example.id
  cluster_name = cloudbackup_cluster.example.name
  method       = "CLOUD_PROVIDER_SNAPSHOTS"

  # Enabling backup waits for the first snapshot to be stored.
  timeouts {
    create = "30m"
  }
}
