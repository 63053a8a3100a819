"""Generate the example strategies' training candles deterministically (hourly OHLCV, a few thousand rows).

The series are synthetic but not white noise: returns follow a two-regime process
(calm/volatile, persistent) with short-term momentum or mean reversion, an
intraday volatility cycle, and volume that rises with absolute returns - enough
structure for the models to find something and for the backtest to mean something.

    python tools/make_dataset.py            # (re)writes strategies/*/data/*.csv
    python tools/make_dataset.py --check    # exit 1 if the committed files differ
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
START = np.datetime64("2024-01-01T00:00")


@dataclass(frozen=True)
class Series:
    strategy: str
    file: str
    seed: int
    start_price: float
    rows: int
    drift: float  # mean hourly log return
    phi: float  # lag-1 autocorrelation of returns: > 0 momentum, < 0 mean reversion
    vol_calm: float
    vol_storm: float
    base_volume: float


SERIES = (
    Series("MyStrategy", "btc_usdt_1h.csv", 11, 42_000.0, 3000, 0.00004, 0.12, 0.0045, 0.011, 850.0),
    Series("PascalStrategy", "btc_usdt_1h.csv", 53, 43_500.0, 3200, 0.00005, 0.15, 0.0042, 0.010, 900.0),
    Series("KeplerStrategy", "eth_usdt_1h.csv", 37, 2_300.0, 3000, 0.00002, -0.14, 0.0055, 0.013, 12_000.0),
)


def generate(spec: Series) -> str:
    """CSV text of one series; identical for identical specs on every machine."""
    rng = np.random.default_rng(spec.seed)
    n = spec.rows
    # Persistent regimes: switch with probability 2 % per hour.
    switches = rng.random(n) < 0.02
    regime = np.cumsum(switches) % 2
    hours = np.arange(n) % 24
    intraday = 1.0 + 0.35 * np.sin(2 * np.pi * (hours - 14) / 24)
    sigma = np.where(regime == 0, spec.vol_calm, spec.vol_storm) * intraday
    shocks = rng.standard_normal(n) * sigma
    returns = np.empty(n)
    previous = 0.0
    for i in range(n):
        previous = spec.drift + spec.phi * previous + shocks[i]
        returns[i] = previous
    close = spec.start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([spec.start_price], close[:-1]))
    wick = np.abs(rng.standard_normal((2, n))) * sigma * 0.6
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = spec.base_volume * (1 + 40 * np.abs(returns)) * rng.lognormal(0.0, 0.25, n)
    stamps = START + np.arange(n).astype("timedelta64[h]")

    out = io.StringIO()
    out.write("timestamp,open,high,low,close,volume\n")
    for t, o, h, lo, c, v in zip(stamps, open_, high, low, close, volume, strict=True):
        out.write(f"{t}:00Z,{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.3f}\n")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for spec in SERIES:
        path = ROOT / "strategies" / spec.strategy / "data" / spec.file
        text = generate(spec)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)} ({spec.rows} rows)")
    if stale:
        print(f"error: {', '.join(stale)}: data: differs from tools/make_dataset.py output", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
