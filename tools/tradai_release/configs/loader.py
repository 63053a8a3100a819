"""Runtime config loading for a strategy container (the seed's StrategyConfigLoader).

Highest priority first: ``TRADAI_CFG__*`` variables, the model version's ``config.*`` MLflow tags, the
ACTIVE stored config, tradai.yaml; the result must pass the schema (docs/bots.md, architecture §3).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tradai_release.configs.merge import ConfigLayer, ConfigMergeService, MergedConfig
from tradai_release.core.errors import InputError, StartupError
from tradai_release.core.yamlio import dotted

if TYPE_CHECKING:
    from tradai_release.configs.service import ConfigVersionService
    from tradai_release.core.settings import Settings
    from tradai_release.repository.environments import Environment

ENV_PREFIX = "TRADAI_CFG__"
TAG_PREFIX = "config."
TRADAI_SOURCE = "tradai.yaml"


@runtime_checkable
class ModelTagSource(Protocol):
    """Where MLflow model-version tags come from (the model registry adapter implements it)."""

    def model_version_tags(self, model_name: str, version: int) -> dict[str, str]:
        """Every tag of one registered model version."""
        ...


@dataclass(frozen=True)
class StrategyInfo:
    """``strategy`` section of the runtime config."""

    name: str
    version: str
    entry_point: str
    category: str
    timeframe: str


@dataclass(frozen=True)
class ServiceDefaults:
    """``strategy_service`` section: data source and adapter, and the trading defaults."""

    source: dict[str, Any]
    adapter: dict[str, Any]
    timerange: str
    symbols: tuple[str, ...]
    stake_amount: float
    max_open_trades: int


@dataclass(frozen=True)
class MlflowSettings:
    """``mlflow`` section (interpolated)."""

    tracking_uri: str
    experiment_name: str
    auto_log_params: bool


@dataclass(frozen=True)
class StrategyConfig:
    """The validated runtime config of one strategy, with the source of every field.

    ``config_id`` is the stored ACTIVE version the config was built on (None when
    there was none); ``sources`` maps dotted fields to where their value came from.
    """

    strategy: StrategyInfo
    service: ServiceDefaults
    mlflow: MlflowSettings
    optimization: dict[str, Any]
    deployment: dict[str, Any]
    data: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    config_id: str | None = None
    model_name: str | None = None
    model_version: int | None = None

    @classmethod
    def from_merged(
        cls,
        merged: MergedConfig,
        *,
        config_id: str | None = None,
        model_name: str | None = None,
        model_version: int | None = None,
    ) -> StrategyConfig:
        """Build from merged data that passed the tradai schema."""
        data = merged.data
        strategy, service, ml = data["strategy"], data["strategy_service"], data["mlflow"]
        defaults = service["defaults"]
        return cls(
            strategy=StrategyInfo(
                name=strategy["name"],
                version=strategy["version"],
                entry_point=strategy["entry_point"],
                category=strategy["category"],
                timeframe=strategy["timeframe"],
            ),
            service=ServiceDefaults(
                source=dict(service["source"]),
                adapter=dict(service["adapter"]),
                timerange=defaults["timerange"],
                symbols=tuple(defaults["symbols"]),
                stake_amount=float(defaults["stake_amount"]),
                max_open_trades=int(defaults["max_open_trades"]),
            ),
            mlflow=MlflowSettings(
                tracking_uri=ml["tracking_uri"],
                experiment_name=ml["experiment_name"],
                auto_log_params=bool(ml.get("auto_log_params", False)),
            ),
            optimization=dict(data["optimization"]),
            deployment=dict(data["deployment"]),
            data=data,
            sources=dict(merged.sources),
            config_id=config_id,
            model_name=model_name,
            model_version=model_version,
        )

    def source_of(self, field: str) -> str:
        """Where the value of a dotted field came from."""
        return MergedConfig(self.data, self.sources).source_of(field)


class StrategyConfigLoader:
    """Build a strategy's runtime config from its four sources (see the module docstring).

    ``environ`` defaults to ``os.environ`` read at each load; ``tags`` is optional
    (no MLflow layer without it); ``versions`` is the env's config registry
    (no stored layer without it).
    """

    def __init__(
        self,
        *,
        versions: ConfigVersionService | None = None,
        tags: ModelTagSource | None = None,
        environ: Mapping[str, str] | None = None,
        merger: ConfigMergeService | None = None,
    ) -> None:
        self.versions = versions
        self.tags = tags
        self.environ = environ
        self.merger = merger or ConfigMergeService()

    @classmethod
    def for_env(
        cls,
        env: Environment,
        settings: Settings | None = None,
        *,
        tags: ModelTagSource | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> StrategyConfigLoader:
        """A loader of ``env``: its stored ACTIVE configs and its MLflow registry's version tags.

        The registry is only read when ``load`` is given a ``model_version``.
        """
        from tradai_release.configs.service import ConfigVersionService
        from tradai_release.core.settings import Settings

        settings = settings or Settings()
        if tags is None:
            from tradai_release.registry.adapter import MlflowTagSource

            tags = MlflowTagSource.for_env(env, settings)
        return cls(versions=ConfigVersionService.for_env(env, settings), tags=tags, environ=environ)

    def load(
        self,
        strategy_name: str,
        *,
        tradai_yaml: Path | str | Mapping[str, Any] | None = None,
        model_name: str | None = None,
        model_version: int | None = None,
    ) -> StrategyConfig:
        """Merge, validate and type the runtime config of ``strategy_name``.

        ``tradai_yaml`` is the strategy's file (a path) or its parsed content;
        ``model_version`` selects the MLflow version whose ``config.*`` tags apply
        (``model_name`` defaults to the strategy name). Raises StartupError.
        """
        layers, config_id = self.layers(
            strategy_name, tradai_yaml=tradai_yaml, model_name=model_name, model_version=model_version
        )
        if not any(layer.source == TRADAI_SOURCE or layer.source.startswith("active") for layer in layers):
            raise StartupError(
                "(root)", "config sources", f"no stored ACTIVE config and no tradai.yaml for {strategy_name}"
            )
        merged = self.merger.merge(layers)
        self.merger.validate(merged)
        declared = merged.data["strategy"]["name"]
        if declared != strategy_name:
            raise StartupError(
                "strategy.name",
                merged.source_of("strategy.name"),
                f"{declared!r} is not the strategy being loaded ({strategy_name!r})",
            )
        return StrategyConfig.from_merged(
            merged,
            config_id=config_id,
            model_name=(model_name or strategy_name) if model_version is not None else None,
            model_version=model_version,
        )

    def layers(
        self,
        strategy_name: str,
        *,
        tradai_yaml: Path | str | Mapping[str, Any] | None = None,
        model_name: str | None = None,
        model_version: int | None = None,
    ) -> tuple[list[ConfigLayer], str | None]:
        """The config layers lowest priority first, and the ACTIVE config_id used (None if none)."""
        environ = self.environ if self.environ is not None else os.environ
        layers: list[ConfigLayer] = []
        if tradai_yaml is not None:
            layers.append(self._file_layer(tradai_yaml, environ))
        config_id = None
        if self.versions is not None:
            active = self.versions.get_active(strategy_name)
            if active is not None:
                config_id = active.config_id
                source = f"active config {active.config_id}"
                layers.append(ConfigLayer(source, self._interpolate(active.config_data, source, environ)))
        if self.tags is not None and model_version is not None:
            name = model_name or strategy_name
            tags = self.tags.model_version_tags(name, model_version)
            layers.append(self.tag_layer(tags, f"{name} v{model_version}"))
        layers.append(self.env_layer(environ))
        return layers, config_id

    def env_layer(self, environ: Mapping[str, str]) -> ConfigLayer:
        """Overrides from ``TRADAI_CFG__a__b__c`` variables, each field naming its variable."""
        data: dict[str, Any] = {}
        field_sources: dict[str, str] = {}
        for name in sorted(environ):
            if not name.startswith(ENV_PREFIX):
                continue
            segments = [part for part in name[len(ENV_PREFIX) :].split("__")]
            if not segments or any(not part for part in segments):
                raise StartupError(name, f"env {name}", "empty path segment (use TRADAI_CFG__section__key)")
            self._set(data, field_sources, segments, environ[name], f"env {name}")
        return ConfigLayer("environment", data, field_sources)

    def tag_layer(self, tags: Mapping[str, str], model: str) -> ConfigLayer:
        """Overrides from ``config.a.b.c`` tags of one model version (``model`` = "Name vN")."""
        data: dict[str, Any] = {}
        field_sources: dict[str, str] = {}
        for key in sorted(tags):
            if not key.startswith(TAG_PREFIX):
                continue
            segments = key[len(TAG_PREFIX) :].split(".")
            source = f"mlflow tag {key} of {model}"
            if any(not part for part in segments):
                raise StartupError(key, source, "empty path segment (use config.section.key)")
            self._set(data, field_sources, segments, str(tags[key]), source)
        return ConfigLayer(f"mlflow tags of {model}", data, field_sources)

    def _set(
        self,
        data: dict[str, Any],
        field_sources: dict[str, str],
        segments: list[str],
        raw: str,
        source: str,
    ) -> None:
        path = self.merger.resolve_keys(segments)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = self.merger.coerce(path, raw)
        field_sources[dotted(path)] = source

    def _file_layer(
        self, tradai_yaml: Path | str | Mapping[str, Any], environ: Mapping[str, str]
    ) -> ConfigLayer:
        if isinstance(tradai_yaml, Mapping):
            return ConfigLayer(TRADAI_SOURCE, self._interpolate(dict(tradai_yaml), TRADAI_SOURCE, environ))
        from tradai_release.core.yamlio import load_yaml

        path = Path(tradai_yaml)
        try:
            document = load_yaml(path.read_bytes(), str(path))
        except OSError as err:
            raise StartupError("(file)", str(path), f"cannot read: {err.strerror or err}") from None
        except InputError as err:
            raise StartupError(err.field, err.file, err.reason) from None
        if not isinstance(document.data, dict):
            raise StartupError("(root)", str(path), "expected a mapping")
        return ConfigLayer(TRADAI_SOURCE, self._interpolate(document.data, TRADAI_SOURCE, environ))

    def _interpolate(self, data: dict[str, Any], source: str, environ: Mapping[str, str]) -> dict[str, Any]:
        """Interpolate ``${VAR}`` strings; a string that was a reference gets the schema's type back."""
        from tradai_release.core.interpolate import interpolate_string

        def walk(value: Any, path: tuple[str | int, ...]) -> Any:
            if isinstance(value, str):
                if "${" not in value:
                    return value
                try:
                    text = interpolate_string(value, environ, source, dotted(path))
                except InputError as err:
                    raise StartupError(err.field, source, err.reason) from None
                return self.merger.coerce(path, text)
            if isinstance(value, dict):
                return {key: walk(item, (*path, key)) for key, item in value.items()}
            if isinstance(value, list):
                return [walk(item, (*path, index)) for index, item in enumerate(value)]
            return value

        result: dict[str, Any] = walk(data, ())
        return result
