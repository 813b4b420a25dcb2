data "cloudbackup_backup_status" "project" {
  project_id = cloudbackup_project.example.id
}

output "oldest_newest_snapshot_age_hours" {
  value = data.cloudbackup_backup_status.project.max_snapshot_age_seconds / 3600
}
