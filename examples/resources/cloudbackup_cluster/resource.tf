resource "cloudbackup_cluster" "example" {
  project_id    = cloudbackup_project.example.id
  name          = "payments-db"
  provider_name = "AZURE"
  instance_size = "M10"
  disk_size_gb  = 20

  # The preferred region (priority 7) is where snapshots are stored.
  region {
    name     = "eastus2"
    priority = 7
  }

  region {
    name            = "westus2"
    priority        = 6
    electable_nodes = 2
  }
}
