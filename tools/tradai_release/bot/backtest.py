"""Freqtrade's backtester on a held-out window: the metrics and equity curve a registered version carries.

Training calls :func:`run_backtest` with the freshly exported models and the strategy's own code, so the
comparator's numbers come from the engine the bots run. Offline by construction: the exchange's market
list is the committed one (``bot.markets``) handed to ccxt's parser, Binance's leverage tiers are the
ones Freqtrade bundles for dry runs, and the candles are written to a private data directory with
Freqtrade's own data handler (futures, mark and funding-rate files, as its backtester reads them).
Nothing is printed: Freqtrade's result tables and logging configuration are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.bot.config import BotRun, check_config, render_config
from tradai_release.bot.pairs import FUTURES, Pair
from tradai_release.core.errors import TrainingError

if TYPE_CHECKING:
    import pandas as pd

ENGINE = "freqtrade"
# The data sets record no funding history; a backtest charges none (fees are ml_config.json's).
FUNDING_RATE = 0.0


@dataclass(frozen=True)
class BacktestWindow:
    """The held-out candles to trade, by open time (both ends included), and the candles before them."""

    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class BacktestResult:
    """What Freqtrade's backtester reported for one strategy over one window."""

    metrics: dict[str, float]  # the comparator's BACKTEST_METRICS
    equity: tuple[float, ...]  # equity (1 = the starting wallet) after each candle of the window
    trades: tuple[dict[str, Any], ...]  # Freqtrade's trade records (open/close dates, profit, tags)
    starting_balance: float
    engine_version: str
    start: str
    end: str


def engine_version() -> str:
    import freqtrade

    return str(freqtrade.__version__)


def run_backtest(
    run: BotRun,
    strategy_dir: Path,
    pair: Pair,
    candles: pd.DataFrame,
    window: BacktestWindow,
    workdir: Path,
) -> BacktestResult:
    """Backtest ``run``'s strategy (class in ``strategy_dir``) on ``pair``'s ``candles`` over ``window``.

    ``candles`` has the columns date (UTC), open, high, low, close, volume, and starts early enough for
    the strategy's warm-up. ``workdir`` (private, empty) receives the data directory.
    """
    from freqtrade.enums import RunMode
    from freqtrade.exceptions import FreqtradeException
    from freqtrade.optimize.backtesting import Backtesting
    from freqtrade.optimize.optimize_reports import generate_backtest_stats

    config = render_config(run)
    check_config(config, where=f"{run.strategy} backtest config", strategy_path=strategy_dir)
    datadir = workdir / "data"
    config.update(
        {
            "runmode": RunMode.BACKTEST,
            "strategy_path": str(strategy_dir),
            "user_data_dir": workdir,
            "datadir": datadir,
            "dataformat_ohlcv": "feather",
            "timerange": f"{int(window.start.timestamp())}-{int(window.end.timestamp()) + 1}",
            "export": "none",
            "exportfilename": workdir / "backtest_results",
            "verbosity": 0,
            "original_config": {},
            "candle_type_def": _candle_type(pair),
            "backtest_cache": "none",
        }
    )
    try:
        exchange = offline_exchange(config)
        write_data(datadir, pair, candles, exchange)
        backtesting = Backtesting(config, exchange)
        data, timerange = backtesting.load_bt_data()
        strategy = backtesting.strategylist[0]
        min_date, max_date = backtesting.backtest_one_strategy(strategy, data, timerange)
        stats = generate_backtest_stats(
            data, backtesting.all_bt_content, min_date=min_date, max_date=max_date
        )
    except (FreqtradeException, KeyError, ValueError) as err:
        raise TrainingError(f"{run.strategy} backtest", f"Freqtrade's backtest failed: {err}") from None
    result = stats["strategy"][strategy.get_strategy_name()]
    return _result(result, candles, window)


def offline_exchange(config: dict[str, Any]) -> Any:
    """Freqtrade's exchange for ``config`` with the committed market list: no request leaves the process."""
    from freqtrade.resolvers import ExchangeResolver
    from freqtrade.util import dt_ts

    from tradai_release.bot.markets import ccxt_markets

    exchange = ExchangeResolver.load_exchange(config, validate=False, load_leverage_tiers=False)
    markets = ccxt_markets(exchange._api)
    # Both ccxt clients read markets (the async one fetches candles); Freqtrade keeps its own view too.
    exchange._api.set_markets(markets)
    exchange._api_async.set_markets(markets)
    exchange._markets = exchange._api.markets
    exchange._last_markets_refresh = dt_ts()
    exchange.validate_config(config)
    if config.get("trading_mode") == FUTURES:
        exchange.fill_leverage_tiers()  # Binance dry runs read the tiers Freqtrade bundles
    return exchange


def _candle_type(pair: Pair) -> Any:
    from freqtrade.enums import CandleType

    return CandleType.FUTURES if pair.trading_mode == FUTURES else CandleType.SPOT


def write_data(datadir: Path, pair: Pair, candles: pd.DataFrame, exchange: Any) -> None:
    """``candles`` as Freqtrade's backtester reads them from ``datadir``, in its own feather format: a
    futures pair gets its trade, mark-price and funding-rate (none: FUNDING_RATE) files."""
    import pandas as pd
    from freqtrade.data.history import get_datahandler
    from freqtrade.enums import CandleType

    datadir.mkdir(parents=True, exist_ok=True)
    handler = get_datahandler(datadir, "feather")
    frame = candles[["date", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
    timeframe = _timeframe_of(frame)
    if pair.trading_mode != FUTURES:
        handler.ohlcv_store(pair.symbol, timeframe, frame, CandleType.SPOT)
        return
    handler.ohlcv_store(pair.symbol, timeframe, frame, CandleType.FUTURES)
    # The mark price is the last price: the data sets hold one series per pair.
    handler.ohlcv_store(pair.symbol, exchange.get_option("mark_ohlcv_timeframe"), frame, CandleType.MARK)
    funding_timeframe = exchange.get_option("funding_fee_timeframe")
    stamps = pd.date_range(
        frame["date"].iloc[0], frame["date"].iloc[-1], freq=_pandas_freq(funding_timeframe)
    )
    funding = pd.DataFrame({"date": stamps, "funding_rate": FUNDING_RATE})
    handler.ohlcv_store(pair.symbol, funding_timeframe, funding, CandleType.FUNDING_RATE)


def _pandas_freq(timeframe: str) -> str:
    from freqtrade.exchange import timeframe_to_minutes

    return f"{timeframe_to_minutes(timeframe)}min"


def _timeframe_of(frame: pd.DataFrame) -> str:
    step = (frame["date"].iloc[1] - frame["date"].iloc[0]).total_seconds()
    minutes = int(step // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _result(result: dict[str, Any], candles: pd.DataFrame, window: BacktestWindow) -> BacktestResult:
    import numpy as np
    import pandas as pd

    starting = float(result["starting_balance"])
    trades = tuple(result["trades"])
    held = candles[(candles["date"] >= window.start) & (candles["date"] <= window.end)]
    # Equity after each candle: the wallet plus the profit of every trade closed by the candle's close.
    closes = (
        np.array([pd.Timestamp(trade["close_date"]).value for trade in trades], dtype=np.int64)
        if trades
        else np.zeros(0, dtype=np.int64)
    )
    profits = np.array([float(trade["profit_abs"]) for trade in trades], dtype=np.float64)
    order = np.argsort(closes, kind="stable")
    closes, cumulative = closes[order], np.cumsum(profits[order])
    step = held["date"].iloc[1] - held["date"].iloc[0] if len(held) > 1 else pd.Timedelta(0)
    candle_ends = (held["date"] + step).astype("datetime64[ns, UTC]").map(lambda t: t.value).to_numpy()
    closed = np.searchsorted(closes, candle_ends, side="right")
    equity = [(starting + (float(cumulative[count - 1]) if count else 0.0)) / starting for count in closed]
    wins = int(result.get("wins", 0))
    total = int(result["total_trades"])
    metrics = {
        "total_profit": float(result["profit_total"]),
        "sharpe_ratio": _finite(result.get("sharpe")),
        "max_drawdown": float(result.get("max_drawdown_account", 0.0)),
        "win_rate": wins / total if total else 0.0,
        "total_trades": float(total),
    }
    return BacktestResult(
        metrics=metrics,
        equity=tuple(equity),
        trades=trades,
        starting_balance=starting,
        engine_version=engine_version(),
        start=str(result["backtest_start"]),
        end=str(result["backtest_end"]),
    )


def _finite(value: Any) -> float:
    number = float(value or 0.0)
    return number if math.isfinite(number) else 0.0
