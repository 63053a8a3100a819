"""PSI of each model an environment runs: its bundle pulled and verified, its references read, the recent
window of its strategy scored against them (features directly, predictions by running its ONNX files)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError, SettingsError
from tradai_release.domain.monitor.predict import predict
from tradai_release.domain.monitor.reference import ModelReference, model_references
from tradai_release.domain.monitor.scores import (
    FEATURE,
    LEVELS,
    PREDICTION,
    SIGNIFICANT,
    STABLE,
    PsiRow,
    Thresholds,
)
from tradai_release.domain.monitor.window import MIN_WINDOW_ROWS, Window, recent_window

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.hub.hub import ModelHub


@dataclass(frozen=True)
class LiveModel:
    """One model an environment runs: the strategy's production pin in the listed profiles."""

    strategy: str
    model: str
    version: int
    tag: str
    sha256: str
    profiles: tuple[int, ...]


@dataclass(frozen=True)
class StrategyDrift:
    """PSI of one live model's features and predictions over the recent window."""

    live: LiveModel
    window: Window
    rows: tuple[PsiRow, ...]
    reference: str  # where the reference came from (hub tag or models dir)

    @property
    def strategy(self) -> str:
        return self.live.strategy

    @property
    def max_psi(self) -> float:
        return max((row.psi for row in self.rows), default=0.0)

    @property
    def level(self) -> str:
        return max((row.level for row in self.rows), key=LEVELS.index, default=STABLE)

    @property
    def significant(self) -> tuple[PsiRow, ...]:
        return tuple(row for row in self.rows if row.level == SIGNIFICANT)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.live.strategy,
            "model": self.live.model,
            "version": self.live.version,
            "profiles": list(self.live.profiles),
            "tag": self.live.tag,
            "reference": self.reference,
            "window": {
                "source": self.window.source,
                "rows": self.window.rows,
                "start": self.window.start,
                "end": self.window.end,
            },
            "level": self.level,
            "max_psi": round(self.max_psi, 6),
            "psi": [row.to_dict() for row in self.rows],
        }


def live_models(
    repo: Path, env: str, strategies: Iterable[str] | None = None, commit: str = "HEAD"
) -> list[LiveModel]:
    """The production pins of ``env``'s manifests at ``commit``, one entry per (strategy, version, tag)."""
    from tradai_release.repository.tree import ReleaseTree

    with ReleaseTree.at(repo, commit) as tree:
        release = tree.load()
    release.require_valid()
    wanted = set(strategies) if strategies is not None else None
    groups: dict[tuple[str, str, int, str, str], list[int]] = {}
    for manifest in release.manifests_of(env):
        for name, pin in manifest.strategies.items():
            if wanted is not None and name not in wanted:
                continue
            key = (
                name,
                pin.model.name,
                pin.model.production,
                manifest.artifacts.tag,
                manifest.artifacts.sha256,
            )
            groups.setdefault(key, []).append(manifest.profile)
    if wanted is not None:
        unknown = sorted(wanted - {key[0] for key in groups})
        if unknown:
            raise InputError(
                "--strategy", "strategy", f"{', '.join(unknown)} is not pinned in any {env} manifest"
            )
    return [
        LiveModel(strategy=s, model=m, version=v, tag=t, sha256=h, profiles=tuple(sorted(p)))
        for (s, m, v, t, h), p in sorted(groups.items())
    ]


def bundle_dir(
    settings: Settings, hub: ModelHub, live: LiveModel, features: Mapping[str, Sequence[str]]
) -> Path:
    """The live bundle in a local cache, pulled (and verified) from the hub when not already there."""
    dest = settings.state_dir / "cache" / "bundles" / live.tag
    hub.pull(dest, tag=live.tag, expected_sha256=live.sha256, features=features)
    return dest


def score(
    references: Sequence[ModelReference], x: Any, thresholds: Thresholds, features: Sequence[str]
) -> tuple[PsiRow, ...]:
    """PSI of each feature (from the first model's references) and of each model's predictions."""
    from tradai_release.core.psi import psi

    rows: list[PsiRow] = []
    first = references[0]
    if list(first.features) != list(features):
        raise InputError(
            first.where, "features", "the bundle's features differ from the strategy's ml_config.json"
        )
    for index, name in enumerate(features):
        value = psi(dict(first.feature_refs[name]), x[:, index].tolist())
        rows.append(PsiRow(FEATURE, name, value, thresholds.level(value)))
    for reference in references:
        if reference.prediction_ref is None:
            continue
        value = psi(dict(reference.prediction_ref), predict(reference, x).tolist())
        rows.append(PsiRow(PREDICTION, reference.role, value, thresholds.level(value)))
    return tuple(rows)


def check_models(
    settings: Settings,
    env: str,
    thresholds: Thresholds,
    *,
    data: Mapping[str, Path] | None = None,
    strategies: Iterable[str] | None = None,
    models_dir: Path | None = None,
    commit: str = "HEAD",
    hub: ModelHub | None = None,
) -> tuple[StrategyDrift, ...]:
    """PSI of every live model of ``env`` (or of ``strategies``) over its recent window.

    ``data`` maps a strategy to a candles CSV holding its recent window (default: the last
    ``settings.drift_window_rows`` candles of its data set). ``models_dir`` reads the bundles from a
    local directory instead of pulling the pinned hub tag.
    """
    from tradai_release.hub.hub import ModelHub
    from tradai_release.repository.tree import ReleaseTree

    if settings.drift_window_rows < MIN_WINDOW_ROWS:
        raise SettingsError("drift_window_rows", f"must be at least {MIN_WINDOW_ROWS}")
    data = dict(data or {})
    selected = list(strategies) if strategies is not None else None
    if selected is not None or data:
        selected = sorted(set(selected or []) | set(data))
    lives = live_models(settings.repo, env, selected, commit)
    features = ReleaseTree.work(settings.repo).features(sorted({live.strategy for live in lives}))
    if models_dir is None and lives:
        hub = hub or ModelHub.from_settings(settings)
    results: list[StrategyDrift] = []
    for live in lives:
        if models_dir is not None:
            root, reference = models_dir, str(models_dir)
        else:
            assert hub is not None
            root, reference = bundle_dir(settings, hub, live, features), f"hub tag {live.tag}"
        refs = model_references(root / live.strategy, f"{reference}: {live.strategy}")
        x, window = recent_window(settings, live.strategy, data.get(live.strategy), features[live.strategy])
        results.append(
            StrategyDrift(live, window, score(refs, x, thresholds, features[live.strategy]), reference)
        )
    return tuple(results)
