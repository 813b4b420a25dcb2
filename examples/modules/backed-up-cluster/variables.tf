variable "project_id" {
  type        = string
  description = "ID of the project that owns the cluster (24 hexadecimal digits)."

  validation {
    condition     = can(regex("^[0-9a-f]{24}$", var.project_id))
    error_message = "The project_id must be a project ID: 24 lowercase hexadecimal digits."
  }
}

variable "name" {
  type        = string
  description = "Name of the cluster."

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$", var.name))
    error_message = "The name must be letters, digits and hyphens, start with a letter or digit, and have at most 64 characters."
  }
}

variable "instance_size" {
  type        = string
  default     = "M10"
  description = "Instance size of the cluster; cloud provider snapshots need M10 or larger."

  validation {
    condition     = contains(["M10", "M20", "M30", "M40", "M50", "M60", "M80", "M90", "M140", "M200", "M300", "M400", "M600", "M700"], var.instance_size)
    error_message = "The instance_size must be M10 or larger: cloud provider snapshots are not available for M0, M2 and M5."
  }
}

variable "disk_size_gb" {
  type        = number
  default     = 10
  description = "Size of each member's volume in GiB."

  validation {
    condition     = var.disk_size_gb >= 1 && var.disk_size_gb <= 4096 && floor(var.disk_size_gb) == var.disk_size_gb
    error_message = "The disk_size_gb must be a whole number from 1 to 4096."
  }
}

variable "regions" {
  type = list(object({
    name            = string
    priority        = number
    electable_nodes = number
  }))
  default = [
    { name = "eastus2", priority = 7, electable_nodes = 3 },
  ]
  description = "Azure regions of the cluster; the one with priority 7 is preferred and stores the snapshots."

  validation {
    condition     = length([for r in var.regions : r if r.priority == 7]) == 1
    error_message = "Exactly one region must have priority 7 (the preferred region, where snapshots are stored)."
  }

  validation {
    condition     = length(distinct([for r in var.regions : r.name])) == length(var.regions)
    error_message = "Each region may be listed once."
  }

  validation {
    condition     = length(distinct([for r in var.regions : r.priority])) == length(var.regions)
    error_message = "No two regions may share a priority."
  }

  validation {
    condition     = alltrue([for r in var.regions : r.priority >= 1 && r.priority <= 7 && r.electable_nodes >= 1 && r.electable_nodes <= 7])
    error_message = "Priorities and electable_nodes run from 1 to 7."
  }
}

variable "backup_method" {
  type        = string
  default     = "CLOUD_PROVIDER_SNAPSHOTS"
  description = "Backup method; every cluster of a project must use the project's first method."

  validation {
    condition     = contains(["CLOUD_PROVIDER_SNAPSHOTS", "CONTINUOUS"], var.backup_method)
    error_message = "The backup_method must be CLOUD_PROVIDER_SNAPSHOTS or CONTINUOUS."
  }
}

variable "backup_timeout" {
  type        = string
  default     = "60m"
  description = "How long enabling backup may wait for the first snapshot, such as \"30m\" or \"2h\"."

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$", var.backup_timeout))
    error_message = "The backup_timeout must be a duration such as 30m or 2h."
  }
}
