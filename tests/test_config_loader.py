"""Runtime config loading: env vars > MLflow tags > ACTIVE stored config > tradai.yaml, and startup errors."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config_helpers import Backend, make_backend
from helpers import TRADAI_YAML, tradai_data
from tradai_release.configs.loader import ModelTagSource, StrategyConfig, StrategyConfigLoader
from tradai_release.configs.merge import ConfigLayer, ConfigMergeService
from tradai_release.configs.service import ConfigVersionService
from tradai_release.core.errors import StartupError
from tradai_release.core.settings import Settings
from tradai_release.repository.environments import environments

STAKE = "strategy_service.defaults.stake_amount"
TRADES = "strategy_service.defaults.max_open_trades"
TIMERANGE = "strategy_service.defaults.timerange"
ENV_STAKE = "TRADAI_CFG__strategy_service__defaults__stake_amount"
TAG_TRADES = "config.strategy_service.defaults.max_open_trades"


class FakeTags:
    """In-memory MLflow model-version tags (the registry adapter implements the same protocol)."""

    def __init__(self, tags: dict[tuple[str, int], dict[str, str]]) -> None:
        self.tags = tags
        self.calls: list[tuple[str, int]] = []

    def model_version_tags(self, model_name: str, version: int) -> dict[str, str]:
        self.calls.append((model_name, version))
        return dict(self.tags.get((model_name, version), {}))


@pytest.fixture
def yaml_path(tmp_path: Path) -> Path:
    path = tmp_path / "strategies" / "PascalStrategy" / "tradai.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(TRADAI_YAML)
    return path


@pytest.fixture
def base() -> dict[str, Any]:
    return tradai_data()


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    with make_backend("sqlite", tmp_path) as made:
        yield made


@pytest.fixture
def versions(backend: Backend) -> ConfigVersionService:
    return backend.service()


def activate(versions: ConfigVersionService, data: dict[str, Any]) -> str:
    version = versions.create_version(strategy_name="PascalStrategy", config_data=data, description="test")
    return versions.activate("PascalStrategy", version.config_id).config_id


def stored_config(base: dict[str, Any]) -> dict[str, Any]:
    """The ACTIVE config: differs from tradai.yaml in stake, trades and timerange, and has no deployment."""
    data = copy.deepcopy(base)
    data["strategy_service"]["defaults"].update(stake_amount=1500, max_open_trades=3, timerange="20240601-")
    del data["deployment"]
    return data


# --- priority of the four sources -----------------------------------------------------------------------


def test_each_source_wins_over_the_ones_below(
    yaml_path: Path, base: dict[str, Any], versions: ConfigVersionService
) -> None:
    config_id = activate(versions, stored_config(base))
    tags = FakeTags({("PascalStrategy", 7): {TAG_TRADES: "5", "config." + STAKE: "1200", "r2_tag": "x"}})
    loader = StrategyConfigLoader(versions=versions, tags=tags, environ={ENV_STAKE: "2000"})
    loaded = loader.load("PascalStrategy", tradai_yaml=yaml_path, model_version=7)

    assert isinstance(loaded, StrategyConfig)
    assert loaded.service.stake_amount == 2000 and loaded.source_of(STAKE) == f"env {ENV_STAKE}"
    assert loaded.service.max_open_trades == 5
    assert loaded.source_of(TRADES) == f"mlflow tag {TAG_TRADES} of PascalStrategy v7"
    assert (
        loaded.service.timerange == "20240601-"
        and loaded.source_of(TIMERANGE) == f"active config {config_id}"
    )
    assert loaded.deployment == base["deployment"] and loaded.source_of("deployment.ecs.cpu") == "tradai.yaml"
    assert loaded.config_id == config_id and (loaded.model_name, loaded.model_version) == (
        "PascalStrategy",
        7,
    )
    assert tags.calls == [("PascalStrategy", 7)]
    assert loaded.strategy.name == "PascalStrategy" and loaded.mlflow.tracking_uri == "http://localhost:5001"


@pytest.mark.parametrize(
    ("with_env", "with_tag", "with_active", "winner", "stake"),
    [
        (True, True, True, f"env {ENV_STAKE}", 2000),
        (False, True, True, f"mlflow tag config.{STAKE} of PascalStrategy v7", 1200),
        (False, False, True, "active config", 1500),
        (False, False, False, "tradai.yaml", 2500),
    ],
)
def test_the_highest_source_present_sets_the_value(
    yaml_path: Path,
    base: dict[str, Any],
    versions: ConfigVersionService,
    with_env: bool,
    with_tag: bool,
    with_active: bool,
    winner: str,
    stake: int,
) -> None:
    if with_active:
        activate(versions, stored_config(base))
    tags = FakeTags({("PascalStrategy", 7): {"config." + STAKE: "1200"}} if with_tag else {})
    environ = {ENV_STAKE: "2000"} if with_env else {}
    loaded = StrategyConfigLoader(versions=versions, tags=tags, environ=environ).load(
        "PascalStrategy", tradai_yaml=yaml_path, model_version=7
    )
    assert loaded.service.stake_amount == stake
    assert loaded.source_of(STAKE).startswith(winner)


def test_stored_active_config_alone_is_enough(base: dict[str, Any], versions: ConfigVersionService) -> None:
    config_id = activate(versions, base)
    loaded = StrategyConfigLoader(versions=versions, environ={}).load("PascalStrategy")
    assert loaded.config_id == config_id and loaded.service.stake_amount == 2500


def test_loader_for_env_reads_the_envs_registry(base: dict[str, Any]) -> None:
    settings = Settings()  # the embedded default under TRADAI_STATE_DIR
    staging, dev = environments(settings, ["staging", "dev"])
    config_id = activate(ConfigVersionService.for_env(staging, settings), base)
    loaded = StrategyConfigLoader.for_env(staging, settings, environ={}).load("PascalStrategy")
    assert loaded.config_id == config_id
    assert StrategyConfigLoader.for_env(dev, settings, environ={}).versions is not None


# --- env var and tag mapping ----------------------------------------------------------------------------


def test_env_vars_map_to_nested_fields_with_schema_types(yaml_path: Path) -> None:
    environ = {
        "TRADAI_CFG__STRATEGY_SERVICE__DEFAULTS__MAX_OPEN_TRADES": "4",  # case-insensitive segments
        "TRADAI_CFG__strategy_service__defaults__symbols": "BTC/USDT:USDT, ETH/USDT:USDT",
        "TRADAI_CFG__strategy_service__defaults__stake_amount": "12.5",
        "TRADAI_CFG__mlflow__auto_log_params": "off",
        "TRADAI_CFG__optimization__defaults__spaces": '["buy", "roi"]',
        "TRADAI_CFG__strategy_service__adapter__bucket_name": "other-bucket",
        "TRADAI_CFG__strategy_service__adapter__KIND": "S3",
        "TRADAI_CFG__deployment__ecs__cpu": "1024",
        "UNRELATED": "ignored",
    }
    loaded = StrategyConfigLoader(environ=environ).load("PascalStrategy", tradai_yaml=yaml_path)
    assert loaded.service.max_open_trades == 4
    assert loaded.source_of(TRADES) == "env TRADAI_CFG__STRATEGY_SERVICE__DEFAULTS__MAX_OPEN_TRADES"
    assert loaded.service.symbols == ("BTC/USDT:USDT", "ETH/USDT:USDT")
    assert loaded.service.stake_amount == 12.5
    assert loaded.mlflow.auto_log_params is False
    assert loaded.optimization["defaults"]["spaces"] == ["buy", "roi"]
    assert loaded.optimization["defaults"]["epochs"] == 150  # siblings of an override stay
    assert loaded.service.adapter == {"KIND": "S3", "bucket_name": "other-bucket", "library": "ohlcv"}
    assert loaded.deployment["ecs"] == {"cpu": 1024, "memory": 1024}


def test_tags_of_another_version_or_without_a_version_do_not_apply(yaml_path: Path) -> None:
    tags = FakeTags({("PascalStrategy", 8): {TAG_TRADES: "9"}, ("PascalModel", 7): {TAG_TRADES: "6"}})
    loader = StrategyConfigLoader(tags=tags, environ={})
    assert loader.load("PascalStrategy", tradai_yaml=yaml_path, model_version=7).service.max_open_trades == 2
    assert loader.load("PascalStrategy", tradai_yaml=yaml_path).service.max_open_trades == 2
    named = loader.load("PascalStrategy", tradai_yaml=yaml_path, model_name="PascalModel", model_version=7)
    assert named.service.max_open_trades == 6 and named.model_name == "PascalModel"
    assert isinstance(tags, ModelTagSource)


def test_interpolation_at_load_with_the_schema_type(tmp_path: Path) -> None:
    path = tmp_path / "tradai.yaml"
    path.write_text(TRADAI_YAML.replace("stake_amount: 2500", "stake_amount: ${STAKE:-1000}"))
    environ = {"MLFLOW_TRACKING_URI": "http://mlflow.internal:5000", "STAKE": "750"}
    loaded = StrategyConfigLoader(environ=environ).load("PascalStrategy", tradai_yaml=path)
    assert loaded.mlflow.tracking_uri == "http://mlflow.internal:5000"
    assert loaded.service.stake_amount == 750
    assert (
        StrategyConfigLoader(environ={}).load("PascalStrategy", tradai_yaml=path).service.stake_amount == 1000
    )


# --- startup errors name the field and its source -------------------------------------------------------


def test_bad_env_value_names_the_variable(yaml_path: Path) -> None:
    loader = StrategyConfigLoader(environ={ENV_STAKE: "lots"})
    with pytest.raises(StartupError) as caught:
        loader.load("PascalStrategy", tradai_yaml=yaml_path)
    err = caught.value
    assert (err.field, err.source) == (STAKE, f"env {ENV_STAKE}")
    assert str(err) == f'startup: {STAKE}: expected number, got string "lots" (from env {ENV_STAKE})'


def test_bad_tag_value_names_the_tag_and_model_version(yaml_path: Path) -> None:
    tags = FakeTags({("PascalStrategy", 7): {TAG_TRADES: "0"}})
    with pytest.raises(StartupError) as caught:
        StrategyConfigLoader(tags=tags, environ={}).load(
            "PascalStrategy", tradai_yaml=yaml_path, model_version=7
        )
    assert caught.value.field == TRADES
    assert caught.value.source == f"mlflow tag {TAG_TRADES} of PascalStrategy v7"
    assert "minimum of 1" in caught.value.reason


def test_bad_stored_value_names_the_active_version(
    yaml_path: Path, base: dict[str, Any], versions: ConfigVersionService
) -> None:
    data = copy.deepcopy(base)
    data["deployment"]["ecs"]["cpu"] = 64
    config_id = activate(versions, data)
    with pytest.raises(StartupError, match=rf"deployment\.ecs\.cpu: .* \(from active config {config_id}\)"):
        StrategyConfigLoader(versions=versions, environ={}).load("PascalStrategy", tradai_yaml=yaml_path)


def test_bad_file_value_and_unknown_keys_name_their_source(tmp_path: Path) -> None:
    path = tmp_path / "tradai.yaml"
    path.write_text(TRADAI_YAML.replace('timeframe: "1h"', 'timeframe: "hourly"'))
    with pytest.raises(StartupError, match=r"strategy\.timeframe: .*\(from tradai\.yaml\)"):
        StrategyConfigLoader(environ={}).load("PascalStrategy", tradai_yaml=path)
    unknown = "TRADAI_CFG__strategy_service__defaults__stake"
    with pytest.raises(StartupError, match=rf"defaults\.stake: unknown key .*\(from env {unknown}\)"):
        StrategyConfigLoader(environ={unknown: "1"}).load("PascalStrategy", tradai_yaml=tradai_data())


def test_unset_variable_without_default_is_a_startup_error(tmp_path: Path) -> None:
    path = tmp_path / "tradai.yaml"
    path.write_text(TRADAI_YAML.replace("${MLFLOW_TRACKING_URI:-http://localhost:5001}", "${MLFLOW_URI}"))
    with pytest.raises(
        StartupError, match=r"mlflow\.tracking_uri: environment variable MLFLOW_URI is not set"
    ):
        StrategyConfigLoader(environ={}).load("PascalStrategy", tradai_yaml=path)


def test_missing_sources_and_unreadable_files(tmp_path: Path, versions: ConfigVersionService) -> None:
    with pytest.raises(StartupError, match=r"no stored ACTIVE config and no tradai\.yaml"):
        StrategyConfigLoader(versions=versions, environ={ENV_STAKE: "1"}).load("PascalStrategy")
    with pytest.raises(StartupError, match="cannot read"):
        StrategyConfigLoader(environ={}).load("PascalStrategy", tradai_yaml=tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("strategy: [unclosed\n")
    with pytest.raises(StartupError, match="malformed YAML"):
        StrategyConfigLoader(environ={}).load("PascalStrategy", tradai_yaml=broken)
    with pytest.raises(StartupError, match="empty path segment"):
        StrategyConfigLoader(environ={"TRADAI_CFG__strategy____x": "1"}).load(
            "PascalStrategy", tradai_yaml=tradai_data()
        )


def test_a_config_of_another_strategy_is_refused(yaml_path: Path) -> None:
    with pytest.raises(
        StartupError, match=r"strategy\.name: 'PascalStrategy' is not the strategy being loaded"
    ):
        StrategyConfigLoader(environ={}).load("KeplerStrategy", tradai_yaml=yaml_path)


# --- the merge itself -----------------------------------------------------------------------------------


def test_merge_replaces_lists_and_scalars_and_merges_mappings() -> None:
    merger = ConfigMergeService()
    merged = merger.merge(
        [
            ConfigLayer("low", {"a": {"b": 1, "c": [1, 2]}, "d": 1}),
            ConfigLayer("mid", {"a": {"c": [3]}, "d": {"e": 2}}),
            ConfigLayer("high", {"a": {"b": 9}}, {"a.b": "env X"}),
        ]
    )
    assert merged.data == {"a": {"b": 9, "c": [3]}, "d": {"e": 2}}
    assert merged.source_of("a.b") == "env X"
    assert merged.source_of("a.c[0]") == "mid"
    assert merged.source_of("d.e") == "mid"
    assert merged.source_of("a") == "low"
    assert merged.source_of("zzz") == "merged config"


def test_coercion_follows_the_schema() -> None:
    merger = ConfigMergeService()
    assert merger.coerce(("strategy_service", "defaults", "max_open_trades"), "3") == 3
    assert merger.coerce(("strategy_service", "defaults", "max_open_trades"), "3.5") == "3.5"  # named later
    assert merger.coerce(("strategy_service", "defaults", "stake_amount"), "1e3") == 1000.0
    assert merger.coerce(("mlflow", "auto_log_params"), "YES") is True
    assert merger.coerce(("strategy", "version"), "2") == "2"
    assert merger.coerce(("strategy_service", "adapter", "region"), "eu-west-1") == "eu-west-1"
    assert merger.coerce(("no", "such", "field"), "7") == "7"
    assert merger.resolve_keys(["Strategy_Service", "DEFAULTS", "Odd"]) == (
        "strategy_service",
        "defaults",
        "Odd",
    )
