"""One module per data source type, named after the type without its cloudbackup_ prefix."""
