"""The plugin's entry point (terraform-provider-cloudbackup): the handshake comes first."""

from __future__ import annotations

import os
import sys


def _handlers() -> dict:
    from provider.service import ProviderService

    return ProviderService().handlers()


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
    if os.environ.get("CLOUDBACKUP_PLUGIN_DAEMON", "1") != "0":
        from provider import zygote

        code = zygote.connect()
        if code is not None:
            os._exit(code)
    server.serve(_handlers)
    # Terraform waits for the process to end after Shutdown: skip the interpreter's slow teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
