"""What one training run produced: the value handed from training to the hub and the registrar."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradai_release.core.equity import EquityCurve

# The held-out metrics every registered version carries (docs/architecture.md §5); the comparator reads them.
BACKTEST_METRICS: tuple[str, ...] = (
    "total_profit",
    "sharpe_ratio",
    "max_drawdown",
    "win_rate",
    "total_trades",
)


@dataclass(frozen=True)
class TrainingResult:
    """One strategy's freshly trained bundle under ``model_dir`` (= ``<models_dir>/<strategy_name>``).

    ``metrics`` holds ``accuracy`` (signal model, held-out), ``position_accuracy`` and the
    BACKTEST_METRICS of the signal model's held-out backtest. ``max_drawdown`` and ``win_rate``
    are fractions (0.3 = 30 %). ``params`` are the training parameters (flat, str/int/float).
    ``equity`` is the held-out backtest's equity curve, downsampled (the registrar tags it on the version).
    """

    strategy_name: str
    model_dir: Path
    features: tuple[str, ...]
    metrics: dict[str, float]
    params: dict[str, Any]
    git_commit: str | None
    trace_id: str
    data_rows: int
    equity: EquityCurve | None = None
    backtest_engine: str | None = None  # what computed the BACKTEST_METRICS: "freqtrade 2026.9"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_count(self) -> int:
        return len(self.features)
