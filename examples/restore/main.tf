# A restore drill: a second Azure replica set, sized like the source, receives a stored snapshot.
# Run after examples/quickstart, with its project ID and one of its snapshot IDs:
#   terraform apply -var project_id=... -var snapshot_id=...

terraform {
  required_version = ">= 1.0"
  required_providers {
    cloudbackup = {
      source = "cloudbackup/cloudbackup"
    }
  }
}

provider "cloudbackup" {}

variable "project_id" {
  type        = string
  description = "ID of the project that holds the source cluster and the restore target."

  validation {
    condition     = can(regex("^[0-9a-f]{24}$", var.project_id))
    error_message = "The project_id must be a project ID: 24 lowercase hexadecimal digits."
  }
}

variable "source_cluster_name" {
  type        = string
  default     = "orders"
  description = "Name of the cluster whose snapshot is restored."
}

variable "snapshot_id" {
  type        = string
  description = "ID of the completed snapshot to restore."

  validation {
    condition     = can(regex("^[0-9a-f]{24}$", var.snapshot_id))
    error_message = "The snapshot_id must be a snapshot ID: 24 lowercase hexadecimal digits."
  }
}

resource "cloudbackup_cluster" "restored" {
  project_id    = var.project_id
  name          = "${var.source_cluster_name}-restored"
  provider_name = "AZURE"
  instance_size = "M10"

  region {
    name     = "eastus2"
    priority = 7
  }
}

resource "cloudbackup_restore_job" "drill" {
  project_id          = var.project_id
  cluster_name        = var.source_cluster_name
  snapshot_id         = var.snapshot_id
  target_cluster_name = cloudbackup_cluster.restored.name

  timeouts {
    create = "2h"
  }
}

output "restore_status" {
  description = "Status of the restore job."
  value       = cloudbackup_restore_job.drill.status
}

output "restored_cluster" {
  description = "Name of the cluster that received the snapshot."
  value       = cloudbackup_cluster.restored.name
}
