"""The recent window scored against a model's references: feature rows of a candles CSV."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings

# A window shorter than this says nothing about a 10-bin distribution.
MIN_WINDOW_ROWS = 50


@dataclass(frozen=True)
class Window:
    """The recent data scored against the reference."""

    source: str
    rows: int
    start: str
    end: str


def window_features(csv: Path, display: str, features: Sequence[str], last: int | None) -> tuple[Any, Window]:
    """Feature rows of a candles CSV (after the warm-up), the last ``last`` of them when given."""
    import numpy as np

    from tradai_release.bot.features import WARMUP_ROWS, compute_features
    from tradai_release.training.features import load_candles

    candles = load_candles(csv, display)
    table = compute_features(candles.frame, features, where=display).iloc[WARMUP_ROWS:]
    stamps = candles.frame["timestamp"].iloc[WARMUP_ROWS:]
    x = table.to_numpy(dtype=np.float64)
    keep = np.isfinite(x).all(axis=1)
    x, stamps = x[keep], stamps[keep]
    if last is not None:
        x, stamps = x[-last:], stamps.iloc[-last:]
    if len(x) < MIN_WINDOW_ROWS:
        raise InputError(
            display,
            "rows",
            f"{len(x)} candles after the {WARMUP_ROWS}-candle warm-up; need at least {MIN_WINDOW_ROWS}",
        )
    iso = "%Y-%m-%dT%H:%M:%SZ"
    return x, Window(display, len(x), stamps.iloc[0].strftime(iso), stamps.iloc[-1].strftime(iso))


def recent_window(
    settings: Settings, strategy: str, csv: Path | None, features: Sequence[str]
) -> tuple[Any, Window]:
    """``csv`` (a ``--data`` file) whole, else the last ``settings.drift_window_rows`` candles of the
    strategy's data set."""
    if csv is not None:
        path = Path(csv)
        if not path.is_file():
            raise InputError(str(csv), "--data", "file not found")
        return window_features(path, str(csv), features, None)
    from tradai_release.training.train import data_file

    path, display = data_file(settings.repo, strategy)
    x, window = window_features(path, display, features, settings.drift_window_rows)
    return x, Window(f"{display} (last {window.rows} candles)", window.rows, window.start, window.end)
