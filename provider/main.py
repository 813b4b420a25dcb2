"""The plugin's entry point (terraform-provider-cloudbackup): the handshake comes first."""

from __future__ import annotations

import os
import sys

GET_PROVIDER_SCHEMA = "/tfplugin6.Provider/GetProviderSchema"
SHUTDOWN = "/plugin.GRPCController/Shutdown"


class _Handlers:
    """The handler table, built by the first call that needs more than the schema (or Shutdown).

    Terraform's first start of a run only asks for the schema: a cold start answers it from the bytes
    kept on disk (provider.schema_cache) and never imports the provider.
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

    def get(self, path: str, default=None):
        if self._table is None:
            if path == GET_PROVIDER_SCHEMA:
                from provider import schema_cache

                return lambda _: schema_cache.response()
            if path == SHUTDOWN:
                return lambda _: b""
        return self._load().get(path, default)


def _handlers() -> _Handlers:
    return _Handlers()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--zygote" in argv:
        from provider import zygote

        zygote.serve_forever(zygote.socket_path())
        return 0
    from provider import server

    if not server.launched_by_terraform():
        sys.stderr.write(server.NOT_A_PLUGIN)
        return 1
    from provider import zygote

    # Which Terraform started us, for a process served elsewhere (provider.destroy_run reads it).
    os.environ["CLOUDBACKUP_TERRAFORM_PID"] = str(os.getppid())
    if zygote.enabled():
        code = zygote.connect()
        if code is not None:
            os._exit(code)
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
