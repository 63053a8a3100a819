"""The retraining check (the seed's check-retraining-needed): which live models need retraining, and why.

A live model needs retraining when its PSI drift is significant, when it is older than its
strategy's ``retraining.max_age_days`` (else the setting), or when someone asks for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradai_release.core.clock import parse_stamp, stamp, utc_now
from tradai_release.core.errors import InputError, TagNotFound

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.domain.monitor.check import LiveModel
    from tradai_release.registry.adapter import ModelRegistry
    from tradai_release.repository.environments import Environment
    from tradai_release.workflows.drift import DriftReport


@dataclass(frozen=True)
class StrategyCheck:
    """Whether one live model needs retraining, and why."""

    strategy: str
    model: str
    version: int
    profiles: tuple[int, ...]
    reasons: tuple[str, ...]
    drift_level: str | None
    age_days: float | None
    created_at: str | None
    created_source: str | None  # "registry" | "hub tag" | None (unknown)
    max_age_days: int
    max_age_source: str

    @property
    def needed(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "model": self.model,
            "version": self.version,
            "profiles": list(self.profiles),
            "needed": self.needed,
            "reasons": list(self.reasons),
            "drift_level": self.drift_level,
            "age_days": None if self.age_days is None else round(self.age_days, 2),
            "created_at": self.created_at,
            "created_source": self.created_source,
            "max_age_days": self.max_age_days,
            "max_age_source": self.max_age_source,
        }


@dataclass(frozen=True)
class RetrainingCheck:
    """The decision for every live model of an environment."""

    env: str
    strategies: tuple[StrategyCheck, ...]
    checked_at: str

    @property
    def needed(self) -> bool:
        return any(item.needed for item in self.strategies)

    @property
    def retrain(self) -> list[str]:
        """Strategies to retrain (each once, even when profiles run different versions)."""
        return sorted({item.strategy for item in self.strategies if item.needed})

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "checked_at": self.checked_at,
            "needed": self.needed,
            "retrain": self.retrain,
            "strategies": [item.to_dict() for item in self.strategies],
        }


def check_retraining(
    settings: Settings,
    env: Environment,
    *,
    drift: DriftReport | None = None,
    manual: Iterable[str] = (),
    strategies: Iterable[str] | None = None,
    now: datetime | None = None,
    registry: ModelRegistry | None = None,
    commit: str = "HEAD",
) -> RetrainingCheck:
    """Retraining is needed for a live model when its PSI drift is significant, when it is older than
    ``retraining.max_age_days`` of its tradai.yaml (else ``settings.retrain_max_age_days``), or when
    ``manual`` names its strategy (or ``all``).

    Age is measured from the registry version's creation time, or the hub tag's ``created_at``
    when the registry does not know the version.
    """
    from tradai_release.domain.monitor.check import live_models
    from tradai_release.domain.monitor.scores import SIGNIFICANT
    from tradai_release.repository.tree import ReleaseTree

    now = now or utc_now()
    manual_set = set(manual)
    lives = live_models(settings.repo, env.name, strategies, commit)
    unknown = sorted(manual_set - {"all"} - {live.strategy for live in lives})
    if unknown:
        raise InputError(
            "--manual", "strategy", f"{', '.join(unknown)} is not pinned in any {env.name} manifest"
        )
    with ReleaseTree.at(settings.repo, commit) as tree:
        specs = tree.load().strategies
    drift_by_key = {
        (item.live.strategy, item.live.version, item.live.tag): item
        for item in (drift.strategies if drift else ())
    }
    if registry is None:
        from tradai_release.registry.adapter import MlflowRegistry

        registry = MlflowRegistry.for_env(env, settings)
    created = _creation_times(settings, registry, lives)
    checks = []
    for live in lives:
        spec = specs.get(live.strategy)
        own = spec.max_age_days if spec is not None else None
        max_age = own if own is not None else int(settings.retrain_max_age_days)
        source = (
            f"strategies/{live.strategy}/tradai.yaml retraining.max_age_days"
            if own is not None
            else "settings retrain_max_age_days"
        )
        reasons: list[str] = []
        item = drift_by_key.get((live.strategy, live.version, live.tag))
        if item is not None and item.level == SIGNIFICANT:
            worst = sorted(item.significant, key=lambda row: -row.psi)
            names = ", ".join(f"{row.name} {row.psi:.3f}" for row in worst[:5])
            more = f" and {len(worst) - 5} more" if len(worst) > 5 else ""
            threshold = drift.thresholds.significant if drift else 0.25
            reasons.append(f"significant drift (PSI > {threshold:g}): {names}{more}")
        born, born_source = created.get((live.model, live.version, live.tag), (None, None))
        age = (now - born).total_seconds() / 86400 if born is not None else None
        if age is not None and age > max_age:
            reasons.append(
                f"model version {live.version} is {age:.1f} days old (max {max_age} from {source})"
            )
        if "all" in manual_set or live.strategy in manual_set:
            reasons.append("requested manually")
        checks.append(
            StrategyCheck(
                strategy=live.strategy,
                model=live.model,
                version=live.version,
                profiles=live.profiles,
                reasons=tuple(reasons),
                drift_level=item.level if item is not None else None,
                age_days=age,
                created_at=stamp(born) if born is not None else None,
                created_source=born_source,
                max_age_days=max_age,
                max_age_source=source,
            )
        )
    return RetrainingCheck(env.name, tuple(checks), stamp(now))


def retraining_needed(
    settings: Settings,
    env: Environment,
    *,
    strategies: Sequence[str] = (),
    manual: Sequence[str] = (),
    data: Sequence[str] = (),
) -> RetrainingCheck:
    """``invoke retrain-check``: PSI drift of the live models (``data`` as ``--data`` options), then the
    retraining decision; ``manual`` names strategies to retrain regardless (comma lists allowed)."""
    from tradai_release.domain.monitor.options import parse_data_options
    from tradai_release.workflows.drift import check_drift

    files = parse_data_options(data, strategies)
    selected = list(strategies) or None
    report = check_drift(settings, env, data=files, strategies=selected, state=False)
    requested = [name.strip() for value in manual for name in value.split(",") if name.strip()]
    return check_retraining(settings, env, drift=report, manual=requested, strategies=selected)


def _creation_times(
    settings: Settings, registry: ModelRegistry, lives: Sequence[LiveModel]
) -> dict[tuple[str, int, str], tuple[datetime, str]]:
    """When each live model version came into being: the registry's creation time, else the tag's."""
    found: dict[tuple[str, int, str], tuple[datetime, str]] = {}
    versions = registry.versions(sorted({live.model for live in lives}))
    hub = None
    for live in lives:
        info = next((v for v in versions.get(live.model, []) if v.version == live.version), None)
        if info is not None and info.created_at is not None:
            found[(live.model, live.version, live.tag)] = (info.created_at, "registry")
            continue
        try:
            if hub is None:
                from tradai_release.hub import ModelHub

                hub = ModelHub.from_settings(settings)
            created_at = hub.read_tag(live.tag).created_at
            found[(live.model, live.version, live.tag)] = (parse_stamp(created_at), "hub tag")
        except (TagNotFound, ValueError):
            continue
    return found


def retraining_everywhere(
    settings: Settings,
    envs: Sequence[Environment],
    *,
    strategies: Sequence[str] = (),
    manual: Sequence[str] = (),
    data: Sequence[str] = (),
) -> list[RetrainingCheck]:
    """``retraining_needed`` in each of ``envs`` (``invoke retrain-check`` without ``--env``). A manual
    request counts in each environment that pins the strategy; one pinned nowhere is an error."""
    from tradai_release.repository.tree import ReleaseTree

    requested = [name.strip() for value in manual for name in value.split(",") if name.strip()]
    release = ReleaseTree.work(settings.repo).load()
    pinned = {env.name: {s for m in release.manifests_of(env.name) for s in m.strategies} for env in envs}
    nowhere = sorted(set(requested) - {"all"} - set().union(*pinned.values()))
    if nowhere:
        where = ", ".join(env.name for env in envs)
        reason = f"{', '.join(nowhere)} is not pinned in any manifest of {where}"
        raise InputError("--manual", "strategy", reason)
    return [
        retraining_needed(settings, env, strategies=[s for s in strategies if s in pinned[env.name]],
                          manual=[s for s in requested if s == "all" or s in pinned[env.name]], data=data)
        for env in envs
        if not strategies or set(strategies) & pinned[env.name]
    ]
