"""How `cloudbackup serve` holds many idle or slow connections without delaying anyone else."""

from __future__ import annotations

import logging
import resource
from typing import Any

log = logging.getLogger(__name__)

# Waitress reads a whole request (headers and body) on its event loop before a worker thread sees it, so
# an idle or slow-loris connection costs a socket and a little memory, never a thread. Its defaults let
# 100 such connections stop the shim (past `connection_limit` it stops accepting) for two minutes
# (`channel_timeout`). Instead:
# - a connection limit far above what one client can hold open, and file descriptors to match;
# - poll() instead of select(), which cannot watch descriptors numbered past 1024;
# - idle connections closed after 30 s (a keep-alive client reconnects; a slow-loris one is dropped),
#   checked every 5 s.
CONNECTION_LIMIT = 10_000
IDLE_TIMEOUT_SECONDS = 30
WAITRESS_SETTINGS: dict[str, Any] = {
    "connection_limit": CONNECTION_LIMIT,
    "channel_timeout": IDLE_TIMEOUT_SECONDS,
    "cleanup_interval": 5,
    "asyncore_use_poll": True,
    "backlog": 2048,
    # Waitress buffers a body (to a temporary file past 512 KiB) before the app sees it; past this it
    # answers 413 itself. The app's own limit (1 MiB) answers 413 in the API's error shape first.
    "max_request_body_size": 16 * 1024 * 1024,
}
# Descriptors besides the connections: the database, snapshot copies, the listener, logs.
_SPARE_DESCRIPTORS = 256


def raise_open_file_limit(wanted: int = CONNECTION_LIMIT + _SPARE_DESCRIPTORS) -> int:
    """Raise the soft RLIMIT_NOFILE towards `wanted` (never above the hard limit); return the new soft limit.

    Many systems start processes at a soft limit of 1024, which would refuse connections (EMFILE) long
    before the connection limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("could not raise the open file limit from %d to %d: %s", soft, target, error)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "open file limit %d: the shim can hold about %d connections (raise `ulimit -n` for more)",
            soft,
            max(soft - _SPARE_DESCRIPTORS, 0),
        )
    return soft
