"""The one clock: the current UTC time, and the one text form in which instants are stored and shown.

Tests replace the clock with :func:`use_clock`, so deployment ids, record stamps, policy verdicts
(soak, freeze) and the expiry of apply leases are placed at chosen instants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_source: Callable[[], datetime] | None = None


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the injected clock's inside :func:`use_clock`)."""
    if _source is not None:
        moment = _source()
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


@contextmanager
def use_clock(source: Callable[[], datetime]) -> Iterator[None]:
    """Within the block every :func:`utc_now` and :func:`stamp` reads ``source`` (for tests)."""
    global _source
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous


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
