"""``invoke drift``: an environment's PSI monitoring and its live drift, in one report, recorded and notified.

PSI monitoring (:mod:`tradai_release.domain.monitor`) scores the recent data and predictions of each model the
environment runs against the references recorded at training. Live drift is what the engine's plan of
the environment finds changed by hand since the last apply; it is added so both show up together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import TradaiError
from tradai_release.domain.monitor.check import StrategyDrift, check_models
from tradai_release.domain.monitor.scores import LEVELS, SIGNIFICANT, STABLE, Thresholds
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.release_table import RecordedCheck
from tradai_release.repository.environments import environment

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.hub.hub import ModelHub
    from tradai_release.repository.environments import Environment


@dataclass(frozen=True)
class DriftReport:
    """The drift of one environment: PSI per live model, and the live-state drift of its plan."""

    env: str
    thresholds: Thresholds
    strategies: tuple[StrategyDrift, ...]
    state_drift: tuple[Mapping[str, Any], ...] = ()
    pending_actions: int | None = None  # actions the plan of the env would take (None: not planned)
    state_error: str | None = None
    notified: bool = False

    @property
    def level(self) -> str:
        return max((s.level for s in self.strategies), key=LEVELS.index, default=STABLE)

    @property
    def significant(self) -> tuple[StrategyDrift, ...]:
        return tuple(s for s in self.strategies if s.level == SIGNIFICANT)

    @property
    def alarming(self) -> bool:
        """True when someone should look: significant PSI drift, or live state changed by hand."""
        return bool(self.significant or self.state_drift)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "thresholds": {"moderate": self.thresholds.moderate, "significant": self.thresholds.significant},
            "level": self.level,
            "significant": [s.strategy for s in self.significant],
            "strategies": [s.to_dict() for s in self.strategies],
            "state_drift": [dict(entry) for entry in self.state_drift],
            "pending_actions": self.pending_actions,
            "state_error": self.state_error,
            "notified": self.notified,
        }


def check_drift(
    settings: Settings,
    env: Environment,
    *,
    data: Mapping[str, Path] | None = None,
    strategies: Iterable[str] | None = None,
    models_dir: Path | None = None,
    commit: str = "HEAD",
    state: bool = True,
    hub: ModelHub | None = None,
) -> DriftReport:
    """PSI drift of every live model of ``env`` (or of ``strategies``), plus the plan's state drift.

    ``data``, ``strategies``, ``models_dir`` and ``hub`` are those of
    :func:`~tradai_release.domain.monitor.check.check_models`;
    ``state`` False skips the plan (``--psi-only``).
    """

    thresholds = Thresholds.from_settings(settings)
    results = check_models(
        settings,
        env.name,
        thresholds,
        data=data,
        strategies=strategies,
        models_dir=models_dir,
        commit=commit,
        hub=hub,
    )
    state_drift, pending, error = _state(settings, env, commit) if state else ((), None, None)
    return DriftReport(env.name, thresholds, results, state_drift, pending, error)


def _state(
    settings: Settings, env: Environment, commit: str
) -> tuple[tuple[Mapping[str, Any], ...], int | None, str | None]:
    """The plan's drift (live values changed by hand) and how many actions an apply would take."""
    from tradai_release.engine.plan import plan_env

    try:
        plan = plan_env(ReleaseContext.open(settings, env.name, commit=commit))
    except TradaiError as err:
        return (), None, str(err)
    return tuple(entry.to_dict() for entry in plan.drift), len(plan.actions), None


# --- recorded checks (``invoke drift --record``) -----------------------------------------------------------


def record_checks(settings: Settings, report: DriftReport) -> int:
    """Store each strategy's PSI of ``report`` in the env's release-state table (one item each).

    One item per strategy and check keeps every item small whatever the number of strategies
    (DynamoDB caps an item at 400 KB); returns how many were written.
    """
    from tradai_release.core.clock import stamp, utc_now
    from tradai_release.engine.release_table import ReleaseTable
    from tradai_release.engine.state import EngineBackends

    releases = ReleaseTable(
        EngineBackends.from_settings(settings, environment(settings, report.env)).releases, report.env
    )
    moment = utc_now()
    for item in report.strategies:
        check = RecordedCheck(
            strategy=item.strategy,
            version=item.live.version,
            checked_at=stamp(moment),
            level=item.level,
            max_psi=item.max_psi,
            psi=item.rows,
            thresholds=report.thresholds,
            window=f"{item.window.source}: {item.window.start} to {item.window.end}",
            model=item.live.model,
            profiles=item.live.profiles,
        )
        releases.record_check(check, moment)
    return len(report.strategies)


def monitor(
    settings: Settings, env: Environment, *, record: bool = False, **options: Any
) -> DriftReport:
    """``check_drift``, then a ``drift_found`` notification when PSI drift is significant or state drifted.

    ``record`` stores each strategy's PSI in the release state first (for the report's history).
    """
    from dataclasses import replace

    from tradai_release.domain.notify import notify

    report = check_drift(settings, env, **options)
    if record:
        record_checks(settings, report)
    if not report.alarming:
        return report
    parts = [f"{s.strategy} v{s.live.version}: max PSI {s.max_psi:.3f}" for s in report.significant]
    if report.state_drift:
        parts.append(f"{len(report.state_drift)} live value(s) changed by hand")
    details: dict[str, Any] = {"env": report.env, "level": report.level}
    for item in report.significant:
        worst = sorted(item.significant, key=lambda row: -row.psi)[:5]
        details[item.strategy] = ", ".join(f"{row.name} {row.psi:.3f}" for row in worst)
    if report.state_drift:
        details["state drift"] = "\n".join(
            f"{d.get('target')}: {d.get('detail')}" for d in report.state_drift
        )
    sent = notify(settings, "drift_found", f"{report.env}: " + "; ".join(parts), details)
    return replace(report, notified=sent)
