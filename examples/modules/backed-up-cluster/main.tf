# An Azure replica set with cloud provider snapshots enabled, as one unit.

resource "cloudbackup_cluster" "this" {
  project_id    = var.project_id
  name          = var.name
  provider_name = "AZURE"
  instance_size = var.instance_size
  cluster_type  = "REPLICASET"
  disk_size_gb  = var.disk_size_gb

  dynamic "region" {
    for_each = var.regions
    content {
      name            = region.value.name
      priority        = region.value.priority
      electable_nodes = region.value.electable_nodes
    }
  }
}

resource "cloudbackup_cluster_backup" "this" {
  project_id   = var.project_id
  cluster_name = cloudbackup_cluster.this.name
  method       = var.backup_method

  timeouts {
    create = var.backup_timeout
  }
}
