terraform {
  required_providers {
    cloudbackup = {
      source = "cloudbackup/cloudbackup"
    }
  }
}

# Every argument may come from the environment instead:
# CLOUDBACKUP_URL, CLOUDBACKUP_PUBLIC_KEY and CLOUDBACKUP_PRIVATE_KEY.
provider "cloudbackup" {
  url         = "http://127.0.0.1:8080"
  public_key  = var.cloudbackup_public_key
  private_key = var.cloudbackup_private_key
}

variable "cloudbackup_public_key" {
  type        = string
  description = "Public part of the API key (`cloudbackup keys create` prints a pair)."
}

variable "cloudbackup_private_key" {
  type        = string
  sensitive   = true
  description = "Private part of the API key."
}
