"""Timestamps as the wire writes them: RFC 3339, UTC, microseconds, `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_str() -> str:
    return rfc3339(now())
