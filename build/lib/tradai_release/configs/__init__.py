"""Strategy config versions: registry, config bucket, runtime loading (docs/architecture.md §3)."""

from __future__ import annotations

from tradai_release.configs.entities import ConfigStatus, ConfigVersion
from tradai_release.configs.repository import ConfigRepository, S3ConfigRepository
from tradai_release.configs.service import ConfigVersionService, StrategyState

__all__ = [
    "ConfigRepository",
    "ConfigStatus",
    "ConfigVersion",
    "ConfigVersionService",
    "S3ConfigRepository",
    "StrategyState",
]
