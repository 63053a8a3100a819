"""The bot's merged runtime config, its model version's ``config.*`` tags as the last apply recorded them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradai_release.configs.loader import StrategyConfig
    from tradai_release.engine.release_table import AppliedState
    from tradai_release.engine.state import EngineBackends


def load_config(
    backends: EngineBackends,
    strategy: str,
    model_name: str | None,
    model_version: int | None,
    applied: AppliedState | None,
) -> StrategyConfig:
    """The merged runtime config (``StrategyConfigLoader.for_env``'s sources, on these backends).

    The model version's ``config.*`` tags come from the snapshot the apply that aliased it
    recorded, so a bot needs no MLflow client; only a version the record lacks (an apply by an
    older release, or the seed's start-up) reads them from the registry.
    """
    from tradai_release.configs.loader import ModelTagSource, StrategyConfigLoader

    recorded = applied.config_tags.get(model_name or "", {}) if applied is not None else {}
    tags: ModelTagSource
    if model_version is not None and str(model_version) in recorded:
        tags = _RecordedTags({(model_name or "", model_version): recorded[str(model_version)]})
    else:
        from tradai_release.registry.adapter import MlflowTagSource

        tags = MlflowTagSource(backends.registry)
    loader = StrategyConfigLoader(versions=backends.configs, tags=tags)
    return loader.load(strategy, model_name=model_name, model_version=model_version)


@dataclass(frozen=True)
class _RecordedTags:
    """Model version tags as the last apply recorded them."""

    tags: Mapping[tuple[str, int], Mapping[str, str]]

    def model_version_tags(self, model_name: str, version: int) -> dict[str, str]:
        return dict(self.tags[(model_name, version)])
