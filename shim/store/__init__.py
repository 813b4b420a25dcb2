"""The database: tables, engine and sessions, migrations, and the queries the service needs."""

from shim.store.engine import Store, default_url

__all__ = ["Store", "default_url"]
