"""The flags of ``invoke history``, parsed once: the instants it takes and the filter of its rows and pins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tradai_release.core.clock import parse_stamp
from tradai_release.core.errors import InputError
from tradai_release.engine.history.values import Held, HistoryRow
from tradai_release.repository.manifest import parse_profile


def parse_instant(command: str, flag: str, text: str) -> datetime:
    """``--at`` / ``--since`` / ``--until``: an ISO 8601 instant (a date is its midnight UTC; naive = UTC)."""
    try:
        return parse_stamp(text)
    except ValueError:
        reason = f"{text!r} is not an ISO 8601 instant (e.g. 2026-12-01T14:00:00Z or 2026-12-01)"
        raise InputError(command, flag, reason) from None


@dataclass(frozen=True)
class Filter:
    """``--profile``, ``--strategy``, ``--since``, ``--until``: the rows (or, with ``--at``, pins) to show.

    ``since`` and ``until`` are kept as given (the JSON output echoes them), ``start`` and ``end`` parsed.
    """

    profile: int | None = None
    strategy: str | None = None
    since: str | None = None
    until: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def from_flags(
        cls,
        profile: str | int | None = None,
        strategy: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Filter:
        number = parse_profile(profile) if profile not in (None, "") else None
        start = parse_instant("history", "--since", since) if since else None
        end = parse_instant("history", "--until", until) if until else None
        if start is not None and end is not None and start > end:
            raise InputError("history", "--since", f"{since} is after --until {until}")
        return cls(number, strategy or None, since, until, start, end)

    def keeps(self, row: HistoryRow) -> bool:
        """A row in the time range that (when a profile or strategy is asked for) moved one of theirs."""
        moment = parse_stamp(row.at)
        if (self.start is not None and moment < self.start) or (self.end is not None and moment > self.end):
            return False
        change = row.change
        if change is None:
            return self.profile is None and not self.strategy
        if self.profile is not None and change.profile != self.profile:
            return False
        return not self.strategy or change.strategy == self.strategy

    def keeps_decision(self, decision: Mapping[str, Any]) -> bool:
        """A recorded progress decision in the time range, of the strategy and profile asked for."""
        moment = parse_stamp(str(decision.get("decided_at") or ""))
        if (self.start is not None and moment < self.start) or (self.end is not None and moment > self.end):
            return False
        if self.strategy and decision.get("strategy") != self.strategy:
            return False
        profiles = list(decision.get("profiles") or ())
        return self.profile is None or not profiles or self.profile in profiles

    def keeps_pin(self, held: Held) -> bool:
        """A live pin of the profile and strategy asked for (any, when not asked)."""
        pin = held.pin
        return (self.profile is None or pin.profile == self.profile) and (
            not self.strategy or pin.strategy == self.strategy
        )

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "strategy": self.strategy, "since": self.since, "until": self.until}
