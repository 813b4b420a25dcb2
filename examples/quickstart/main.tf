# A project, an Azure M10 replica set in two regions with backup enabled in the same apply, and an
# on-demand snapshot. The provider reads CLOUDBACKUP_URL, CLOUDBACKUP_PUBLIC_KEY and
# CLOUDBACKUP_PRIVATE_KEY from the environment.

terraform {
  required_version = ">= 1.0"
  required_providers {
    cloudbackup = {
      source = "cloudbackup/cloudbackup"
    }
  }
}

provider "cloudbackup" {}

resource "cloudbackup_project" "quickstart" {
  name = "quickstart"
}

resource "cloudbackup_cluster" "orders" {
  project_id    = cloudbackup_project.quickstart.id
  name          = "orders"
  provider_name = "AZURE"
  instance_size = "M10"

  region {
    name     = "eastus2"
    priority = 7
  }

  region {
    name     = "westus2"
    priority = 6
  }
}

resource "cloudbackup_cluster_backup" "orders" {
  project_id   = cloudbackup_project.quickstart.id
  cluster_name = cloudbackup_cluster.orders.name
}

resource "cloudbackup_snapshot" "first" {
  project_id   = cloudbackup_project.quickstart.id
  cluster_name = cloudbackup_cluster_backup.orders.cluster_name
  description  = "taken by the quickstart"
}

# Read after the on-demand snapshot exists, so the list holds it and the first scheduled one.
data "cloudbackup_snapshots" "orders" {
  project_id   = cloudbackup_project.quickstart.id
  cluster_name = cloudbackup_cluster_backup.orders.cluster_name
  depends_on   = [cloudbackup_snapshot.first]
}
