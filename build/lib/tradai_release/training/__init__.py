"""Model training: features, signal/position ensembles, ONNX export, backtest (docs/architecture.md §6)."""

from tradai_release.training.result import BACKTEST_METRICS, TrainingResult
from tradai_release.training.train import train_all, train_strategy

__all__ = ["BACKTEST_METRICS", "TrainingResult", "train_all", "train_strategy"]
