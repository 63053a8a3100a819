"""The equity curve of a version's held-out backtest: downsampled at training, kept as a version tag.

Training records the curve (equity after each held-out candle, starting at 1) downsampled to at most
``MAX_POINTS`` evenly spaced points, the last one always kept; the registrar writes it as the model
version tag ``equity_curve`` (about 2 KB of JSON, well inside MLflow's 100 000-character limit). A tag
rides along with the version reads plan and report already make (one batched search), so neither the
registration nor the pull-request chart nor the report costs an extra call or artifact download.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

EQUITY_TAG = "equity_curve"
MAX_POINTS = 250
DIGITS = 5  # equity to 1e-5 of the starting capital: far below what a chart shows


@dataclass(frozen=True)
class EquityCurve:
    """Equity (1 = the starting capital) at evenly spaced points of a held-out window of ``candles``."""

    points: tuple[float, ...]
    candles: int
    start: str = ""
    end: str = ""

    def to_tag(self) -> str:
        return json.dumps(
            {"candles": self.candles, "start": self.start, "end": self.end, "equity": list(self.points)},
            separators=(",", ":"),
        )

    @property
    def final(self) -> float:
        return self.points[-1] if self.points else 1.0

    def resampled(self, count: int) -> tuple[float, ...]:
        """``count`` values at evenly spaced fractions 0..1 of the window (linear between points)."""
        points = self.points
        if count < 2 or not points:
            return tuple(points[-1:] * max(count, 0))
        last = len(points) - 1
        out = []
        for index in range(count):
            where = index * last / (count - 1)
            low = int(where)
            high = min(low + 1, last)
            share = where - low
            out.append(points[low] * (1 - share) + points[high] * share)
        return tuple(out)


def downsample(equity: Sequence[float], limit: int = MAX_POINTS) -> tuple[float, ...]:
    """At most ``limit`` evenly spaced values of ``equity`` (first and last kept), rounded, led by 1."""
    values = [1.0, *(float(value) for value in equity)]
    if len(values) > limit:
        last = len(values) - 1
        values = [values[round(index * last / (limit - 1))] for index in range(limit)]
    return tuple(round(value, DIGITS) for value in values)


def from_tags(tags: Mapping[str, str]) -> EquityCurve | None:
    """The curve a version's tags carry; None when there is none or it is unreadable (older versions)."""
    text = tags.get(EQUITY_TAG)
    if not text:
        return None
    try:
        data = json.loads(text)
        points = tuple(float(value) for value in data["equity"])
        candles = int(data.get("candles") or len(points))
    except (ValueError, TypeError, KeyError):
        return None
    if not points:
        return None
    return EquityCurve(points, candles, str(data.get("start") or ""), str(data.get("end") or ""))
