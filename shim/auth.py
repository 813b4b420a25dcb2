"""HTTP Digest authentication (RFC 7616) with API key pairs, and what each key may reach."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shim.errors import DIGEST_NONCE_REUSED, ORG_API_KEY_REQUIRED, READ_ONLY_API_KEY, UNAUTHORIZED, ApiError
from shim.store import Store
from shim.store.models import ApiKey, DigestNonceUse, Setting

REALM = "cloudbackup"
KEY_RECHECK_SECONDS = 5.0
LAST_USED_RESOLUTION_SECONDS = 60.0
NONCE_KEY_SETTING = "digest_nonce_key"
ALGORITHMS = {
    "MD5": hashlib.md5,
    "MD5-SESS": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-256-SESS": hashlib.sha256,
}
QOPS = ("auth", "auth-int")
_NC = re.compile(r"^[0-9a-fA-F]{1,8}$")
_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')
# The record of an accepted (nonce, nc): its primary key refuses the same pair in every process.
_SPEND = insert(DigestNonceUse)


@dataclass(frozen=True)
class Principal:
    """The API key a request was made with, and its reach."""

    public_key: str
    project_id: str | None
    read_only: bool

    @property
    def is_org(self) -> bool:
        return self.project_id is None

    def can_reach(self, project_id: str) -> bool:
        """An organization key reaches every project; a project key its own alone."""
        return self.project_id is None or self.project_id == project_id

    def require_write(self) -> None:
        if self.read_only:
            raise ApiError(
                403,
                READ_ONLY_API_KEY,
                f"API key {self.public_key} is read-only; use a key created without --read-only for changes.",
            )

    def require_org(self) -> None:
        if not self.is_org:
            raise ApiError(
                403,
                ORG_API_KEY_REQUIRED,
                f"API key {self.public_key} belongs to one project; creating projects needs an organization "
                f"key (`cloudbackup keys create` without --project).",
            )


def ha1(algorithm: str, public_key: str, private_key: str) -> str:
    """H(username:realm:password): what Digest verification needs, so the private key need not be kept."""
    return ALGORITHMS[algorithm](f"{public_key}:{REALM}:{private_key}".encode()).hexdigest()


def create_key(session: Session, *, project_id: str | None, read_only: bool) -> tuple[str, str]:
    """A new key pair; only its Digest HA1 hashes are stored. Returns (public key, private key)."""
    public_key = "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))
    private_key = str(uuid.uuid4())
    session.add(
        ApiKey(
            public_key=public_key,
            ha1_md5=ha1("MD5", public_key, private_key),
            ha1_sha256=ha1("SHA-256", public_key, private_key),
            project_id=project_id,
            read_only=read_only,
            created_at=datetime.now(UTC),
        )
    )
    return public_key, private_key


def load_nonce_key(store: Store) -> bytes:
    """The HMAC key that signs nonces, made once and kept in the database so restarts honour old nonces."""
    with store.write() as session:
        setting = session.get(Setting, NONCE_KEY_SETTING)
        if setting is None:
            setting = Setting(key=NONCE_KEY_SETTING, value=secrets.token_hex(32))
            session.add(setting)
        return bytes.fromhex(setting.value)


def parse_authorization(header: str) -> dict[str, str]:
    """The parameters of a `Digest ...` Authorization header."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    params: dict[str, str] = {}
    for key, value in _PARAM.findall(rest):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[key.lower()] = value
    return params


@dataclass(frozen=True)
class _Key:
    ha1_md5: str
    ha1_sha256: str
    project_id: str | None
    read_only: bool


class DigestAuth:
    """Digest with HMAC-signed timestamp nonces, which any process on the database accepts, and replay
    protection: each (nonce, nc) pair is accepted once, recorded under a unique key in the shared database.

    The database, not the issuing process, keeps the used pairs so that clients behind a load balancer
    spreading requests over several shims need no stickiness (binding nonces to a process would answer
    them stale=true at every switch). The cost is one small insert per authenticated request.
    """

    def __init__(self, store: Store, nonce_key: bytes, *, nonce_ttl_seconds: int = 300) -> None:
        self.store = store
        self.nonce_key = nonce_key
        self.ttl = nonce_ttl_seconds
        self.opaque = hmac.new(nonce_key, b"opaque", hashlib.sha256).hexdigest()[:32]
        # A found key is remembered for a few seconds (misses are not): `cloudbackup keys revoke`, run in
        # another process, takes effect within KEY_RECHECK_SECONDS without a read per request.
        self._keys: dict[str, tuple[_Key, float]] = {}
        self._keys_lock = threading.Lock()
        self._last_used_written: dict[str, float] = {}
        self._next_prune = 0.0

    # nonces

    def make_nonce(self, issued: float | None = None) -> str:
        stamp = struct.pack(">d", time.time() if issued is None else issued) + secrets.token_bytes(8)
        mac = hmac.new(self.nonce_key, stamp, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(stamp + mac).decode().rstrip("=")

    def nonce_state(self, nonce: str) -> str:
        """ "fresh", "stale" (signed by us but expired) or "invalid"."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return "invalid"
        if len(raw) != 32:
            return "invalid"
        stamp, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, hmac.new(self.nonce_key, stamp, hashlib.sha256).digest()[:16]):
            return "invalid"
        issued = struct.unpack(">d", stamp[:8])[0]
        return "fresh" if 0 <= time.time() - issued <= self.ttl else "stale"

    def challenges(self, *, stale: bool = False) -> list[tuple[str, str]]:
        """WWW-Authenticate headers: MD5 first (what curl --digest and Atlas clients use), SHA-256 too."""
        nonce = self.make_nonce()
        extra = ", stale=true" if stale else ""
        return [
            (
                "WWW-Authenticate",
                f'Digest realm="{REALM}", qop="auth,auth-int", nonce="{nonce}", opaque="{self.opaque}", '
                f"algorithm={algorithm}{extra}",
            )
            for algorithm in ("MD5", "SHA-256")
        ]

    def _refuse(self, detail: str, *, stale: bool = False) -> ApiError:
        return ApiError(401, UNAUTHORIZED, detail, headers=self.challenges(stale=stale))

    # keys

    def _key(self, public_key: str) -> _Key | None:
        cached = self._keys.get(public_key)
        if cached is not None and time.monotonic() - cached[1] < KEY_RECHECK_SECONDS:
            return cached[0]
        with self.store.read() as session:
            row = session.execute(select(ApiKey).where(ApiKey.public_key == public_key)).scalar_one_or_none()
            if row is None:
                with self._keys_lock:
                    self._keys.pop(public_key, None)
                return None
            key = _Key(row.ha1_md5, row.ha1_sha256, row.project_id, row.read_only)
        with self._keys_lock:
            self._keys[public_key] = (key, time.monotonic())
        return key

    def _note_use(self, public_key: str) -> None:
        """Record when the key was last used, at most once a minute per key (a write per request would
        cost more than the request)."""
        now = time.monotonic()
        if (
            now - self._last_used_written.get(public_key, -LAST_USED_RESOLUTION_SECONDS)
            < LAST_USED_RESOLUTION_SECONDS
        ):
            return
        self._last_used_written[public_key] = now
        with self.store.write() as session:
            session.execute(
                update(ApiKey).where(ApiKey.public_key == public_key).values(last_used_at=datetime.now(UTC))
            )

    # verification

    def _spend(self, nonce: str, nc: int) -> bool:
        """Record (nonce, nc) as used; False when some process already accepted it."""
        issued = self.nonce_issued(nonce)
        expires = datetime.fromtimestamp(issued + self.ttl, UTC)
        now = time.time()
        try:
            # One statement, committed on its own: a write transaction through the ORM cost as much as
            # the rest of a request.
            with self.store.statements() as conn:
                conn.execute(_SPEND, {"nonce": nonce, "nc": nc, "expires_at": expires})
        except IntegrityError:
            return False
        if now >= self._next_prune:
            # Pairs of expired nonces can go: an expired nonce is refused before this check.
            self._next_prune = now + max(self.ttl / 4, 1)
            cutoff = datetime.fromtimestamp(now - 60, UTC)
            with self.store.statements() as conn:
                conn.execute(delete(DigestNonceUse).where(DigestNonceUse.expires_at < cutoff))
        return True

    def nonce_issued(self, nonce: str) -> float:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        return float(struct.unpack(">d", raw[:8])[0])

    def authenticate(
        self,
        method: str,
        request_uri: str,
        header: str | None,
        body: Callable[[], bytes] = lambda: b"",
    ) -> Principal:
        """The key that signed this request, or a 401 carrying fresh challenges.

        `body` gives the request body, read only for qop=auth-int (whose signature covers it).
        """
        if not header:
            raise self._refuse(
                "This API needs HTTP Digest authentication with an API key pair "
                "(curl --digest -u PUBLIC_KEY:PRIVATE_KEY); create one with `cloudbackup keys create`."
            )
        params = parse_authorization(header)
        needed = ("username", "realm", "nonce", "uri", "response")
        if not params or any(name not in params for name in needed):
            raise self._refuse("The Authorization header is not a complete Digest response.")
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in ALGORITHMS:
            raise self._refuse(f"Digest algorithm {algorithm} is not supported; use MD5 or SHA-256.")
        if params["realm"] != REALM:
            raise self._refuse(f'The Digest realm must be "{REALM}".')
        if not _same_uri(params["uri"], request_uri):
            raise self._refuse("The Digest uri does not match the request.")
        state = self.nonce_state(params["nonce"])
        if state == "invalid":
            raise self._refuse("The Digest nonce was not issued by this shim.")
        key = self._key(params["username"])
        if key is None:
            raise self._refuse(
                f"No API key {params['username']!r} in this shim's database: it was revoked, or created for "
                f"another data directory; create one with `cloudbackup keys create --data-dir` set to the "
                f"directory this shim serves."
            )
        hash_fn = ALGORITHMS[algorithm]

        def h(text: str) -> str:
            return hash_fn(text.encode()).hexdigest()

        base = key.ha1_sha256 if algorithm.startswith("SHA-256") else key.ha1_md5
        a1 = (
            h(f"{base}:{params['nonce']}:{params.get('cnonce', '')}") if algorithm.endswith("-SESS") else base
        )
        qop = params.get("qop")
        if qop:
            if qop.lower() not in QOPS or "cnonce" not in params or not _NC.match(params.get("nc", "")):
                raise self._refuse(
                    'Use qop="auth" or qop="auth-int" with nc (eight hexadecimal digits) and cnonce.'
                )
            if qop.lower() == "auth-int":
                a2 = h(f"{method}:{params['uri']}:{hash_fn(body()).hexdigest()}")
            else:
                a2 = h(f"{method}:{params['uri']}")
            expected = h(f"{a1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{qop}:{a2}")
            nc = int(params["nc"], 16)
        else:
            # RFC 2069 style (no qop, no nc): the nonce itself may be used once.
            a2 = h(f"{method}:{params['uri']}")
            expected = h(f"{a1}:{params['nonce']}:{a2}")
            nc = -1
        if not hmac.compare_digest(expected, params["response"].lower()):
            raise self._refuse(f"Wrong private key for API key {params['username']!r}.")
        if state == "stale":
            # The credentials were right; the client only has to answer a fresh nonce.
            raise self._refuse("The Digest nonce expired; answer the new one.", stale=True)
        if not self._spend(params["nonce"], nc):
            # stale=true: a client that lost count re-signs with a fresh nonce; a replayer holds no key.
            raise ApiError(
                401,
                DIGEST_NONCE_REUSED,
                f"This Digest nonce was already used with nc={params.get('nc', '(none)')}: each request "
                "must be signed anew with the next nc (a replayed request is refused); answer the fresh "
                "challenge.",
                headers=self.challenges(stale=True),
            )
        self._note_use(params["username"])
        return Principal(params["username"], key.project_id, key.read_only)


def _same_uri(digest_uri: str, request_uri: str) -> bool:
    """Whether the uri a client signed is the one it requested (clients may sign an absolute URI)."""
    signed = urlsplit(digest_uri)
    actual = urlsplit(request_uri)
    return (signed.path, signed.query) == (actual.path, actual.query)
