"""The plugin's entry point (terraform-provider-cloudbackup): the handshake comes first."""

from __future__ import annotations

import os
import sys

GET_PROVIDER_SCHEMA = "/tfplugin6.Provider/GetProviderSchema"
SHUTDOWN = "/plugin.GRPCController/Shutdown"


class _Handlers:
    """The handler table, built by the first call that needs more than the schema (or Shutdown).

    Terraform's first start of a run only asks for the schema: a cold start answers it from the bytes
    kept on disk (provider.runtime.schema_cache) and never imports the provider.
    """

    def __init__(self) -> None:
        import threading

        self._table: dict | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict:
        with self._lock:
            if self._table is None:
                from provider.service import ProviderService

                self._table = ProviderService().handlers()
            return self._table

    def warm_steps(self) -> list:
        """Imports to do while Terraform has not connected yet, heaviest first; the last builds the table.

        Between reading the handshake and connecting, Terraform spends 10-20 ms of its own; the server
        runs these steps then, one at a time, and stops as soon as the connection comes, so that the TLS
        handshake never waits for an import (a thread importing meanwhile slowed it down threefold).
        """
        import importlib

        # hpack first: every start needs it to read Terraform's first request, the schema-only one too.
        modules = (
            "hpack",
            "tf.gen.tfplugin_pb2",
            "provider.schema",
            "msgpack",
            "provider.client",
            "provider.plugin",
        )
        return [lambda name=name: importlib.import_module(name) for name in modules] + [self._load]

    def get(self, path: str, default=None):
        if path == GET_PROVIDER_SCHEMA:
            from provider.runtime import schema_cache

            return lambda _: schema_cache.response()
        if path == SHUTDOWN:
            return lambda _: b""
        return self._load().get(path, default)


def _handlers() -> _Handlers:
    return _Handlers()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from provider.runtime import server

    if not server.launched_by_terraform():
        sys.stderr.write(server.NOT_A_PLUGIN)
        return 1
    # Which Terraform started us (provider.destroy_run reads its command line).
    os.environ["CLOUDBACKUP_TERRAFORM_PID"] = str(os.getppid())
    import _signal

    # Served in this process: a terminate leaves no socket behind; interrupts are Terraform's to handle.
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    _signal.signal(_signal.SIGTERM, lambda *_: (server.remove_socket(), os._exit(1)))
    server.serve(_handlers, orphaned=server.parent_gone())
    # Terraform waits for the process to end after Shutdown: skip the interpreter's slow teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
