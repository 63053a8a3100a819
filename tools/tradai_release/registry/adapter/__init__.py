"""The model registry interface and its MLflow implementation (SQLite or an ``mlflow server`` over HTTP).

The only package that imports mlflow (import-linter's ``mlflow-in-registry-adapter``): ``interface``
declares what the project asks of a registry; ``connection`` is the counted MLflow client that
translates errors; ``runs`` writes runs and new versions; ``mlflow_registry`` reads versions and
moves aliases, tags and stages.
"""

from __future__ import annotations

from tradai_release.registry.adapter.interface import (
    STAGES,
    LoggedRun,
    ModelFiles,
    ModelRegistry,
    ModelVersionInfo,
)
from tradai_release.registry.adapter.mlflow_registry import MlflowRegistry, MlflowTagSource

__all__ = [
    "STAGES",
    "LoggedRun",
    "MlflowRegistry",
    "MlflowTagSource",
    "ModelFiles",
    "ModelRegistry",
    "ModelVersionInfo",
]
