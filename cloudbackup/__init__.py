"""The `cloudbackup` command: the one package that knows both the shim and the provider."""
