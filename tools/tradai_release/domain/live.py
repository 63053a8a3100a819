"""What a bot's live results are, as ``invoke observe`` records them: one reading of one bot's Freqtrade REST
API (docs/architecture.md §18). A bot that did not answer is recorded as such, never as zero profit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tradai_release.core.clock import parse_stamp, stamp
from tradai_release.repository.bots import CHALLENGER_ROLE as CHALLENGER
from tradai_release.repository.bots import PRODUCTION_ROLE as PRODUCTION
from tradai_release.repository.bots import BotKey

__all__ = ["CHALLENGER", "PRODUCTION", "LiveResult", "profit_since"]


@dataclass(frozen=True)
class LiveResult:
    """One reading of one bot. The figures are Freqtrade's own since the bot started (``/api/v1/profit``):
    ``closed_profit`` is the closed profit as a ratio of the starting balance, like the backtest's
    ``total_profit``, and ``max_drawdown`` its relative account drawdown, like the backtest's."""

    env: str
    profile: int
    strategy: str
    role: str
    observed_at: datetime
    answered: bool
    model_version: int | None = None  # what the bot says it runs (its strategy's version)
    files_sha256: str = ""
    trades: int = 0  # closed trades
    closed_profit: float = 0.0
    max_drawdown: float = 0.0
    open_trades: int = 0
    since: datetime | None = None  # the bot's start
    heartbeat: datetime | None = None  # its last loop
    error: str = ""  # why it did not answer

    @property
    def bot(self) -> str:
        """``<strategy>-p<N>`` or ``<strategy>-p<N>-challenger``: the bot's name in its environment."""
        return BotKey(self.env, self.profile, self.strategy, self.role).name

    @property
    def hours(self) -> float:
        """How long the bot had run when it was read (0 when it did not say)."""
        if self.since is None:
            return 0.0
        return max(0.0, (self.observed_at - self.since).total_seconds() / 3600)

    def to_item(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "profile": self.profile,
            "role": self.role,
            "observed_at": stamp(self.observed_at),
            "answered": self.answered,
            "model_version": self.model_version,
            "files_sha256": self.files_sha256,
            "trades": self.trades,
            "closed_profit": _number(self.closed_profit),
            "max_drawdown": _number(self.max_drawdown),
            "open_trades": self.open_trades,
            "since": stamp(self.since) if self.since else "",
            "heartbeat": stamp(self.heartbeat) if self.heartbeat else "",
            "error": self.error,
        }

    @classmethod
    def from_item(cls, env: str, item: Mapping[str, Any]) -> LiveResult:
        version = item.get("model_version")
        return cls(
            env=env,
            profile=int(item["profile"]),
            strategy=str(item["strategy"]),
            role=str(item.get("role") or PRODUCTION),
            observed_at=parse_stamp(str(item["observed_at"])),
            answered=bool(item.get("answered")),
            model_version=int(version) if version not in (None, "") else None,
            files_sha256=str(item.get("files_sha256") or ""),
            trades=int(item.get("trades") or 0),
            closed_profit=float(item.get("closed_profit") or 0.0),
            max_drawdown=float(item.get("max_drawdown") or 0.0),
            open_trades=int(item.get("open_trades") or 0),
            since=parse_stamp(str(item["since"])) if item.get("since") else None,
            heartbeat=parse_stamp(str(item["heartbeat"])) if item.get("heartbeat") else None,
            error=str(item.get("error") or ""),
        )


def _number(value: float) -> float:
    return round(float(value), 8)


def profit_since(readings: Sequence[LiveResult], start: datetime, within_hours: float = 0.0) -> float | None:
    """The closed profit a bot made from ``start`` to its newest reading: the difference of its cumulative
    figure at the newest reading and at the last reading not after ``start`` (all of it when the bot
    started after ``start``). Readings come once per observe period: when none reaches back to ``start``,
    the first one taken within ``within_hours`` after it is the baseline (the window then starts up to one
    period late). None when the readings cannot say."""
    answered = sorted((r for r in readings if r.answered), key=lambda r: r.observed_at)
    if not answered:
        return None
    newest = answered[-1]
    if newest.since is not None and newest.since >= start:
        return newest.closed_profit
    same_run = [r for r in answered if r.since == newest.since]
    before = [r for r in same_run if r.observed_at <= start]
    if before:
        return newest.closed_profit - before[-1].closed_profit
    soon = [r for r in same_run if (r.observed_at - start).total_seconds() <= within_hours * 3600]
    return newest.closed_profit - soon[0].closed_profit if soon else None
