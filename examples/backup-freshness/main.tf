# Backup freshness as a Terraform check: every plan (and apply) of this configuration warns when a
# cluster of the project has no completed snapshot newer than 26 hours, such as after a missed day.
#   terraform plan -var project_id=...
# Needs Terraform 1.5 or newer (check blocks). Run it on a schedule, or add the check block to the
# configuration that manages the clusters.

terraform {
  required_version = ">= 1.5"
  required_providers {
    cloudbackup = {
      source = "cloudbackup/cloudbackup"
    }
  }
}

provider "cloudbackup" {}

variable "project_id" {
  type        = string
  description = "ID of the project whose clusters are checked."
}

variable "max_age_hours" {
  type        = number
  default     = 26
  description = "Oldest a cluster's newest completed snapshot may be: the 24-hour schedule plus slack."
}

check "backups_are_fresh" {
  # A data source scoped to the check is read at every plan, so the check sees the backups as they are.
  data "cloudbackup_backup_status" "project" {
    project_id = var.project_id
  }

  assert {
    condition = alltrue([
      for c in data.cloudbackup_backup_status.project.clusters :
      # Terraform does not short-circuit &&: a conditional keeps null away from the comparison.
      c.snapshot_age_seconds == null ? false : c.snapshot_age_seconds <= var.max_age_hours * 3600
      if c.method == "CLOUD_PROVIDER_SNAPSHOTS"
    ])
    error_message = "Stale backups: ${join(", ", [
      for c in data.cloudbackup_backup_status.project.clusters :
      "${c.cluster_name} (newest completed snapshot ${c.snapshot_age_seconds == null ? "none" : "${floor(c.snapshot_age_seconds / 3600)} hours old"}, last snapshot ${coalesce(c.last_snapshot_status, "none")})"
      if c.method == "CLOUD_PROVIDER_SNAPSHOTS" && (c.snapshot_age_seconds == null ? true : c.snapshot_age_seconds > var.max_age_hours * 3600)
    ])}."
  }
}
