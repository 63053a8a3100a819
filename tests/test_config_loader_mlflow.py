"""StrategyConfigLoader.for_env reads MLflow version tags from the env's registry (SQLite here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry_helpers import training_result
from tradai_release.configs.loader import StrategyConfigLoader
from tradai_release.core.errors import StartupError
from tradai_release.core.settings import Settings
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.registry.registrar import ModelRegistrar
from tradai_release.repository.environments import environment

REPO_ROOT = Path(__file__).resolve().parents[1]
TRADES = "strategy_service.defaults.max_open_trades"


def test_for_env_layers_the_registry_tags_of_the_chosen_version(tmp_path: Path) -> None:
    settings = Settings(repo=REPO_ROOT, state_dir=tmp_path / "state")
    ModelRegistrar.for_env(environment(settings, "dev"), settings).register(
        training_result(tmp_path, "MyStrategy")
    )
    registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)
    registry.set_version_tag("MyStrategy", 1, f"config.{TRADES}", "7")

    loader = StrategyConfigLoader.for_env(environment(settings, "dev"), settings, environ={})
    yaml_path = REPO_ROOT / "strategies" / "MyStrategy" / "tradai.yaml"
    loaded = loader.load("MyStrategy", tradai_yaml=yaml_path, model_version=1)
    assert loaded.service.max_open_trades == 7
    assert loaded.source_of(TRADES) == f"mlflow tag config.{TRADES} of MyStrategy v1"

    without = loader.load("MyStrategy", tradai_yaml=yaml_path)  # no version: the registry is not read
    assert without.source_of(TRADES) == "tradai.yaml"

    registry.set_version_tag("MyStrategy", 1, f"config.{TRADES}", "many")
    with pytest.raises(StartupError, match=f"{TRADES}.*mlflow tag"):
        loader.load("MyStrategy", tradai_yaml=yaml_path, model_version=1)
