"""The Binance futures stand-in: its answers over loopback HTTP, its process mode, and a real dry-run
Freqtrade bot filling an entry order against it with no network."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradai_release.bot.standin import (
    API_PATHS,
    KLINES_MAX,
    ExchangeStandIn,
    load_candles,
    main,
    resolve_until,
)
from tradai_release.core.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent
PASCAL_CSV = REPO_ROOT / "strategies" / "PascalStrategy" / "data" / "btc_usdt_1h.csv"
HOUR = 3_600_000
# A fixed "now", 20 minutes into the 10:00 candle: the last closed candle opened at 09:00.
NOW = datetime(2026, 3, 1, 10, 20, tzinfo=UTC).timestamp()
NOW_OPEN = int(NOW * 1000) // HOUR * HOUR
BTC = "BTC/USDT:USDT"


def write_candles(path: Path, rows: int, *, start: str = "2024-01-01T00:00:00Z") -> Path:
    """``rows`` hourly candles whose close is 100 + the row index (so each row is recognisable)."""
    first = datetime.fromisoformat(start)
    lines = ["timestamp,open,high,low,close,volume"]
    for index in range(rows):
        moment = datetime.fromtimestamp(first.timestamp() + index * 3600, tz=UTC)
        close = 100 + index
        lines.append(
            f"{moment:%Y-%m-%dT%H:%M:%SZ},{close - 0.5},{close + 1},{close - 1},{close},{10 + index}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write_candles(tmp_path / "btc.csv", 10)


@pytest.fixture
def standin(small: Path) -> Iterator[ExchangeStandIn]:
    with ExchangeStandIn({BTC: small}, "1h", clock=lambda: NOW) as running:
        yield running


# -- answers


def test_exchange_info_serves_the_committed_markets_at_the_current_time(standin: ExchangeStandIn) -> None:
    status, info = get(standin.url + "/fapi/v1/exchangeInfo")
    assert status == 200
    assert [item["symbol"] for item in info["symbols"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert info["serverTime"] == int(NOW * 1000)
    assert get(standin.url + "/fapi/v1/time") == (200, {"serverTime": int(NOW * 1000)})
    # The spot and inverse lists, should ccxt ask for them anyway, are empty.
    assert get(standin.url + "/api/v3/exchangeInfo")[1]["symbols"] == []
    assert get(standin.url + "/dapi/v1/exchangeInfo")[1]["symbols"] == []


def test_klines_end_with_the_last_row_as_the_last_closed_candle(standin: ExchangeStandIn) -> None:
    status, klines = get(standin.url + "/fapi/v1/klines?symbol=BTCUSDT&interval=1h")
    assert status == 200
    assert len(klines) == 10 + 1  # every row, then the forming candle
    closed, forming = klines[-2], klines[-1]
    assert closed[0] == NOW_OPEN - HOUR
    assert closed[4] == "109" and closed[5] == "19"  # the file's last row
    assert closed[6] == NOW_OPEN - 1  # its close time
    # The file has no row after it: the forming candle is the last close, flat, without volume.
    assert forming[0] == NOW_OPEN and forming[1:6] == ["109", "109", "109", "109", "0"]
    assert [row[0] for row in klines] == [NOW_OPEN - (10 - index) * HOUR for index in range(11)]


def test_klines_honour_limit_start_and_end(standin: ExchangeStandIn) -> None:
    base = standin.url + "/fapi/v1/klines?symbol=BTCUSDT&interval=1h"
    latest = get(base + "&limit=3")[1]
    assert [row[0] for row in latest] == [NOW_OPEN - 2 * HOUR, NOW_OPEN - HOUR, NOW_OPEN]
    start = NOW_OPEN - 8 * HOUR
    forward = get(base + f"&startTime={start}&limit=2")[1]
    assert [row[0] for row in forward] == [start, start + HOUR]
    assert [row[4] for row in forward] == ["102", "103"]
    back = get(base + f"&endTime={NOW_OPEN - 5 * HOUR}&limit=2")[1]
    assert [row[0] for row in back] == [NOW_OPEN - 6 * HOUR, NOW_OPEN - 5 * HOUR]
    both = get(base + f"&startTime={start}&endTime={start + 3 * HOUR}")[1]
    assert len(both) == 4


def test_klines_never_exceed_the_binance_limit(tmp_path: Path) -> None:
    with ExchangeStandIn({BTC: PASCAL_CSV}, clock=lambda: NOW) as standin:
        klines = get(standin.url + "/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=5000")[1]
        assert len(klines) == KLINES_MAX
        assert klines[-2][0] == NOW_OPEN - HOUR


@pytest.mark.parametrize("until", [4, "4", -6, "2024-01-01T04:00:00Z", datetime(2024, 1, 1, 4, tzinfo=UTC)])
def test_until_picks_the_last_closed_candle_and_the_next_row_is_forming(small: Path, until: Any) -> None:
    with ExchangeStandIn({BTC: small}, until=until, clock=lambda: NOW) as standin:
        klines = get(standin.url + "/fapi/v1/klines?symbol=BTCUSDT&interval=1h")[1]
    assert len(klines) == 5 + 1
    assert klines[-2][0] == NOW_OPEN - HOUR and klines[-2][4] == "104"
    assert klines[-1][0] == NOW_OPEN and klines[-1][4] == "105"  # row 5's values, still forming


def test_mark_price_klines_follow_the_candles_and_funding_history_is_empty(standin: ExchangeStandIn) -> None:
    marks = get(standin.url + "/fapi/v1/markPriceKlines?symbol=BTCUSDT&interval=1h&limit=2")[1]
    assert [row[4] for row in marks] == ["109", "109"]
    assert get(standin.url + "/fapi/v1/fundingRate?symbol=BTCUSDT")[1] == []
    assert get(standin.url + "/fapi/v1/premiumIndex?symbol=BTCUSDT")[1]["markPrice"] == "109"


def test_tickers_are_computed_from_the_served_candles(standin: ExchangeStandIn) -> None:
    (ticker,) = get(standin.url + "/fapi/v1/ticker/24hr")[1]  # every pair with candles
    assert ticker["symbol"] == "BTCUSDT" and ticker["lastPrice"] == "109"
    assert ticker["openPrice"] == "99.5" and ticker["highPrice"] == "110" and ticker["lowPrice"] == "99"
    assert ticker["volume"] == str(sum(range(10, 20)))  # the 10 closed candles, all within 24 hours
    assert get(standin.url + "/fapi/v1/ticker/price?symbol=BTCUSDT")[1]["price"] == "109"


def test_depth_straddles_the_latest_close_on_the_tick_grid(standin: ExchangeStandIn) -> None:
    status, book = get(standin.url + "/fapi/v1/depth?symbol=BTCUSDT&limit=5")
    assert status == 200
    bids = [Decimal(price) for price, _ in book["bids"]]
    asks = [Decimal(price) for price, _ in book["asks"]]
    assert len(bids) == len(asks) == 5
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < Decimal("109") < asks[0]
    assert asks[0] - bids[0] <= Decimal("0.2")  # BTCUSDT's tick is 0.10: one tick each side
    tick = Decimal("0.10")
    assert all(price % tick == 0 for price in bids + asks)
    assert all(Decimal(quantity) >= Decimal("0.001") for _, quantity in book["bids"] + book["asks"])
    ticker = get(standin.url + "/fapi/v1/ticker/bookTicker?symbol=BTCUSDT")[1]
    assert (ticker["bidPrice"], ticker["askPrice"]) == (book["bids"][0][0], book["asks"][0][0])


def test_errors_are_binance_shaped_and_prices_are_never_invented(standin: ExchangeStandIn) -> None:
    base = standin.url
    status, error = get(base + "/fapi/v1/no-such-endpoint")
    assert status == 404 and error["code"] == -1121
    # ETHUSDT is listed but has no candles: an error, not a made-up price.
    for path in ("/fapi/v1/klines?symbol=ETHUSDT&interval=1h", "/fapi/v1/depth?symbol=ETHUSDT"):
        status, error = get(base + path)
        assert status == 400 and error["code"] == -1121
    assert get(base + "/fapi/v1/klines?symbol=DOGEUSDT&interval=1h")[1]["code"] == -1121
    assert get(base + "/fapi/v1/klines?interval=1h")[1]["code"] == -1102
    assert get(base + "/fapi/v1/klines?symbol=BTCUSDT&interval=4h")[1]["code"] == -1120
    assert get(base + "/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=x")[1]["code"] == -1100
    assert get(base + "/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=0")[1]["code"] == -1130


def test_a_large_body_is_refused_unread(standin: ExchangeStandIn) -> None:
    request = urllib.request.Request(standin.url + "/fapi/v1/order", data=b"x" * 100_000, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 413
    small_post = urllib.request.Request(standin.url + "/fapi/v1/order", data=b"a=1", method="POST")
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(small_post, timeout=10)
    assert unknown.value.code == 404


def test_ccxt_reaches_only_the_standin_and_reads_its_answers(standin: ExchangeStandIn) -> None:
    import ccxt

    config = standin.ccxt_config()
    api = ccxt.binance({**config, "options": {**config["options"], "defaultType": "swap"}})  # as Freqtrade
    assert set(api.urls["api"]) - {"ws"} == set(API_PATHS)  # a new group in ccxt would escape the stand-in
    assert all(str(url).startswith(standin.url) for url in api.urls["api"].values() if isinstance(url, str))
    api.load_markets()
    assert {"BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"} <= set(api.markets)
    assert api.fetch_time() == int(NOW * 1000)
    candles = api.fetch_ohlcv(BTC, "1h", limit=3)
    assert [candle[0] for candle in candles] == [NOW_OPEN - 2 * HOUR, NOW_OPEN - HOUR, NOW_OPEN]
    book = api.fetch_l2_order_book(BTC, 5)
    assert book["bids"][0][0] < 109 < book["asks"][0][0]
    assert standin.requests["/fapi/v1/exchangeInfo"] == 1
    assert "/api/v3/exchangeInfo" not in standin.requests  # fetchMarkets.types keeps ccxt to linear


# -- input


def test_bad_candle_files_name_the_file_and_the_field(tmp_path: Path) -> None:
    bad_header = tmp_path / "header.csv"
    bad_header.write_text("time,open,high,low,close,volume\n")
    unordered = write_candles(tmp_path / "unordered.csv", 3)
    lines = unordered.read_text().splitlines()
    unordered.write_text("\n".join([lines[0], lines[2], lines[1]]) + "\n")
    cases = {
        tmp_path / "missing.csv": "(file)",
        bad_header: "(header)",
        unordered: "line 3: timestamp",
    }
    for path, field in cases.items():
        with pytest.raises(InputError) as raised:
            load_candles(path, HOUR)
        assert (raised.value.file, raised.value.field) == (str(path), field)
    series = load_candles(write_candles(tmp_path / "ok.csv", 3), HOUR)
    for until in (3, "-4", "2023-12-31T23:00:00Z", "noon", datetime(2024, 1, 1, 1)):
        with pytest.raises(InputError) as raised:
            resolve_until(series, until)
        assert raised.value.field == "until"


def test_cli_bad_input_is_one_error_line_and_exit_1(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        ["--candles", f"{BTC}={tmp_path / 'missing.csv'}"],
        ["--candles", f"DOGE/USDT:USDT={small}"],
        ["--candles", f"BTCUSDT={small}"],
        ["--candles", f"{BTC}={small}", "--until", "99"],
        ["--candles", f"{BTC}={small}", "--timeframe", "7m"],
        ["--candles", str(small)],
    ]
    for argv in cases:
        assert main([*argv, "--port-file", str(tmp_path / "never")]) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)
        assert len(err.split(": ")) >= 4, err  # error: <file>: <field>: <reason>
    assert not (tmp_path / "never").exists()


def test_cli_bad_input_exits_1_as_a_process(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tradai_release.bot.standin", "--candles", f"{BTC}={tmp_path / 'none.csv'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == f"error: {tmp_path / 'none.csv'}: (file): cannot read: No such file or directory\n"


# -- the process


def _start_process(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    from servers import require_e2e

    require_e2e("tradai_release.bot.standin")
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tradai_release.bot.standin", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_file(path: Path, process: subprocess.Popen[bytes], log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text().strip()
        assert process.poll() is None, f"the stand-in exited early:\n{log.read_text()}"
        time.sleep(0.05)
    raise AssertionError(f"no {path.name} after {timeout}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[Any]) -> int | None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return process.returncode


@pytest.mark.e2e
def test_process_writes_its_url_and_stops_on_sigterm(small: Path, tmp_path: Path) -> None:
    port_file, log = tmp_path / "standin.url", tmp_path / "standin.log"
    process = _start_process(
        ["--candles", f"{BTC}={small}", "--until", "5", "--port-file", str(port_file)], log
    )
    try:
        url = _wait_for_file(port_file, process, log, timeout=30)
        assert url.startswith("http://127.0.0.1:")
        klines = get(url + "/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=2")[1]
        now_open = int(time.time() * 1000) // HOUR * HOUR
        # The real clock: the candle may turn between the request and this line, never by more.
        assert klines[0][0] in (now_open - HOUR, now_open - 2 * HOUR)
        assert klines[0][4] == "105"
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert "GET /fapi/v1/klines" in log.read_text()
    finally:
        _stop(process)


# -- a real dry-run bot

STRATEGY = '''
from pandas import DataFrame
from freqtrade.strategy import IStrategy


class AlwaysLong(IStrategy):
    """Enters long on every candle: the test is about the exchange, not the signal."""

    INTERFACE_VERSION = 3
    timeframe = "1h"
    startup_candle_count = 60
    can_short = False
    minimal_roi = {"0": 10.0}
    stoploss = -0.5

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[:, ["enter_long", "enter_tag"]] = (1, "model-v2")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
'''


def freqtrade_config(standin: ExchangeStandIn, db: Path) -> dict[str, Any]:
    # Binance futures tickers carry no bid/ask, so prices come from the book. "other" is the side
    # that fills at once (the ask for a long entry): Freqtrade's dry run fills a limit order only
    # once the book crosses it, and the stand-in's book stands still, so a "same"-side order (a
    # long entry at the bid) would wait forever.
    pricing = {"price_side": "other", "use_order_book": True, "order_book_top": 1}
    return {
        "bot_name": "standin-e2e",
        "trading_mode": "futures",
        "margin_mode": "isolated",
        "dry_run": True,
        "dry_run_wallet": 1000,
        "stake_currency": "USDT",
        "stake_amount": 200,
        "max_open_trades": 2,
        "timeframe": "1h",
        "entry_pricing": {**pricing, "price_last_balance": 0.0},
        "exit_pricing": pricing,
        "exchange": {
            "name": "binance",
            "key": "",
            "secret": "",
            # ETH/USDT:USDT is listed but has no candles here: the bot must skip it, not stop.
            "pair_whitelist": [BTC, "ETH/USDT:USDT"],
            "pair_blacklist": [],
            "enable_ws": False,
            "ccxt_config": standin.ccxt_config(),
        },
        "pairlists": [{"method": "StaticPairList"}],
        "db_url": f"sqlite:///{db}",
        "initial_state": "running",
        "internals": {"process_throttle_secs": 1},
    }


def filled_entries(db: Path) -> list[tuple[Any, ...]]:
    """The trades' filled entry orders, read-only (Freqtrade writes the file meanwhile)."""
    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as connection:
            return connection.execute(
                "SELECT t.pair, t.enter_tag, t.open_rate, o.status, o.filled, o.average FROM trades t "
                "JOIN orders o ON o.ft_trade_id = t.id "
                "WHERE o.ft_order_side = 'buy' AND o.status = 'closed' AND o.filled > 0"
            ).fetchall()
    except sqlite3.OperationalError:
        return []  # the tables are not there yet


@pytest.mark.e2e
@pytest.mark.slow
def test_a_dry_run_freqtrade_bot_fills_an_entry_against_the_standin(tmp_path: Path) -> None:
    from servers import require_e2e

    require_e2e("freqtrade")
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "always_long.py").write_text(STRATEGY)
    (tmp_path / "user_data").mkdir()
    db, log, config_file = tmp_path / "trades.sqlite", tmp_path / "freqtrade.log", tmp_path / "config.json"
    with ExchangeStandIn({BTC: PASCAL_CSV}, "1h") as standin:
        config_file.write_text(json.dumps(freqtrade_config(standin, db), indent=2))
        best_ask = get(standin.url + "/fapi/v1/depth?symbol=BTCUSDT&limit=5")[1]["asks"][0][0]
        started = time.monotonic()
        bot = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "freqtrade",
                "trade",
                "--config",
                str(config_file),
                "--strategy",
                "AlwaysLong",
                "--strategy-path",
                str(tmp_path / "strategies"),
                "--userdir",
                str(tmp_path / "user_data"),
                "--logfile",
                str(log),
            ],
            env={**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = started + 60
            entries = filled_entries(db)
            while not entries and time.monotonic() < deadline and bot.poll() is None:
                time.sleep(0.5)
                entries = filled_entries(db)
            took = time.monotonic() - started
            tail = log.read_text()[-4000:] if log.exists() else "(no log)"
            assert entries, f"no filled entry after {took:.0f}s (exit code {bot.poll()}):\n{tail}"
        finally:
            _stop(bot)
        requested = standin.requests
    print(f"first filled entry {took:.1f}s after freqtrade started")
    assert len(entries) == 1  # BTC only: ETH has no candles, so no signal and no order
    pair, tag, open_rate, status, filled, average = entries[0]
    assert (pair, tag, status) == (BTC, "model-v2", "closed")
    assert filled > 0 and open_rate == average == float(best_ask)  # filled at the stand-in's ask
    assert requested["/fapi/v1/klines"] >= 1 and requested["/fapi/v1/depth"] >= 1
