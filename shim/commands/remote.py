"""The commands' view of a running shim: its HTTP API over Digest, with the settings Terraform uses too."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from shim.commands import FAILED, UNREACHABLE, USAGE, CommandError

API_BASE = "/api/atlas/v1.0"
DEFAULT_URL = "http://127.0.0.1:8080"
KEYS_HINT = 'eval "$(cloudbackup keys create --export)"'


def add_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=None,
        help=f"the shim's URL (env CLOUDBACKUP_URL; default {DEFAULT_URL}); the key comes from"
        " CLOUDBACKUP_PUBLIC_KEY and CLOUDBACKUP_PRIVATE_KEY",
    )


def segment(value: str) -> str:
    return quote(value, safe="")


class Api:
    """GET/POST/DELETE on the shim; any failure becomes a CommandError naming the fix."""

    def __init__(self, args: argparse.Namespace) -> None:
        import requests
        from requests.auth import HTTPDigestAuth

        self.url = (args.url or os.environ.get("CLOUDBACKUP_URL") or DEFAULT_URL).rstrip("/")
        public_key = os.environ.get("CLOUDBACKUP_PUBLIC_KEY")
        private_key = os.environ.get("CLOUDBACKUP_PRIVATE_KEY")
        if not public_key or not private_key:
            raise CommandError(
                f"no API key: set CLOUDBACKUP_PUBLIC_KEY and CLOUDBACKUP_PRIVATE_KEY (e.g. {KEYS_HINT})",
                USAGE,
            )
        self.session = requests.Session()
        self.session.auth = HTTPDigestAuth(public_key, private_key)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import requests

        try:
            answer = self.session.request(method, self.url + API_BASE + path, json=body, timeout=60)
        except requests.ConnectionError:
            raise CommandError(
                f"cannot reach the shim at {self.url}: start `cloudbackup serve`, or point --url "
                f"(or CLOUDBACKUP_URL) at a running one",
                UNREACHABLE,
            ) from None
        if answer.status_code < 400:
            return answer.json() if answer.content else None
        try:
            error = answer.json()
            detail = f"{error.get('errorCode', answer.status_code)}: {error.get('detail', '')}"
        except ValueError:
            detail = f"HTTP {answer.status_code}"
        code = UNREACHABLE if answer.status_code == 401 else FAILED
        raise CommandError(f"the shim refused {method} {path}: {detail}", code)

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def every(self, path: str, query: str = "") -> Iterator[dict[str, Any]]:
        """Every item of a listing, page by page."""
        number = 1
        while True:
            separator = "&" if query else ""
            page = self.get(f"{path}?{query}{separator}itemsPerPage=500&pageNum={number}")
            yield from page["results"]
            if number * 500 >= page["totalCount"] or not page["results"]:
                return
            number += 1
