"""A bot's live results read over Freqtrade's REST API with Freqtrade's own client (``freqtrade-client``):
what it says it runs, its closed profit, drawdown and trades since it started, and its last loop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class BotReading:
    """One answer of one bot (``answered`` False: ``error`` says why; every figure is then unknown)."""

    answered: bool
    error: str = ""
    strategy_version: str = ""  # the strategy's version(): "<model> v<N> files <sha256>"
    dry_run: bool | None = None
    trades: int = 0  # closed trades
    closed_profit: float = 0.0  # closed profit as a ratio of the starting balance
    max_drawdown: float = 0.0  # relative account drawdown
    open_trades: int = 0
    started_at: datetime | None = None
    heartbeat: datetime | None = None  # the bot's last loop


def read_bot(url: str, username: str, password: str, *, timeout: float = 5.0) -> BotReading:
    """Ask the bot at ``url``; a refused connection, a timeout, a rejected login or an answer that is not
    Freqtrade's is a reading that did not answer, with the reason."""
    import logging

    from freqtrade_client import FtRestClient

    # The client logs a warning for each refused connection and returns None; the reading says it instead
    # (a bot polled while it starts would otherwise print a line per attempt).
    logging.getLogger("ft_rest_client").setLevel(logging.ERROR)
    client = FtRestClient(url, username, password, timeout=timeout)
    try:
        config, profit, count, health = client.show_config(), client.profit(), client.count(), client.health()
    except Exception as err:  # the client raises whatever requests raises (timeouts, bad JSON)
        return BotReading(False, f"{url}: {type(err).__name__}")
    for name, answer in (("show_config", config), ("profit", profit), ("count", count), ("health", health)):
        if not isinstance(answer, dict):
            return BotReading(False, f"{url}: no answer to {name} (connection refused)")
        if "detail" in answer and len(answer) == 1:  # FastAPI's error body: 401 and the like
            return BotReading(False, f"{url}: {name}: {answer['detail']}")
    return BotReading(
        answered=True,
        strategy_version=str(config.get("strategy_version") or ""),
        dry_run=bool(config.get("dry_run")) if "dry_run" in config else None,
        trades=int(profit.get("closed_trade_count") or 0),
        closed_profit=float(profit.get("profit_closed_ratio") or 0.0),
        max_drawdown=float(profit.get("max_drawdown") or 0.0),
        open_trades=int(count.get("current") or 0),
        started_at=_instant(profit.get("bot_start_timestamp") or health.get("bot_start_ts")),
        heartbeat=_instant(health.get("last_process_ts")),
    )


def _instant(value: Any) -> datetime | None:
    """A Freqtrade timestamp (milliseconds or seconds since the epoch; 0 = never) as a UTC instant."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number <= 0:
        return None
    return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, tz=UTC)
