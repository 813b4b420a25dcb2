"""One module per resource type, named after the type without its cloudbackup_ prefix."""
