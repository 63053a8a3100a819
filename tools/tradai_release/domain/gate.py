"""The comparator gate: who the champion is, and whether a new production pin may replace it.

One definition serves promote (before writing a pin), validate (before a pull request merges),
plan (the champion-vs-challenger table of the pull-request comment), retrain (whether to propose
a challenger at all) and the release board; each holds the :class:`Verdict` it returns:

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

    ``comparison`` is None for a rollback (the challenger was Production before: not compared).
    ``gated``: the move is the gate's to approve (a production pin moving in the gated environment; a
    rollback is approved without comparison); ``overridden``: an override (who and why) is recorded
    for it. The override rule is :attr:`blocked`, and nowhere else.
    """

    profile: int
    model: str
    champion: int | None
    challenger: int
    comparison: Comparison | None
    rollback: bool
    path: str = ""
    gated: bool = False
    overridden: bool = False

    @property
    def decision(self) -> str:
        """promote / keep / manual-review, or ``rollback``."""
        return ROLLBACK if self.rollback or self.comparison is None else self.comparison.decision

    @property
    def approved(self) -> bool:
        """True for a rollback or a comparator promote."""
        return self.decision in (ROLLBACK, PROMOTE)

    @property
    def needs_override(self) -> bool:
        """The gate judges the move and does not approve it: only a recorded override lets it through."""
        return self.gated and not self.approved

    @property
    def blocked(self) -> bool:
        """The gate refuses the move: it needs an override and none is recorded."""
        return self.needs_override and not self.overridden

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.comparison.reasons if self.comparison is not None else ()

    def metric_rows(self) -> list[dict[str, Any]]:
        """The comparator's table as JSON rows (none for a rollback)."""
        return [
            {
                "metric": row.metric, "challenger": row.challenger, "champion": row.champion,
                "operator": row.operator, "threshold": row.threshold, "required": row.required,
                "passed": row.passed,
            }
            for row in (self.comparison.rows if self.comparison is not None else ())
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "path": self.path,
            "model": self.model,
            "champion": self.champion,
            "challenger": self.challenger,
            "rollback": self.rollback,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "metrics": self.metric_rows(),
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


def _compare(
    challenger_info: ModelVersionInfo | None,
    champion_info: ModelVersionInfo | None,
    comparator: ModelComparator,
) -> Comparison:
    """The comparator on two versions' run metrics (a missing challenger has none: manual-review)."""
    return comparator.compare(
        dict(challenger_info.metrics) if challenger_info is not None else {},
        dict(champion_info.metrics) if champion_info is not None else None,
    )


def _forward(champion: int | None, challenger: int) -> bool:
    """A move the gate judges, unless it is a rollback: to a version newer than the champion (or with
    none live yet). A move back to an older version that was never live is not gated."""
    return champion is None or challenger > champion


def judge(
    profile: int,
    model: str,
    champion_info: ModelVersionInfo | None,
    challenger_info: ModelVersionInfo,
    comparator: ModelComparator,
    *,
    path: str = "",
    gated: bool = False,
    overridden: bool = False,
    rollbacks: bool = True,
) -> Verdict:
    """The verdict on ``challenger_info`` against ``champion_info``: a rollback, or the comparator's.

    ``gated`` and ``overridden`` say whether the move is the gate's to approve and whether an override
    is recorded for it (see :attr:`Verdict.blocked`). ``rollbacks=False`` judges a former Production
    challenger on its metrics too: retraining that reproduced an old version is not a rollback someone
    asked for, and the board shows the comparator's view of every version.
    """
    rollback = rollbacks and was_production(challenger_info)
    comparison = None if rollback else _compare(challenger_info, champion_info, comparator)
    return Verdict(
        profile=profile,
        model=model,
        champion=champion_info.version if champion_info is not None else None,
        challenger=challenger_info.version,
        comparison=comparison,
        rollback=rollback,
        path=path,
        gated=gated,
        overridden=overridden,
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
    gated: bool = False,
    overridden: bool = False,
) -> Verdict | None:
    """The gate's verdict on ``challenger`` becoming ``profile``'s production pin, or None when the move
    needs none: the challenger is already the champion, or an older version that was never live.

    ``gated``: the environment is the gated one, so a verdict other than promote blocks the move unless
    ``overridden`` (an override is recorded for it)."""
    info = versions.get(challenger)
    if info is None:
        return None
    current = champion(profile, versions, pinned)
    if current is not None and current.version == challenger:
        return None
    if not was_production(info) and not _forward(current.version if current else None, challenger):
        return None
    return judge(profile, model, current, info, comparator, path=path, gated=gated, overridden=overridden)


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

    def verdict(self, *, gated: bool, overridden: bool) -> Verdict:
        """This move as the gate judges it in a ``gated`` environment (or not) whose manifest records an
        override (``overridden``) or not: only a production pin moving forward is the gate's to approve."""
        return Verdict(
            profile=self.profile,
            model=self.model,
            champion=self.champion,
            challenger=self.challenger,
            comparison=self.comparison,
            rollback=self.rollback,
            gated=gated and not self.staging and _forward(self.champion, self.challenger),
            overridden=overridden,
        )

    def blocked(self, *, gated: bool, overridden: bool) -> bool:
        """The gate refuses this move (see :meth:`verdict`); rollbacks and moves back to an older version
        are not gated."""
        return self.verdict(gated=gated, overridden=overridden).blocked


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
                comparison=_compare(challenger, current, comparator),
                champion_equity=from_tags(current.tags) if current is not None else None,
                challenger_equity=from_tags(challenger.tags) if challenger is not None else None,
            )
        )
    return changes
