"""Training data: a strategy's OHLCV candles, its features (``bot.features``) and the labels.

The labels and the split are described in docs/usage.md "Training".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.bot.features import WARMUP_ROWS, compute_features
from tradai_release.core.errors import InputError
from tradai_release.repository.strategy import MLConfig

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
# Fewer usable rows than this cannot give a meaningful train/held-out split.
MIN_ROWS = 300


@dataclass(frozen=True)
class Candles:
    """One validated OHLCV series in time order, and where it came from."""

    path: str  # as error messages and metadata name it (relative to the repository)
    frame: pd.DataFrame  # columns COLUMNS; timestamp tz-aware UTC, prices/volume float64
    sha256: str  # of the CSV bytes

    @property
    def rows(self) -> int:
        return len(self.frame)


def load_candles(path: Path, display: str) -> Candles:
    """Read and check a candles CSV: the six columns, numbers, no gaps in value, strictly rising time.

    Every problem is an InputError naming ``display`` (the path as the user knows it), the field
    and the reason; nothing is trained on data that is only partly right.
    """
    import io

    import numpy as np
    import pandas as pd

    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(display, "(file)", f"unreadable: {err.strerror or err}") from None
    if not raw.strip():
        raise InputError(display, "(file)", "empty file")
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(display, "(csv)", f"not a readable CSV: {first}") from None
    header = [str(name).strip() for name in frame.columns]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise InputError(
            display, "header", f"missing column(s) {', '.join(missing)} (expected {','.join(COLUMNS)})"
        )
    frame.columns = pd.Index(header)
    frame = frame[list(COLUMNS)]
    if frame.empty:
        raise InputError(display, "rows", "no candles")

    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    stamps = pd.to_datetime(frame["timestamp"].str.strip(), utc=True, errors="coerce", format="ISO8601")
    bad = stamps.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            display, f"line {row + 2}: timestamp", f"not a timestamp: {frame['timestamp'].iloc[row]!r}"
        )
    out["timestamp"] = stamps
    for name in COLUMNS[1:]:
        values = pd.to_numeric(frame[name].str.strip(), errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(
                display, f"line {row + 2}: {name}", f"not a finite number: {frame[name].iloc[row]!r}"
            )
        out[name] = values

    prices = out[["open", "high", "low", "close"]].to_numpy()
    checks: tuple[tuple[str, np.ndarray, str], ...] = (
        ("close", (prices <= 0).any(axis=1), "prices must be positive"),
        (
            "high",
            (out["high"] < out[["open", "close", "low"]].max(axis=1)).to_numpy(),
            "high below open/close/low",
        ),
        ("low", (out["low"] > out[["open", "close"]].min(axis=1)).to_numpy(), "low above open/close"),
        ("volume", (out["volume"] < 0).to_numpy(), "negative volume"),
    )
    for name, failed, reason in checks:
        if failed.any():
            row = int(np.argmax(failed))
            raise InputError(display, f"line {row + 2}: {name}", reason)
    backwards = (out["timestamp"].diff().iloc[1:] <= pd.Timedelta(0)).to_numpy()
    if backwards.any():
        row = int(np.argmax(backwards)) + 1
        raise InputError(
            display, f"line {row + 2}: timestamp", "candles must be in strictly increasing time order"
        )
    return Candles(path=display, frame=out, sha256=hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class Dataset:
    """Feature rows with both labels, in time order, split into training and held-out rows.

    ``gap`` rows between the two are dropped (purged): their labels look into the held-out
    period, so training on them would leak it.
    """

    features: tuple[str, ...]
    x_train: np.ndarray
    x_test: np.ndarray
    signal_train: np.ndarray
    signal_test: np.ndarray
    position_train: np.ndarray
    position_test: np.ndarray
    next_return_test: np.ndarray  # close[t+1] / close[t] - 1 for each held-out row (the backtest's P&L)
    test_start: str
    test_end: str
    data_start: str
    data_end: str
    usable_rows: int
    gap: int

    @property
    def train_rows(self) -> int:
        return len(self.x_train)

    @property
    def test_rows(self) -> int:
        return len(self.x_test)


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_dataset(candles: Candles, config: MLConfig, *, where: str = "ml_config.json") -> Dataset:
    """Features, labels and the time-ordered split (``test_fraction`` of the usable rows held out, last)."""
    import math

    import numpy as np

    frame = candles.frame
    features = compute_features(frame, config.features, where=where)
    close = frame["close"]
    signal_forward = close.shift(-config.signal.horizon) / close - 1.0
    position_forward = close.shift(-config.position.horizon) / close - 1.0
    next_return = close.shift(-1) / close - 1.0
    horizon = max(config.signal.horizon, config.position.horizon)

    last = len(frame) - horizon  # rows at or after this have no complete forward label
    usable = slice(WARMUP_ROWS, max(last, WARMUP_ROWS))
    x = features.iloc[usable].to_numpy(dtype=np.float64)
    n = len(x)
    if n < MIN_ROWS:
        raise InputError(
            candles.path,
            "rows",
            f"{n} usable rows ({len(frame)} candles less {WARMUP_ROWS} warm-up and {horizon} label horizon); "
            f"need at least {MIN_ROWS}",
        )
    finite = np.isfinite(x)
    if not finite.all():
        row, col = (int(v[0]) for v in np.nonzero(~finite))
        raise InputError(
            candles.path, f"line {WARMUP_ROWS + row + 2}: {config.features[col]}", "feature is not finite"
        )
    signal = (signal_forward.iloc[usable].to_numpy() > config.signal.threshold).astype(np.int64)
    position = (position_forward.iloc[usable].to_numpy() > 0.0).astype(np.int64)
    returns = next_return.iloc[usable].to_numpy(dtype=np.float64)
    stamps = frame["timestamp"].iloc[usable]

    n_test = math.ceil(n * config.test_fraction)
    n_train = n - n_test - horizon
    if n_train < MIN_ROWS // 2:
        raise InputError(
            candles.path,
            "rows",
            f"only {n_train} training rows after the held-out split; need {MIN_ROWS // 2}",
        )
    train, test = slice(0, n_train), slice(n - n_test, n)
    for name, labels in (("signal", signal), ("position", position)):
        for part, rows in (("training", train), ("held-out", test)):
            if len(np.unique(labels[rows])) < 2:
                raise InputError(
                    where,
                    f"{name}",
                    f"the {part} rows have only one {name} label class; "
                    "change the horizon/threshold or add data",
                )
    return Dataset(
        features=tuple(config.features),
        x_train=x[train],
        x_test=x[test],
        signal_train=signal[train],
        signal_test=signal[test],
        position_train=position[train],
        position_test=position[test],
        next_return_test=returns[test],
        test_start=_iso(stamps.iloc[n - n_test]),
        test_end=_iso(stamps.iloc[n - 1]),
        data_start=_iso(frame["timestamp"].iloc[0]),
        data_end=_iso(frame["timestamp"].iloc[-1]),
        usable_rows=n,
        gap=horizon,
    )
