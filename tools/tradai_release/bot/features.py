"""The feature catalogue computed from OHLCV candles: one code path for training, drift and the bot.

A bot's strategy computes the features its models take with this module, so it needs pandas (which
Freqtrade brings) but none of the training extra. The catalogue is described in docs/usage.md
"Training"; every feature looks backward only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tradai_release.core.errors import InputError
from tradai_release.repository.strategy import FEATURE_CATALOGUE

if TYPE_CHECKING:
    import pandas as pd

# Longest lookback of the catalogue (SMA 50) plus room for the EMAs (26 + 9) to settle: a feature row
# before this many candles is not the value a longer history would give.
WARMUP_ROWS = 60


def _ema(series: pd.Series, *, alpha: float | None = None, span: int | None = None) -> pd.Series:
    return series.ewm(alpha=alpha, span=span, adjust=False).mean()


def _safe_div(numerator: pd.Series, denominator: pd.Series, fill: float) -> pd.Series:
    import numpy as np

    den = denominator.to_numpy()
    num = numerator.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(den > 0, num / np.where(den > 0, den, 1.0), fill)
    return numerator.__class__(values, index=numerator.index)


def _rsi(close: pd.Series, period: int = 14) -> pd.Series:
    delta = close.diff()
    gain = _ema(delta.clip(lower=0), alpha=1 / period)
    loss = _ema(-delta.clip(upper=0), alpha=1 / period)
    total = gain + loss
    return 100.0 * _safe_div(gain, total, 0.5)  # = 100 - 100 / (1 + gain/loss); flat market -> 50


def _macd(close: pd.Series) -> pd.Series:
    return (_ema(close, span=12) - _ema(close, span=26)) / close


def _bb_pos(close: pd.Series, window: int = 20) -> pd.Series:
    mean = close.rolling(window).mean()
    std = close.rolling(window).std(ddof=0)
    return _safe_div(close - (mean - 2 * std), 4 * std, 0.5)


def _atr(frame: pd.DataFrame, period: int = 14) -> pd.Series:
    import pandas as pd

    previous = frame["close"].shift(1)
    true_range = pd.concat(
        [frame["high"] - frame["low"], (frame["high"] - previous).abs(), (frame["low"] - previous).abs()],
        axis=1,
    ).max(axis=1)
    return _ema(true_range, alpha=1 / period) / frame["close"]


def _volume_z(volume: pd.Series, window: int = 24) -> pd.Series:
    mean = volume.rolling(window).mean()
    std = volume.rolling(window).std(ddof=0)
    return _safe_div(volume - mean, std, 0.0)


def _hour_angle(stamps: pd.Series) -> pd.Series:
    import numpy as np

    hours = stamps.dt.hour + stamps.dt.minute / 60.0
    return 2 * np.pi * hours / 24.0


def _feature_table(time: str) -> dict[str, Callable[[pd.DataFrame], pd.Series]]:
    import numpy as np

    def ret(k: int) -> Callable[[pd.DataFrame], pd.Series]:
        return lambda f: f["close"].pct_change(k)

    def vol(k: int) -> Callable[[pd.DataFrame], pd.Series]:
        return lambda f: f["close"].pct_change(1).rolling(k).std(ddof=0)

    def sma_ratio(n: int) -> Callable[[pd.DataFrame], pd.Series]:
        return lambda f: f["close"] / f["close"].rolling(n).mean() - 1.0

    def macd_signal(f: pd.DataFrame) -> pd.Series:
        return _ema(_macd(f["close"]), span=9)

    return {
        "ret_1": ret(1),
        "ret_3": ret(3),
        "ret_6": ret(6),
        "ret_12": ret(12),
        "ret_24": ret(24),
        "vol_12": vol(12),
        "vol_24": vol(24),
        "rsi_14": lambda f: _rsi(f["close"]),
        "macd": lambda f: _macd(f["close"]),
        "macd_signal": macd_signal,
        "macd_hist": lambda f: _macd(f["close"]) - macd_signal(f),
        "bb_pos_20": lambda f: _bb_pos(f["close"]),
        "atr_14": _atr,
        "volume_z_24": lambda f: _volume_z(f["volume"]),
        "hl_range": lambda f: (f["high"] - f["low"]) / f["close"],
        "close_sma_ratio_20": sma_ratio(20),
        "close_sma_ratio_50": sma_ratio(50),
        # sin/cos are the only transcendental functions here; numpy's SIMD kernels may differ in
        # the last bit between CPUs, so round them: the bundle's bytes must not depend on the CPU.
        "hour_sin": lambda f: np.round(np.sin(_hour_angle(f[time])), 12),
        "hour_cos": lambda f: np.round(np.cos(_hour_angle(f[time])), 12),
    }


def compute_features(
    candles: pd.DataFrame, names: Sequence[str], *, where: str = "ml_config.json", time: str = "timestamp"
) -> pd.DataFrame:
    """The named features for every candle (float64, columns in ``names`` order; warm-up rows are NaN).

    ``candles`` has open, high, low, close, volume and a tz-aware UTC time column named ``time``
    (training's frames call it ``timestamp``, Freqtrade's ``date``).
    """
    import pandas as pd

    table = _feature_table(time)
    assert set(table) == set(FEATURE_CATALOGUE), "feature table and FEATURE_CATALOGUE drifted apart"
    columns = {}
    for index, name in enumerate(names):
        if name not in table:
            raise InputError(
                where, f"features[{index}]", f"unknown feature {name!r} (not in the feature catalogue)"
            )
        columns[name] = table[name](candles).astype("float64")
    return pd.DataFrame(columns, index=candles.index)
