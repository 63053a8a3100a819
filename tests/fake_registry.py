"""An in-memory ModelRegistry for tests of planning logic (no MLflow involved)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from tradai_release.core.errors import ModelVersionNotFound, RegistryError
from tradai_release.registry.adapter import STAGES, ModelVersionInfo


@dataclass
class _Model:
    versions: dict[int, ModelVersionInfo] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)


class FakeRegistry:
    """ModelRegistry kept in dicts; ``writes`` records every write call in order."""

    def __init__(self, *, stages_supported: bool = True) -> None:
        self._models: dict[str, _Model] = {}
        self._calls = 0
        self.stages_supported = stages_supported
        self.writes: list[tuple[str, ...]] = []

    @property
    def calls(self) -> int:
        return self._calls

    def add_version(self, name: str, *, tags: Mapping[str, str] | None = None,
                    metrics: Mapping[str, float] | None = None, stage: str = "None",
                    run_id: str | None = None) -> int:
        """Create the next version of ``name`` (the model too when missing); returns its number."""
        model = self._models.setdefault(name, _Model())
        number = max(model.versions, default=0) + 1
        model.versions[number] = ModelVersionInfo(
            name=name, version=number, status="READY", tags=dict(tags or {}), run_id=run_id,
            created_at=datetime.now(tz=UTC), stage=stage, metrics=dict(metrics or {}),
        )
        return number

    def _version(self, name: str, version: int) -> ModelVersionInfo:
        model = self._models.get(name)
        if model is None or version not in model.versions:
            raise ModelVersionNotFound(name, version)
        info = model.versions[version]
        aliases = tuple(sorted(alias for alias, target in model.aliases.items() if target == version))
        return replace(info, aliases=aliases, tags=dict(info.tags), metrics=dict(info.metrics))

    def versions(self, names: Iterable[str]) -> dict[str, list[ModelVersionInfo]]:
        self._calls += 1
        result: dict[str, list[ModelVersionInfo]] = {}
        for name in sorted(set(names)):
            model = self._models.get(name)
            result[name] = [self._version(name, number) for number in sorted(model.versions)] if model else []
        return result

    def get_version(self, name: str, version: int) -> ModelVersionInfo:
        self._calls += 1
        return self._version(name, version)

    def aliased_models(self) -> dict[str, list[str]]:
        self._calls += 1
        return {name: sorted(model.aliases) for name, model in sorted(self._models.items()) if model.aliases}

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._calls += 1
        self._version(name, version)
        self._models[name].aliases[alias] = version
        self.writes.append(("set_alias", name, alias, str(version)))

    def delete_alias(self, name: str, alias: str) -> None:
        self._calls += 1
        model = self._models.get(name)
        if model is None or alias not in model.aliases:
            raise RegistryError(f"{name} alias {alias}", "alias not found")
        del model.aliases[alias]
        self.writes.append(("delete_alias", name, alias))

    def _update(self, name: str, version: int, **changes: object) -> None:
        info = self._models[name].versions[version]
        self._models[name].versions[version] = replace(info, **changes)  # type: ignore[arg-type]

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self._calls += 1
        tags = dict(self._version(name, version).tags)
        tags[key] = value
        self._update(name, version, tags=tags)
        self.writes.append(("set_version_tag", name, str(version), key, value))

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        self._calls += 1
        tags = dict(self._version(name, version).tags)
        tags.pop(key, None)
        self._update(name, version, tags=tags)
        self.writes.append(("delete_version_tag", name, str(version), key))

    def set_stage(self, name: str, version: int, stage: str) -> bool:
        self._calls += 1
        if stage not in STAGES:
            raise RegistryError(f"{name} version {version}", f"unknown stage {stage!r}")
        self._version(name, version)
        if not self.stages_supported:
            return False
        self._update(name, version, stage=stage)
        self.writes.append(("set_stage", name, str(version), stage))
        return True

    def create_registered_model_if_missing(self, name: str) -> None:
        self._calls += 1
        self._models.setdefault(name, _Model())
