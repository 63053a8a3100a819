"""The MLflow model registry: adapter, registration, lifecycle derivation, comparison and read views."""

from __future__ import annotations

from tradai_release.registry.adapter import MlflowRegistry, MlflowTagSource, ModelRegistry, ModelVersionInfo

__all__ = ["MlflowRegistry", "MlflowTagSource", "ModelRegistry", "ModelVersionInfo"]
