"""The lease a manual-clock advance holds in the database, so only one runs at a time across processes."""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from shim.errors import ApiError
from shim.store.models import Setting

LEASE_SETTING = "clock_advance_lease"
CLOCK_ADVANCE_IN_PROGRESS = "CLOCK_ADVANCE_IN_PROGRESS"
# Renewed at every step of an advance; a lease older than this is a dead process's and is taken over.
LEASE_SECONDS = 120.0
# The bound of one advance (366 days): a longer walk is several calls, each answered in reasonable time.
MAX_ADVANCE_SECONDS = 366 * 86400


@dataclass(frozen=True)
class Lease:
    """Who holds the advance: a random token, where it runs, and until when (real time, not manual)."""

    token: str
    host: str
    pid: int
    until: float

    def dump(self) -> str:
        return json.dumps({"token": self.token, "host": self.host, "pid": self.pid, "until": self.until})

    @classmethod
    def load(cls, text: str) -> Lease | None:
        try:
            value = json.loads(text)
            return cls(str(value["token"]), str(value["host"]), int(value["pid"]), float(value["until"]))
        except (ValueError, KeyError, TypeError):
            return None

    def abandoned(self) -> bool:
        """Expired, or held by a process of this machine that is gone (a kill -9 mid-advance)."""
        if self.until < time.time():
            return True
        if self.host == socket.gethostname() and self.pid != os.getpid():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False


def in_progress() -> ApiError:
    return ApiError(
        409,
        CLOCK_ADVANCE_IN_PROGRESS,
        "Another clock advance is running (through this shim or another one on the same database). "
        "Wait for it to answer, then advance again.",
    )


def take(session: Session) -> str:
    """Take the lease in the caller's write transaction; its token, or 409 while another holds it."""
    setting = session.get(Setting, LEASE_SETTING)
    if setting is not None:
        held = Lease.load(setting.value)
        if held is not None and not held.abandoned():
            raise in_progress()
    lease = Lease(secrets.token_hex(8), socket.gethostname(), os.getpid(), time.time() + LEASE_SECONDS)
    if setting is None:
        session.add(Setting(key=LEASE_SETTING, value=lease.dump()))
    else:
        setting.value = lease.dump()
    return lease.token


def renew(session: Session, token: str) -> None:
    """Push the lease's expiry on, if it is still ours."""
    setting = session.get(Setting, LEASE_SETTING)
    held = Lease.load(setting.value) if setting is not None else None
    if setting is not None and held is not None and held.token == token:
        setting.value = Lease(token, held.host, held.pid, time.time() + LEASE_SECONDS).dump()


def release(session: Session, token: str) -> None:
    setting = session.get(Setting, LEASE_SETTING)
    held = Lease.load(setting.value) if setting is not None else None
    if setting is not None and (held is None or held.token == token):
        session.delete(setting)
