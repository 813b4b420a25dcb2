"""At configure: is the url a cloudbackup API of a version we speak, and what does the key reach?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tf.utils import Diagnostics

from provider.client import API_BASE, ApiError, Client
from provider.diagnostics import add_api_error

SERVICE = "cloudbackup"
# The API versions this provider speaks: same major version, any minor one.
SPOKEN_MAJOR = "1"
URL_FIX = (
    "Set url (or CLOUDBACKUP_URL) to the address `cloudbackup serve` prints, such as http://127.0.0.1:8080."
)


@dataclass(frozen=True)
class Identity:
    """What GET /self answered: the API version and the calling key's reach."""

    api_version: str
    project_id: str | None
    read_only: bool
    # Whether the shim's storage restores a snapshot into another region (None: it does not say).
    cross_region_restore: bool | None = None


def _root(url: str) -> str:
    """The url without the API base path a user pasted into it."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    cut = path.find(API_BASE)
    return urlunsplit((parts.scheme, parts.netloc, path[:cut] if cut >= 0 else path, "", ""))


def _url_error(diags: Diagnostics, client: Client, found: str) -> None:
    if API_BASE in client.prefix:
        diags.add_error(
            "The provider's url already contains the API base path",
            f"{client.url} already contains the base path {API_BASE}, which the provider adds itself "
            f"({found}). Set url (or CLOUDBACKUP_URL) to {_root(client.url)}.",
            path=["url"],
        )
        return
    diags.add_error(
        "The provider's url is not a cloudbackup API",
        f"{client.url} is not a cloudbackup API: {found}. {URL_FIX}",
        path=["url"],
    )


def identify(diags: Diagnostics, client: Client) -> Identity | None:
    """GET /self; any answer but a cloudbackup API of a version we speak is one error on `url`."""
    try:
        data: Any = client.get("/self")
    except ApiError as error:
        if error.status == 401 or error.status >= 500:
            # The key is refused, or the shim failed: the url is right, the error says what to fix.
            add_api_error(diags, error, "Configuring the provider")
        else:
            _url_error(diags, client, f"GET {error.path} answered HTTP {error.status} {error.code}")
        return None
    if not isinstance(data, dict) or data.get("service") != SERVICE:
        _url_error(diags, client, f"GET {client.prefix}{API_BASE}/self did not answer as a cloudbackup shim")
        return None
    version = str(data.get("apiVersion", ""))
    if version.split(".")[0] != SPOKEN_MAJOR:
        diags.add_error(
            "The cloudbackup API speaks another version",
            f"{client.url} serves cloudbackup API version {version or 'unknown'}, and this provider speaks "
            f"version {SPOKEN_MAJOR}.x. Install the provider that comes with that shim "
            f"(`cloudbackup provider install`), or point url (or CLOUDBACKUP_URL) at a matching shim.",
            path=["url"],
        )
        return None
    project = data.get("projectId")
    cross = data.get("crossRegionRestore")
    return Identity(
        version,
        str(project) if project else None,
        bool(data.get("readOnly")),
        cross if isinstance(cross, bool) else None,
    )
