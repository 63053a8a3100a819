"""Read views of the seed's API: a strategy's model versions, and the versions a rollback can return to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradai_release.registry.lifecycle import (
    ENTERED_TAG,
    LEFT_TAG,
    PRODUCTION,
    current_lifecycle,
    was_production,
)

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.registry.adapter import ModelRegistry


@dataclass(frozen=True)
class ModelVersionView:
    """One version of a strategy's model in one environment's registry."""

    env: str
    name: str
    version: int
    lifecycle: str
    aliases: tuple[str, ...]
    metrics: Mapping[str, float]
    r2_tag: str | None
    git_commit: str | None
    created_at: datetime | None
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env, "name": self.name, "version": self.version, "lifecycle": self.lifecycle,
            "aliases": list(self.aliases), "metrics": dict(self.metrics), "r2_tag": self.r2_tag,
            "git_commit": self.git_commit, "status": self.status,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(frozen=True)
class RollbackCandidate:
    """A version that was Production in the environment before and is not now."""

    env: str
    name: str
    version: int
    lifecycle: str
    entered_at: str | None
    left_at: str | None
    r2_tag: str | None
    git_commit: str | None
    metrics: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env, "name": self.name, "version": self.version, "lifecycle": self.lifecycle,
            "production_entered_at": self.entered_at, "production_left_at": self.left_at,
            "r2_tag": self.r2_tag, "git_commit": self.git_commit, "metrics": dict(self.metrics),
        }


def model_versions(registry: ModelRegistry, strategy: str, env: str) -> tuple[ModelVersionView, ...]:
    """Every version of ``strategy``'s registered model in ``env``, newest first."""
    listed = registry.versions([strategy]).get(strategy, [])
    return tuple(
        ModelVersionView(
            env=env, name=info.name, version=info.version, lifecycle=current_lifecycle(info),
            aliases=info.aliases, metrics=dict(info.metrics), r2_tag=info.tags.get("r2_tag"),
            git_commit=info.tags.get("git_commit"), created_at=info.created_at, status=info.status,
        )
        for info in sorted(listed, key=lambda info: info.version, reverse=True)
    )


def rollback_candidates(registry: ModelRegistry, strategy: str, env: str) -> tuple[RollbackCandidate, ...]:
    """Versions that were Production in ``env`` and are not now; the most recently retired first."""
    listed = registry.versions([strategy]).get(strategy, [])
    candidates = [
        RollbackCandidate(
            env=env, name=info.name, version=info.version, lifecycle=current_lifecycle(info),
            entered_at=info.tags.get(ENTERED_TAG), left_at=info.tags.get(LEFT_TAG),
            r2_tag=info.tags.get("r2_tag"), git_commit=info.tags.get("git_commit"),
            metrics=dict(info.metrics),
        )
        for info in listed
        if was_production(info) and current_lifecycle(info) != PRODUCTION
    ]
    # ISO-8601 UTC stamps sort as text; a missing leave time sorts last, ties go to the newer version.
    return tuple(sorted(candidates, key=lambda c: (c.left_at or "", c.version), reverse=True))


def models_in_envs(
    settings: Settings, strategy: str, envs: Iterable[str] | None = None
) -> tuple[ModelVersionView, ...]:
    """``model_versions`` of each environment's own registry, in the order of ``envs`` (default: every
    declared environment); every name is checked before any registry is opened."""
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.repository.environments import environments

    return tuple(
        view
        for env in environments(settings, envs)
        for view in model_versions(MlflowRegistry.for_env(env, settings), strategy, env.name)
    )


def rollback_candidates_in(settings: Settings, strategy: str, env: str) -> tuple[RollbackCandidate, ...]:
    """``rollback_candidates`` of ``env``'s registry (the name is checked before the registry is opened)."""
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.repository.environments import environment

    target = environment(settings, env)
    return rollback_candidates(MlflowRegistry.for_env(target, settings), strategy, target.name)
