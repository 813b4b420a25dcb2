resource "cloudbackup_snapshot" "before_migration" {
  project_id   = cloudbackup_project.example.id
  cluster_name = cloudbackup_cluster_backup.example.cluster_name
  description  = "before the 2024-06 schema migration"

  timeouts {
    create = "20m"
  }
}
