"""Terminal output of ``invoke models`` and ``invoke rollback-candidates``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tradai_release.registry.views import ModelVersionView, RollbackCandidate
from tradai_release.render import console, short, titled_table

# The columns a reader scans first; every other metric is still in --json.
_METRICS: tuple[str, ...] = (
    "accuracy", "total_profit", "sharpe_ratio", "max_drawdown", "win_rate", "total_trades",
)


def _metric(metrics: Mapping[str, float], key: str) -> str:
    value = metrics.get(key)
    if value is None:
        return "-"
    return f"{value:.0f}" if key == "total_trades" else f"{value:.3g}"


def render_models(strategy: str, views: Sequence[ModelVersionView]) -> None:
    """One table row per version (newest first within each environment)."""

    out = console()
    if not views:
        out.print(f"no registered versions of {strategy}")
        return
    columns = ("env", "version", "lifecycle", "aliases", *_METRICS, "r2_tag", "git_commit")
    table = titled_table(f"model versions of {strategy}", columns, right={"version", *_METRICS})
    for view in views:
        table.add_row(
            view.env, str(view.version), view.lifecycle, ", ".join(view.aliases) or "-",
            *(_metric(view.metrics, key) for key in _METRICS),
            short(view.r2_tag, 40), short(view.git_commit[:12] if view.git_commit else None),
        )
    out.print(table)


def render_rollback_candidates(strategy: str, env: str, candidates: Sequence[RollbackCandidate]) -> None:
    """Versions that were Production in ``env`` before, most recently retired first."""

    out = console()
    if not candidates:
        out.print(f"no rollback candidates for {strategy} in {env}: no earlier Production version")
        return
    columns = ("version", "lifecycle", "production since", "left production", "r2_tag", "git_commit")
    table = titled_table(f"rollback candidates for {strategy} in {env}", columns, right={"version"})
    for candidate in candidates:
        table.add_row(
            str(candidate.version), candidate.lifecycle,
            short(candidate.entered_at), short(candidate.left_at),
            short(candidate.r2_tag, 40), short(candidate.git_commit[:12] if candidate.git_commit else None),
        )
    out.print(table)
