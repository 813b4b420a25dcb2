"""Atlas-style `links`: a record's self link, and a list page's self, next and previous links."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import has_request_context, request

from shim.schemas import BASE_PATH


def record(path: str) -> list[dict[str, str]]:
    """The self link of the record at `path` (under the API's base path)."""
    if not has_request_context():
        return []
    return [{"rel": "self", "href": f"{request.host_url.rstrip('/')}{BASE_PATH}{path}"}]


def page(total: int) -> list[dict[str, str]]:
    """Links of the list page this request asked for: self, and next and previous where they exist."""
    if not has_request_context():
        return []
    base = f"{request.host_url.rstrip('/')}{request.path}"
    args: dict[str, Any] = request.args.to_dict()
    try:
        number = int(args.get("pageNum", 1))
        per_page = int(args.get("itemsPerPage", 100))
    except ValueError:
        return []

    def at(page_number: int) -> str:
        return f"{base}?{urlencode({**args, 'pageNum': page_number, 'itemsPerPage': per_page})}"

    links = [{"rel": "self", "href": at(number)}]
    if number * per_page < total:
        links.append({"rel": "next", "href": at(number + 1)})
    if number > 1:
        links.append({"rel": "previous", "href": at(number - 1)})
    return links
