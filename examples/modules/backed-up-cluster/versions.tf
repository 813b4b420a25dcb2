terraform {
  required_version = ">= 1.0"
  required_providers {
    cloudbackup = {
      source = "cloudbackup/cloudbackup"
    }
  }
}
