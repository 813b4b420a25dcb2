# A restore drill as code: restore the newest completed snapshot of a cluster into a scratch cluster,
# check that it completed (on the local driver a restore completes only if the snapshot still matches
# the checksum recorded when it was taken, and the restored volumes digest to it), and record how long
# it took. Then remove the scratch cluster. One apply and one destroy:
#   terraform apply -auto-approve -var project_id=... -var source_cluster_name=orders
#   terraform destroy -auto-approve -var project_id=... -var source_cluster_name=orders

terraform {
  required_version = ">= 1.2"
  required_providers {
    cloudbackup = {
      source = "cloudbackup/cloudbackup"
    }
  }
}

provider "cloudbackup" {}

variable "project_id" {
  type        = string
  description = "ID of the project that holds the source cluster; the scratch cluster is created there too."
}

variable "source_cluster_name" {
  type        = string
  description = "Name of the cluster whose newest completed snapshot is restored."
}

variable "region" {
  type        = string
  default     = "eastus2"
  description = "Region of the scratch cluster: the source's preferred region, where its snapshots are stored."
}

variable "disk_size_gb" {
  type        = number
  default     = 10
  description = "Volume size of the scratch cluster: at least the source's (R10)."
}

data "cloudbackup_snapshots" "source" {
  project_id   = var.project_id
  cluster_name = var.source_cluster_name
}

locals {
  completed = [for s in data.cloudbackup_snapshots.source.snapshots : s if s.status == "completed"]
}

resource "cloudbackup_cluster" "scratch" {
  project_id    = var.project_id
  name          = "${var.source_cluster_name}-drill"
  provider_name = "AZURE"
  instance_size = "M10"
  disk_size_gb  = var.disk_size_gb

  region {
    name     = var.region
    priority = 7
  }
}

resource "cloudbackup_restore_job" "drill" {
  project_id          = var.project_id
  cluster_name        = var.source_cluster_name
  snapshot_id         = try(local.completed[0].id, null)
  target_cluster_name = cloudbackup_cluster.scratch.name

  timeouts {
    create = "2h"
  }

  lifecycle {
    precondition {
      condition     = length(local.completed) > 0
      error_message = "Cluster ${var.source_cluster_name} has no completed snapshot to restore."
    }
    postcondition {
      condition     = self.status == "completed"
      error_message = "The restore drill did not complete: ${self.status}."
    }
  }
}

output "restored_snapshot_id" {
  description = "The snapshot the drill restored."
  value       = cloudbackup_restore_job.drill.snapshot_id
}

output "restore_duration_seconds" {
  description = "How long the restore took: track it to know the recovery time."
  value       = cloudbackup_restore_job.drill.duration_seconds
}
