"""A loopback stand-in for Binance USDⓈ-M futures' public REST API, so a dry-run Freqtrade bot runs offline.

    python -m tradai_release.bot.standin --candles BTC/USDT:USDT=btc_usdt_1h.csv --timeframe 1h \\
        [--until ROW_OR_TIMESTAMP] [--port N] --port-file standin.url

It serves the committed market list (``markets/binance_usdm.json``), the server time, candles
replayed from CSV files (``timestamp,open,high,low,close,volume``) and an order book at the latest
close, on 127.0.0.1 only. The candles are shifted in time so that the row ``--until`` names (default:
the last row) is the last closed candle at every request's "now"; the row after it, if there is
one, is the still-open candle. The market is therefore frozen: meant for a run shorter than a
candle, such as a test that waits for a dry-run fill. A pair without a CSV answers its candles and
book with an error, as an unlisted symbol would: nothing here makes up a price.

Point ccxt at it with :func:`ccxt_config` (Freqtrade's ``exchange.ccxt_config``). Once listening,
the process writes its base URL to ``--port-file`` and serves until SIGTERM or SIGINT; bad input is
one ``error:`` line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import signal
import sys
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tradai_release.bot.markets import exchange_info
from tradai_release.bot.pairs import parse_pair
from tradai_release.core.errors import InputError, TradaiError

HOST = "127.0.0.1"  # loopback only: the stand-in is for this machine's bot, never a network service
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
# Binance's intervals of fixed length (1w and 1M start on calendar boundaries, which a floor on the
# epoch does not reproduce).
TIMEFRAMES: dict[str, int] = {
    "1m": 60_000,
    "3m": 3 * 60_000,
    "5m": 5 * 60_000,
    "15m": 15 * 60_000,
    "30m": 30 * 60_000,
    "1h": 3_600_000,
    "2h": 2 * 3_600_000,
    "4h": 4 * 3_600_000,
    "6h": 6 * 3_600_000,
    "8h": 8 * 3_600_000,
    "12h": 12 * 3_600_000,
    "1d": 24 * 3_600_000,
}
KLINES_DEFAULT = 500  # Binance's default ``limit`` for klines
KLINES_MAX = 1500  # and its maximum: no answer carries more candles
BOOK_LEVELS_MAX = 20  # levels per side; Freqtrade asks for 20 at most when it simulates a fill
BOOK_LIMIT_MAX = 1000  # Binance's largest depth ``limit``
# Half the spread, as a fraction of the close (at least one tick): the book straddles the close,
# bid < close < ask, about one basis point wide.
HALF_SPREAD = Decimal("0.00005")
# Each level holds this fraction of the last candle's volume: deep enough that a bot's order fills
# within the first levels, as it would on the real book.
LEVEL_SHARE_OF_VOLUME = Decimal("0.01")
BODY_MAX = 64 * 1024  # the public API takes no body; anything larger is refused unread
REQUEST_TIMEOUT = 10.0  # seconds a client may stall before its connection is dropped
MISSING_SYMBOL = "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
FUNDING_INTERVAL_MS = 8 * 3_600_000  # the perpetuals of the fixture fund every 8 hours

# ccxt's binance ``urls["api"]`` groups and the path each stands for on the real hosts. Every group
# points at the stand-in, private ones too: an unexpected call then fails here with a 404 instead of
# leaving the machine.
API_PATHS: dict[str, str] = {
    "public": "/api/v3",
    "private": "/api/v3",
    "v1": "/api/v1",
    "sapi": "/sapi/v1",
    "sapiV2": "/sapi/v2",
    "sapiV3": "/sapi/v3",
    "sapiV4": "/sapi/v4",
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "dapiPublic": "/dapi/v1",
    "dapiPrivate": "/dapi/v1",
    "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/dapi/futures/data",
    "eapiPublic": "/eapi/v1",
    "eapiPrivate": "/eapi/v1",
    "papi": "/papi/v1",
    "papiV2": "/papi/v2",
}
# ccxt.pro's websocket endpoints (its async class, which Freqtrade uses, carries them next to the
# REST groups). Freqtrade opens none with ``enable_ws: false``; pointed here, one opened by mistake
# fails at once.
WS_KEYS = ("spot", "margin", "linear", "inverse", "stock", "option", "optionMarket", "optionPrivate", "papi")
WS_API_KEYS = ("spot", "linear", "inverse")


def ccxt_urls(base_url: str) -> dict[str, Any]:
    """ccxt's ``urls`` override that sends every binance API group to the stand-in at ``base_url``."""
    base = base_url.rstrip("/")
    ws = "ws" + base.removeprefix("http") + "/ws"
    api: dict[str, Any] = {name: base + path for name, path in API_PATHS.items()}
    api["ws"] = {**{key: ws for key in WS_KEYS}, "ws-api": {key: ws for key in WS_API_KEYS}}
    return {"api": api}


def ccxt_config(base_url: str) -> dict[str, Any]:
    """Freqtrade's ``exchange.ccxt_config`` for a bot on the stand-in at ``base_url``.

    Freqtrade builds both its sync and its async ccxt object from ``ccxt_config``, so this one key is
    enough. ``fetchMarkets.types`` keeps ccxt to the linear market list: without it, ccxt's binance
    also asks for the spot and inverse lists (the stand-in answers those empty).
    """
    return {"urls": ccxt_urls(base_url), "options": {"fetchMarkets": {"types": ["linear"]}}}


# ---------------------------------------------------------------------------------------------------
# Candles


@dataclass(frozen=True)
class Candle:
    """One CSV row: its open time (ms since the epoch) and its values as the file writes them
    (Binance sends prices as decimal strings too)."""

    open_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str


@dataclass(frozen=True)
class CandleSeries:
    """A pair's candles from one CSV file, in time order at the timeframe's spacing."""

    source: str
    timeframe_ms: int
    candles: tuple[Candle, ...]

    @property
    def open_times(self) -> list[int]:
        return [candle.open_time for candle in self.candles]


def parse_timeframe(timeframe: str, *, where: str = "--timeframe") -> int:
    """The length of ``timeframe`` in ms, or an InputError naming the ones the stand-in knows."""
    if timeframe not in TIMEFRAMES:
        raise InputError(where, "timeframe", f"{timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
    return TIMEFRAMES[timeframe]


def _epoch_ms(text: str) -> int:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return int(moment.timestamp() * 1000)


def _number(text: str) -> str:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError("not a finite number >= 0")
    return text.strip()


def load_candles(path: Path, timeframe_ms: int) -> CandleSeries:
    """The candles of ``path``; a file that cannot serve as ``timeframe_ms`` candles is an InputError."""
    where = str(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(where, "(file)", f"cannot read: {getattr(err, 'strerror', None) or err}") from None
    if not rows or tuple(cell.strip() for cell in rows[0]) != COLUMNS:
        raise InputError(where, "(header)", f"expected the columns {','.join(COLUMNS)}")
    candles: list[Candle] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(COLUMNS):
            raise InputError(where, f"line {line}", f"{len(row)} fields, expected {len(COLUMNS)}")
        try:
            open_time = _epoch_ms(row[0])
        except ValueError:
            reason = f"{row[0]!r} is not an ISO-8601 UTC time"
            raise InputError(where, f"line {line}: timestamp", reason) from None
        values: list[str] = []
        for column, text in zip(COLUMNS[1:], row[1:], strict=True):
            try:
                values.append(_number(text))
            except ValueError:
                raise InputError(where, f"line {line}: {column}", f"{text!r} is not a number >= 0") from None
        if open_time % timeframe_ms:
            raise InputError(where, f"line {line}: timestamp", f"{row[0]} does not start a candle")
        if candles and open_time <= candles[-1].open_time:
            raise InputError(where, f"line {line}: timestamp", f"{row[0]} is not after the row before")
        if candles and (open_time - candles[-1].open_time) % timeframe_ms:
            raise InputError(where, f"line {line}: timestamp", f"{row[0]} is off the timeframe's grid")
        candles.append(Candle(open_time, *values))
    if not candles:
        raise InputError(where, "(rows)", "no candles")
    return CandleSeries(where, timeframe_ms, tuple(candles))


def resolve_until(series: CandleSeries, until: int | str | datetime | None) -> int:
    """The row index ``until`` names: a row index (negative counts from the end), or a row's timestamp."""
    if until is None:
        return len(series.candles) - 1
    if isinstance(until, str) and until.strip().lstrip("-").isdigit():
        until = int(until.strip())
    if isinstance(until, int) and not isinstance(until, bool):
        count = len(series.candles)
        if not -count <= until < count:
            raise InputError(series.source, "until", f"row {until} is outside the file's {count} rows")
        return until % count
    try:
        if isinstance(until, datetime):
            if until.tzinfo is None:
                raise ValueError("no time zone")
            wanted = int(until.timestamp() * 1000)
        else:
            wanted = _epoch_ms(str(until))
    except ValueError:
        raise InputError(
            series.source, "until", f"{until!r} is neither a row index nor an ISO-8601 UTC time"
        ) from None
    index = bisect_left(series.open_times, wanted)
    if index == len(series.candles) or series.candles[index].open_time != wanted:
        raise InputError(series.source, "until", f"no row starts at {until}")
    return index


# ---------------------------------------------------------------------------------------------------
# The exchange's answers


@dataclass(frozen=True)
class Market:
    """What the stand-in needs of one listed perpetual: its ids and its price and lot steps."""

    symbol: str  # Binance's id: BTCUSDT
    pair: str  # ccxt's unified symbol: BTC/USDT:USDT
    tick: Decimal
    step: Decimal
    min_qty: Decimal


def listed_markets(info: Mapping[str, Any]) -> dict[str, Market]:
    """The perpetuals of an ``exchangeInfo`` document by unified symbol."""
    markets: dict[str, Market] = {}
    for item in info["symbols"]:
        filters = {entry["filterType"]: entry for entry in item.get("filters", [])}
        pair = f"{item['baseAsset']}/{item['quoteAsset']}:{item['marginAsset']}"
        markets[pair] = Market(
            symbol=item["symbol"],
            pair=pair,
            tick=Decimal(filters["PRICE_FILTER"]["tickSize"]),
            step=Decimal(filters["LOT_SIZE"]["stepSize"]),
            min_qty=Decimal(filters["LOT_SIZE"]["minQty"]),
        )
    return markets


@dataclass(frozen=True)
class Replay:
    """One pair's candles as served at a moment: row ``last_row`` is the last closed candle."""

    market: Market
    series: CandleSeries
    last_row: int

    def served(self, now_ms: int) -> list[Candle]:
        """The closed candles up to ``last_row`` moved to end one timeframe before ``now_ms``'s candle,
        then the open candle (the next row's values, or the last close, flat, if the file ends)."""
        step = self.series.timeframe_ms
        current = now_ms - now_ms % step
        last = self.latest
        shift = current - step - last.open_time
        rows = self.series.candles[: self.last_row + 1]
        closed = [_moved(candle, candle.open_time + shift) for candle in rows]
        if self.last_row + 1 < len(self.series.candles):
            forming = _moved(self.series.candles[self.last_row + 1], current)
        else:
            forming = Candle(current, last.close, last.close, last.close, last.close, "0")
        return [*closed, forming]

    @property
    def latest(self) -> Candle:
        """The row served as the last closed candle (its values; its served time depends on now)."""
        return self.series.candles[self.last_row]

    def book(self, levels: int) -> tuple[list[list[str]], list[list[str]]]:
        """Bids and asks, ``levels`` of each, one tick apart, around the latest close."""
        candle = self.latest
        close, tick = Decimal(candle.close), self.market.tick
        half = max(close * HALF_SPREAD, tick)
        best_bid = ((close - half) / tick).to_integral_value(ROUND_FLOOR) * tick
        best_ask = ((close + half) / tick).to_integral_value(ROUND_CEILING) * tick
        share = Decimal(candle.volume) * LEVEL_SHARE_OF_VOLUME
        quantity = max(
            (share / self.market.step).to_integral_value(ROUND_FLOOR) * self.market.step, self.market.min_qty
        )
        bids = [[_text(best_bid - tick * level), _text(quantity)] for level in range(levels)]
        asks = [[_text(best_ask + tick * level), _text(quantity)] for level in range(levels)]
        return [bid for bid in bids if Decimal(bid[0]) > 0], asks


def _moved(candle: Candle, open_time: int) -> Candle:
    return Candle(open_time, candle.open, candle.high, candle.low, candle.close, candle.volume)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


class ApiError(Exception):
    """A Binance-style refusal: HTTP ``status`` with ``{"code": code, "msg": msg}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


Query = Mapping[str, str]


class StandInApi:
    """The stand-in's routes: a GET path and its query in, a JSON-ready answer out (or an ApiError)."""

    def __init__(
        self, replays: Mapping[str, Replay], markets: Mapping[str, Market], clock: Callable[[], float]
    ) -> None:
        self.replays = {replay.market.symbol: replay for replay in replays.values()}
        self.listed = {market.symbol for market in markets.values()}
        self.clock = clock
        self.routes: dict[str, Callable[[Query, int], Any]] = {
            "/fapi/v1/ping": lambda query, now: {},
            "/fapi/v1/time": lambda query, now: {"serverTime": now},
            "/fapi/v1/exchangeInfo": self.exchange_info,
            "/api/v3/exchangeInfo": self.no_markets,
            "/dapi/v1/exchangeInfo": self.no_markets,
            "/fapi/v1/klines": self.klines,
            "/fapi/v1/markPriceKlines": self.mark_price_klines,
            "/fapi/v1/depth": self.depth,
            "/fapi/v1/fundingRate": self.funding_rate,
            "/fapi/v1/premiumIndex": self.premium_index,
            "/fapi/v1/ticker/24hr": self.ticker_24hr,
            "/fapi/v1/ticker/price": self.ticker_price,
            "/fapi/v2/ticker/price": self.ticker_price,
            "/fapi/v1/ticker/bookTicker": self.book_ticker,
        }

    def answer(self, path: str, query: Query) -> Any:
        route = self.routes.get(path)
        if route is None:
            served = ", ".join(sorted(self.routes))
            raise ApiError(404, -1121, f"Unknown path {path}: the stand-in serves {served}")
        return route(query, int(self.clock() * 1000))

    # -- markets and time

    def exchange_info(self, query: Query, now: int) -> Any:
        return {**exchange_info(), "serverTime": now}

    def no_markets(self, query: Query, now: int) -> Any:
        # ccxt asks for the spot and inverse lists unless its options restrict it to linear markets.
        return {"timezone": "UTC", "serverTime": now, "rateLimits": [], "exchangeFilters": [], "symbols": []}

    # -- candles

    def _replay(self, query: Query) -> Replay:
        symbol = query.get("symbol")
        if not symbol:
            raise ApiError(400, -1102, MISSING_SYMBOL)
        replay = self.replays.get(symbol)
        if replay is None:
            why = "the stand-in has no candles for it" if symbol in self.listed else "not listed"
            raise ApiError(400, -1121, f"Invalid symbol. ({symbol}: {why})")
        return replay

    def _candles(self, query: Query, now: int) -> tuple[Replay, list[Candle]]:
        replay = self._replay(query)
        interval = query.get("interval")
        if TIMEFRAMES.get(interval or "") != replay.series.timeframe_ms:
            raise ApiError(400, -1120, f"Invalid interval. (the stand-in serves {_timeframe_name(replay)})")
        limit = _int_param(query, "limit", KLINES_DEFAULT, low=1)
        start = _int_param(query, "startTime", None, low=0)
        end = _int_param(query, "endTime", None, low=0)
        limit = min(limit, KLINES_MAX)
        served = replay.served(now)
        times = [candle.open_time for candle in served]
        first = 0 if start is None else bisect_left(times, start)
        stop = len(served) if end is None else bisect_right(times, end)
        # Binance: from startTime forward when it is given, else back from endTime (or now).
        if start is not None:
            return replay, served[first : min(stop, first + limit)]
        return replay, served[max(first, stop - limit) : stop]

    def klines(self, query: Query, now: int) -> Any:
        replay, chosen = self._candles(query, now)
        step = replay.series.timeframe_ms
        return [_kline(c, step, c.volume, _text(Decimal(c.volume) * Decimal(c.close))) for c in chosen]

    def mark_price_klines(self, query: Query, now: int) -> Any:
        # The mark price follows the traded price closely; the stand-in has only the latter. Mark
        # price candles carry no volume on Binance either.
        replay, chosen = self._candles(query, now)
        return [_kline(c, replay.series.timeframe_ms, "0", "0") for c in chosen]

    def funding_rate(self, query: Query, now: int) -> Any:
        # The CSVs carry no funding history; an empty one makes Freqtrade's dry-run funding fees zero,
        # where an invented rate would move a trade's profit.
        if "symbol" in query:
            self._replay(query)
        _int_param(query, "limit", 100, low=1)
        return []

    # -- prices now

    def _latest(self, query: Query) -> list[Replay]:
        return [self._replay(query)] if "symbol" in query else list(self.replays.values())

    def premium_index(self, query: Query, now: int) -> Any:
        answers = [
            {
                "symbol": replay.market.symbol,
                "markPrice": replay.latest.close,
                "indexPrice": replay.latest.close,
                "estimatedSettlePrice": replay.latest.close,
                "lastFundingRate": "0.00000000",  # as the (empty) funding history says
                "interestRate": "0.00000000",
                "nextFundingTime": now - now % FUNDING_INTERVAL_MS + FUNDING_INTERVAL_MS,
                "time": now,
            }
            for replay in self._latest(query)
        ]
        return answers[0] if "symbol" in query else answers

    def ticker_24hr(self, query: Query, now: int) -> Any:
        answers = []
        for replay in self._latest(query):
            closed = replay.served(now)[:-1]
            window = closed[-max(1, 86_400_000 // replay.series.timeframe_ms) :]
            first, last = window[0], window[-1]
            volume = sum(Decimal(c.volume) for c in window)
            quote_volume = sum(Decimal(c.volume) * Decimal(c.close) for c in window)
            change = Decimal(last.close) - Decimal(first.open)
            answers.append(
                {
                    "symbol": replay.market.symbol,
                    "priceChange": _text(change),
                    "priceChangePercent": _text(round(change / Decimal(first.open) * 100, 3))
                    if Decimal(first.open)
                    else "0",
                    "weightedAvgPrice": _text(round(quote_volume / volume, 8)) if volume else last.close,
                    "lastPrice": last.close,
                    "lastQty": "0",
                    "openPrice": first.open,
                    "highPrice": _text(max(Decimal(c.high) for c in window)),
                    "lowPrice": _text(min(Decimal(c.low) for c in window)),
                    "volume": _text(Decimal(volume)),
                    "quoteVolume": _text(Decimal(quote_volume)),
                    "openTime": first.open_time,
                    "closeTime": now,
                    "firstId": 0,
                    "lastId": 0,
                    "count": 0,
                }
            )
        return answers[0] if "symbol" in query else answers

    def ticker_price(self, query: Query, now: int) -> Any:
        answers = [
            {"symbol": replay.market.symbol, "price": replay.latest.close, "time": now}
            for replay in self._latest(query)
        ]
        return answers[0] if "symbol" in query else answers

    def book_ticker(self, query: Query, now: int) -> Any:
        answers = []
        for replay in self._latest(query):
            bids, asks = replay.book(1)
            answers.append(
                {
                    "symbol": replay.market.symbol,
                    "bidPrice": bids[0][0],
                    "bidQty": bids[0][1],
                    "askPrice": asks[0][0],
                    "askQty": asks[0][1],
                    "time": now,
                }
            )
        return answers[0] if "symbol" in query else answers

    def depth(self, query: Query, now: int) -> Any:
        replay = self._replay(query)
        limit = _int_param(query, "limit", 500, low=1)
        if limit > BOOK_LIMIT_MAX:
            raise ApiError(400, -1130, f"Invalid data sent for a parameter. (limit > {BOOK_LIMIT_MAX})")
        bids, asks = replay.book(min(limit, BOOK_LEVELS_MAX))
        return {"lastUpdateId": now, "E": now, "T": now, "bids": bids, "asks": asks}


def _kline(candle: Candle, step: int, volume: str, quote_volume: str) -> list[Any]:
    # Binance's row: open time, OHLC, volume, close time, quote volume, trade count, taker-buy volumes
    # and an unused field; ccxt reads the first six.
    return [
        *(candle.open_time, candle.open, candle.high, candle.low, candle.close, volume),
        *(candle.open_time + step - 1, quote_volume, 0, "0", "0", "0"),
    ]


def _timeframe_name(replay: Replay) -> str:
    return next(name for name, ms in TIMEFRAMES.items() if ms == replay.series.timeframe_ms)


def _int_param(query: Query, name: str, default: int | None, *, low: int) -> Any:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
    if value < low:
        raise ApiError(400, -1130, f"Invalid data sent for a parameter. ({name} < {low})")
    return value


# ---------------------------------------------------------------------------------------------------
# The server


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as ccxt's sessions expect of the real API
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        self.server.record(parts.path)
        try:
            self._send(200, self.server.api.answer(parts.path, query))
        except ApiError as err:
            self._send(err.status, {"code": err.code, "msg": err.msg})
        except Exception as err:
            # A bug here: answer at once, as Binance's "unknown error", so that the bot does not wait
            # on a dropped connection; re-raised for the server to print its traceback.
            self.close_connection = True
            self._send(500, {"code": -1000, "msg": f"stand-in bug: {type(err).__name__}: {err}"})
            raise

    def _refuse_body(self) -> None:
        # The public API takes no body; read a small one so the connection stays usable, refuse a large one.
        parts = urlsplit(self.path)
        self.server.record(parts.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= BODY_MAX:
            self.close_connection = True
            self._send(413, {"code": -1104, "msg": f"Request body over {BODY_MAX} bytes."})
            return
        self.rfile.read(length)
        msg = f"Unknown path {self.command} {parts.path}: the stand-in is read-only"
        self._send(404, {"code": -1121, "msg": msg})

    do_POST = do_PUT = do_DELETE = _refuse_body

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up; nothing to answer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, api: StandInApi, log_requests: bool) -> None:
        super().__init__((HOST, port), _Handler)
        self.api = api
        self.log_requests = log_requests
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1

    def requested(self) -> Counter[str]:
        with self._lock:
            return Counter(self.requests)


class ExchangeStandIn:
    """The stand-in as a library: a loopback server on a background thread while the block runs.

        with ExchangeStandIn(candles={"BTC/USDT:USDT": "btc_usdt_1h.csv"}, timeframe="1h") as standin:
            config["exchange"]["ccxt_config"] = standin.ccxt_config()

    All input is checked here, before a port is bound: a bad pair, file or ``until`` is an
    InputError (``<file>: <field>: <reason>``). ``until`` is a row index (negative from the end) or a
    row's timestamp, for every file; ``clock`` gives "now" in epoch seconds (tests fix it).
    """

    def __init__(
        self,
        candles: Mapping[str, str | os.PathLike[str]],
        timeframe: str = "1h",
        until: int | str | datetime | None = None,
        *,
        port: int = 0,
        clock: Callable[[], float] = time.time,
        log_requests: bool = False,
    ) -> None:
        step = parse_timeframe(timeframe)
        markets = listed_markets(exchange_info())
        replays: dict[str, Replay] = {}
        for pair, path in candles.items():
            parsed = parse_pair(pair, where=str(path), field="pair")
            if parsed.symbol not in markets:
                listed = ", ".join(sorted(markets))
                raise InputError(str(path), "pair", f"{pair!r} is not listed (listed: {listed})")
            series = load_candles(Path(path), step)
            replays[parsed.symbol] = Replay(markets[parsed.symbol], series, resolve_until(series, until))
        self.api = StandInApi(replays, markets, clock)
        self.port = port
        self.log_requests = log_requests
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve on a background thread; the socket listens before this returns."""
        self._server = _Server(self.port, self.api, self.log_requests)
        # A short poll interval: stop() waits for the loop to notice, and tests start many stand-ins.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="standin", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (a no-op when not started)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=REQUEST_TIMEOUT)
        self._server = self._thread = None

    def __enter__(self) -> ExchangeStandIn:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the base of every API path."""
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def urls(self) -> dict[str, Any]:
        """ccxt's ``urls`` override for this stand-in."""
        return ccxt_urls(self.url)

    def ccxt_config(self) -> dict[str, Any]:
        """Freqtrade's ``exchange.ccxt_config`` for this stand-in (see :func:`ccxt_config`)."""
        return ccxt_config(self.url)

    @property
    def requests(self) -> Counter[str]:
        """How often each path was asked for so far."""
        if self._server is None:
            return Counter()
        return self._server.requested()


# ---------------------------------------------------------------------------------------------------
# The process


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tradai_release.bot.standin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--candles",
        action="append",
        required=True,
        metavar="PAIR=CSV",
        help="a pair's candles, e.g. BTC/USDT:USDT=btc_usdt_1h.csv (repeatable)",
    )
    parser.add_argument("--timeframe", default="1h", help="the candles' timeframe (default: 1h)")
    parser.add_argument(
        "--until",
        metavar="ROW_OR_TIMESTAMP",
        help="the row that is the last closed candle: its index or ISO-8601 time (default: last)",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: 0, the OS picks)")
    parser.add_argument("--port-file", type=Path, metavar="F", help="write the base URL here once listening")
    parser.add_argument("--quiet", action="store_true", help="do not log each request on stderr")
    return parser


def _candle_files(values: Sequence[str]) -> dict[str, str]:
    files: dict[str, str] = {}
    for value in values:
        pair, sep, path = value.partition("=")
        if not sep or not pair.strip() or not path.strip():
            raise InputError("--candles", value, "expected PAIR=CSV, e.g. BTC/USDT:USDT=btc_usdt_1h.csv")
        if pair.strip() in files:
            raise InputError(path, "pair", f"{pair.strip()!r} is given twice")
        files[pair.strip()] = path.strip()
    return files


def _write_atomically(path: Path, text: str) -> None:
    # A poller of the port file sees it whole or not at all.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT."""
    standin = ExchangeStandIn(
        _candle_files(args.candles), args.timeframe, args.until, port=args.port, log_requests=not args.quiet
    )
    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            standin.start()
        except OSError as err:
            raise InputError("--port", str(args.port), f"cannot listen: {err.strerror or err}") from None
        try:
            if args.port_file is not None:
                try:
                    _write_atomically(args.port_file, standin.url + "\n")
                except OSError as err:
                    reason = f"cannot write: {err.strerror or err}"
                    raise InputError(str(args.port_file), "(file)", reason) from None
            print(f"listening: {standin.url}", file=sys.stderr, flush=True)
            while not stop.wait(1.0):  # a timed wait lets the signal handler run promptly
                pass
        finally:
            standin.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags and serve; a project error is one ``error:`` line and exit 1 (anything else is a bug)."""
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except TradaiError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
