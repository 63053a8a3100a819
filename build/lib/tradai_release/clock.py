"""The one clock: the current UTC time, and the one text form in which instants are stored and shown."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def stamp(moment: datetime | None = None) -> str:
    """``2026-11-23T12:25:01+00:00``: ISO 8601 to the second, in UTC (``moment`` defaults to now).

    Text stamps of this one form sort in time order, which the views that order by them rely on.
    """
    value = moment if moment is not None else utc_now()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def parse_stamp(text: str) -> datetime:
    """An instant written by :func:`stamp` (or with a ``Z`` suffix, as older records have); naive = UTC.

    Raises ValueError when ``text`` is not an ISO 8601 instant.
    """
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
