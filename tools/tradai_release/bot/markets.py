"""The exchange's market list, committed: what Freqtrade needs to know about each pair without the network.

Freqtrade loads the market list through ccxt before it backtests or trades and keeps no cache of it;
offline it stops with "Could not load markets". ``markets/binance_usdm.json`` is a trimmed Binance
USDⓈ-M ``GET /fapi/v1/exchangeInfo`` answer (the perpetuals the example strategies trade, with their
price and lot filters). Backtests hand it to ccxt's own parser (:func:`ccxt_markets`); the loopback
stand-in (``bot.standin``) serves it to a dry-run bot. The values are representative of the exchange's
listing, not a live copy: a backtest's fills depend on the tick and lot sizes only through rounding.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

EXCHANGE = "binance"
MARKETS_FILE = "binance_usdm.json"


@lru_cache(maxsize=1)
def exchange_info() -> dict[str, Any]:
    """The committed ``exchangeInfo`` document (raw Binance shape)."""
    text = resources.files("tradai_release.bot").joinpath("markets", MARKETS_FILE).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def listed_symbols() -> frozenset[str]:
    """The unified symbols of the committed list (``BTC/USDT:USDT``, ...)."""
    return frozenset(
        f"{item['baseAsset']}/{item['quoteAsset']}:{item['marginAsset']}"
        for item in exchange_info()["symbols"]
    )


def ccxt_markets(api: Any) -> list[dict[str, Any]]:
    """The committed list parsed by ``api`` (a ccxt binance instance) into ccxt's unified markets."""
    return [api.parse_market(item) for item in exchange_info()["symbols"]]
