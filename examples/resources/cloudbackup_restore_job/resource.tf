# Restores the snapshot onto every member volume of the target cluster. The resource is created once
# the restore completed; destroying it only forgets the job (a restore cannot be undone).
resource "cloudbackup_restore_job" "to_staging" {
  project_id          = cloudbackup_project.example.id
  cluster_name        = cloudbackup_cluster.example.name
  snapshot_id         = cloudbackup_snapshot.before_migration.id
  target_cluster_name = cloudbackup_cluster.staging.name

  timeouts {
    create = "2h"
  }
}
