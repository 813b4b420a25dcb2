"""cloudbackup's control plane: the shim that keeps projects, clusters, backups, snapshots and restores."""
