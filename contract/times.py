"""Timestamps as the API writes them (RFC 3339, UTC, to the second), for the shim and the provider."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(moment: datetime) -> datetime:
    """The same moment with an explicit UTC zone (naive values are taken to be UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, to the second, as Atlas writes timestamps."""
    if moment is None:
        return None
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime."""
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
