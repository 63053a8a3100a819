"""tradai-release: a git repository as the source of truth for what is live in TradAI.

The seed's classes are re-exported lazily so ``import tradai_release`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Settings": "tradai_release.core.settings",
    "ConfigVersionService": "tradai_release.configs.service",
    "StrategyConfigLoader": "tradai_release.configs.loader",
    "ConfigMergeService": "tradai_release.configs.merge",
    "ModelRegistrar": "tradai_release.registry.registrar",
    "ModelComparator": "tradai_release.registry.comparator",
    "ModelHub": "tradai_release.hub.hub",
    "environment": "tradai_release.repository.environments",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tradai_release' has no attribute {name!r}")
    return getattr(import_module(module), name)
