"""A bot's trades as Freqtrade recorded them: its SQLite trade database, read-only, while the bot runs.

Freqtrade's exit code says nothing (it exits 0 on a configuration error), so whoever checks a bot
reads what it did here: which trades it opened, under which entry tag (the model version, see
``bot.strategy``), and whether their entry orders filled. Only the standard library: a reader of
the file needs neither Freqtrade nor its database layer.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

# The columns of Freqtrade's ``trades`` table read here (persistence/trade_model.py), and the entry
# order's fill from ``orders``: a trade whose entry order is still open has no ``filled`` amount.
_QUERY = """
SELECT t.id, t.pair, t.enter_tag, t.is_open, t.open_rate, t.close_rate, t.close_profit, t.exit_reason,
       t.open_date, t.close_date,
       COALESCE((SELECT SUM(o.filled) FROM orders o
                 WHERE o.ft_trade_id = t.id AND o.status = 'closed'
                   AND o.ft_order_side = CASE WHEN t.is_short THEN 'sell' ELSE 'buy' END), 0)
FROM trades t ORDER BY t.id
"""


@dataclass(frozen=True)
class Trade:
    """One trade of the bot: its pair, the tag its entry carries, and how far it got."""

    id: int
    pair: str
    enter_tag: str | None
    is_open: bool
    open_rate: float
    close_rate: float | None
    close_profit: float | None
    exit_reason: str | None
    open_date: str
    close_date: str | None
    entry_filled: float  # the entry order's filled amount (0 while it waits on the book)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "pair": self.pair,
            "enter_tag": self.enter_tag,
            "is_open": self.is_open,
            "open_rate": self.open_rate,
            "close_rate": self.close_rate,
            "close_profit": self.close_profit,
            "exit_reason": self.exit_reason,
            "open_date": self.open_date,
            "close_date": self.close_date,
            "entry_filled": self.entry_filled,
        }


def read_trades(db: Path) -> list[Trade]:
    """Every trade in ``db``, oldest first; none while the file or its tables are not there yet.

    Opened read-only (``mode=ro``), so a running bot keeps its file to itself and a reader never
    creates one.
    """
    if not Path(db).is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as connection:
            rows = connection.execute(_QUERY).fetchall()
    except sqlite3.OperationalError:
        return []  # Freqtrade creates its tables at start-up: not there yet
    return [
        Trade(
            id=int(row[0]),
            pair=str(row[1]),
            enter_tag=row[2],
            is_open=bool(row[3]),
            open_rate=float(row[4]),
            close_rate=None if row[5] is None else float(row[5]),
            close_profit=None if row[6] is None else float(row[6]),
            exit_reason=row[7],
            open_date=str(row[8]),
            close_date=None if row[9] is None else str(row[9]),
            entry_filled=float(row[10] or 0.0),
        )
        for row in rows
    ]


def filled_entries(db: Path, enter_tag: str | None = None) -> list[Trade]:
    """The trades whose entry order filled, optionally only those tagged ``enter_tag``."""
    return [
        trade
        for trade in read_trades(db)
        if trade.entry_filled > 0 and (enter_tag is None or trade.enter_tag == enter_tag)
    ]
