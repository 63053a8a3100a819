"""The comparator gate: who the champion is, and whether a new production pin may replace it.

One definition serves promote (before writing a pin), validate (before a pull request merges),
plan (the champion-vs-challenger table of the pull-request comment) and retrain (whether to
propose a challenger at all):

* the **champion** of a profile is the version live for it now: the holder of its alias
  ``p<N>`` in the environment's registry, or, before the first apply set any alias, the version
  its manifest pins;
* a **rollback** (the challenger was Production before) needs no comparison;
* a challenger **newer** than the champion is judged by the ModelComparator; in the gated
  environment (production, the last of the promotion order) a verdict other than promote blocks
  the pin unless the manifest records an override (who and why). Moving back to an older version
  that was never live is not gated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradai_release.registry.comparator import PROMOTE, Comparison, ModelComparator
from tradai_release.registry.lifecycle import alias_profile, production_alias, was_production

if TYPE_CHECKING:
    from tradai_release.core.equity import EquityCurve
    from tradai_release.registry.adapter import ModelVersionInfo
    from tradai_release.registry.lifecycle import DesiredLifecycle

ROLLBACK = "rollback"
"""The decision shown for a return to a former Production version (no comparison is made)."""


@dataclass(frozen=True)
class Verdict:
    """The gate's judgement of ``challenger`` replacing ``champion`` as one profile's production pin.

    ``comparison`` is None for a rollback (the challenger was Production before).
    """

    profile: int
    model: str
    champion: int | None
    challenger: int
    comparison: Comparison | None
    rollback: bool
    path: str = ""

    @property
    def decision(self) -> str:
        """promote / keep / manual-review, or ``rollback``."""
        return self.comparison.decision if self.comparison is not None else ROLLBACK

    @property
    def approved(self) -> bool:
        """True for a rollback or a comparator promote."""
        return self.comparison is None or self.comparison.decision == PROMOTE

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.comparison.reasons if self.comparison is not None else ()

    def to_dict(self) -> dict[str, Any]:
        comparison = self.comparison
        return {
            "profile": self.profile,
            "path": self.path,
            "model": self.model,
            "champion": self.champion,
            "challenger": self.challenger,
            "rollback": self.rollback,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "metrics": [
                {
                    "metric": row.metric, "challenger": row.challenger, "champion": row.champion,
                    "operator": row.operator, "threshold": row.threshold, "required": row.required,
                    "passed": row.passed,
                }
                for row in (comparison.rows if comparison is not None else ())
            ],
        }


def by_version(versions: Iterable[ModelVersionInfo]) -> dict[int, ModelVersionInfo]:
    """Versions keyed by number."""
    return {info.version: info for info in versions}


def champion(
    profile: int, versions: Mapping[int, ModelVersionInfo], pinned: int | None = None
) -> ModelVersionInfo | None:
    """The version live for ``profile``: the holder of alias ``p<N>``, else (never applied) ``pinned``."""
    alias = production_alias(profile)
    live = next((info for info in versions.values() if alias in info.aliases), None)
    if live is not None:
        return live
    return versions.get(pinned) if pinned is not None else None


def compare(
    challenger_info: ModelVersionInfo | None,
    champion_info: ModelVersionInfo | None,
    comparator: ModelComparator,
) -> Comparison:
    """The comparator on two versions' run metrics (a missing challenger has none: manual-review)."""
    return comparator.compare(
        dict(challenger_info.metrics) if challenger_info is not None else {},
        dict(champion_info.metrics) if champion_info is not None else None,
    )


def judge(
    profile: int,
    model: str,
    champion_info: ModelVersionInfo | None,
    challenger_info: ModelVersionInfo,
    comparator: ModelComparator,
    *,
    path: str = "",
) -> Verdict:
    """The verdict on ``challenger_info`` against ``champion_info``: a rollback, or the comparator's."""
    rollback = was_production(challenger_info)
    comparison = None if rollback else compare(challenger_info, champion_info, comparator)
    return Verdict(
        profile=profile,
        model=model,
        champion=champion_info.version if champion_info is not None else None,
        challenger=challenger_info.version,
        comparison=comparison,
        rollback=rollback,
        path=path,
    )


def production_move(
    profile: int,
    model: str,
    versions: Mapping[int, ModelVersionInfo],
    challenger: int,
    comparator: ModelComparator,
    *,
    pinned: int | None = None,
    path: str = "",
) -> Verdict | None:
    """The gate's verdict on ``challenger`` becoming ``profile``'s production pin, or None when the move
    needs none: the challenger is already the champion, or an older version that was never live."""
    info = versions.get(challenger)
    if info is None:
        return None
    current = champion(profile, versions, pinned)
    if current is not None and current.version == challenger:
        return None
    if not was_production(info) and current is not None and challenger < current.version:
        return None
    return judge(profile, model, current, info, comparator, path=path)


@dataclass(frozen=True)
class ModelChange:
    """A profile's alias moving to another version in a plan: the challenger judged against the champion."""

    profile: int
    model: str
    alias: str
    champion: int | None
    challenger: int
    champion_metrics: Mapping[str, float]
    challenger_metrics: Mapping[str, float]
    rollback: bool  # the challenger was Production before: no comparison is required
    comparison: Comparison
    champion_equity: EquityCurve | None = None  # held-out backtest curves, from the versions' tags
    challenger_equity: EquityCurve | None = None

    @property
    def staging(self) -> bool:
        """A dry-run (staging) pin: shown against the production pin, never gated."""
        return self.alias.endswith("-staging")

    def blocked(self, *, gated: bool, overridden: bool) -> bool:
        """The gate refuses this move: a production move in a ``gated`` environment that the comparator
        does not approve and no override lets through. Rollbacks and moves back to an older version
        are not gated."""
        if self.rollback or self.staging or not gated or overridden:
            return False
        if self.champion is not None and self.challenger < self.champion:
            return False
        return self.comparison.decision != PROMOTE


def pin_moves(
    lifecycle: DesiredLifecycle,
    history: Mapping[str, Sequence[ModelVersionInfo]],
    applied_aliases: Mapping[str, Mapping[str, int]],
) -> list[ModelChange]:
    """The aliases a plan moves because git changed (a drift repair restores what was applied and is not
    judged again), each judged against the champion: the version live for the profile, or for a
    staging (dry-run) challenger the profile's production pin."""
    from tradai_release.core.equity import from_tags

    comparator = ModelComparator()
    changes = []
    for change in lifecycle.alias_changes:
        if change.version is None or applied_aliases.get(change.name, {}).get(change.alias) == change.version:
            continue
        profile = alias_profile(change.alias)
        versions = by_version(history.get(change.name, ()))
        if change.alias.endswith("-staging"):
            pinned = lifecycle.aliases.get(change.name, {}).get(production_alias(profile))
            current = versions.get(pinned) if pinned is not None else None
        else:
            current = champion(profile, versions)
        challenger = versions.get(change.version)
        changes.append(
            ModelChange(
                profile=profile,
                model=change.name,
                alias=change.alias,
                champion=current.version if current is not None else None,
                challenger=change.version,
                champion_metrics=dict(current.metrics) if current is not None else {},
                challenger_metrics=dict(challenger.metrics) if challenger is not None else {},
                rollback=challenger is not None and was_production(challenger),
                comparison=compare(challenger, current, comparator),
                champion_equity=from_tags(current.tags) if current is not None else None,
                challenger_equity=from_tags(challenger.tags) if challenger is not None else None,
            )
        )
    return changes
