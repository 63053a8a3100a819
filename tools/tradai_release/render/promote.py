"""Terminal output of ``invoke promote`` and ``invoke rollback``: changed pins, comparator tables, plan."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tradai_release.render import console, titled_table

if TYPE_CHECKING:
    from rich.console import Console

    from tradai_release.domain.gate import Verdict
    from tradai_release.domain.pins import PinChange
    from tradai_release.engine.plan import Plan
    from tradai_release.workflows.promote import Promotion
    from tradai_release.workflows.rollback import Rollback


def _value(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if metric == "total_trades" else f"{value:.4g}"


def render_check(out: Console, check: Verdict) -> None:
    """The champion-vs-challenger metric table of one profile, then the decision and its reasons."""

    if check.comparison is None:
        out.print(f"profile {check.profile}: v{check.challenger} was Production before: "
                  "a rollback needs no comparison")
        return
    comparison = check.comparison
    title = (f"{check.model} profile {check.profile}: "
             f"challenger v{check.challenger} vs champion v{check.champion}")
    columns = ("metric", f"v{check.challenger}", f"v{check.champion}", "threshold", "required", "passes")
    table = titled_table(title, columns, right=columns[1:4])
    for row in comparison.rows:
        passes = "-" if row.passed is None else ("yes" if row.passed else "NO")
        table.add_row(row.metric, _value(row.challenger, row.metric), _value(row.champion, row.metric),
                      f"{row.operator} {row.threshold:g}", "yes" if row.required else "no", passes)
    out.print(table)
    colour = "green" if comparison.decision == "promote" else "yellow"
    out.print(f"decision: [{colour}]{comparison.decision}[/{colour}]")
    for reason in comparison.reasons:
        out.print(f"  - {reason}")


def _changes(out: Console, changes: Sequence[PinChange]) -> None:
    for change in changes:
        out.print(f"  {change.describe()}")


def _where(out: Console, branch: str | None, commit: str | None, written: bool) -> None:
    if branch and commit:
        out.print(f"committed {commit[:12]} on new branch {branch}; push it and open a pull request")
    elif written:
        out.print("manifests edited in the working tree (not committed; pass --commit for a branch)")


def _plan(out: Console, plan: Plan | None, error: str | None) -> None:
    if plan is not None:
        from tradai_release.render.plan import render_text

        out.print("")
        sys.stdout.write(render_text(plan))
        sys.stdout.flush()
    elif error:
        print(f"warning: no plan: {error}", file=sys.stderr)


def render_promotion(promotion: Promotion) -> None:
    """What moved, the comparator's verdicts, where the edit went, and the plan of the result."""
    out = console()
    verb = "would change" if promotion.blocked else "changed"
    out.print(f"promote {promotion.strategy} v{promotion.version} to {promotion.stage} in {promotion.env}: "
              f"{len(promotion.changes)} field(s) {verb}")
    carried = promotion.carried
    if carried is not None:
        how = "registered" if carried.created else "already registered, reused"
        out.print(f"  carried {carried.source_env} v{carried.source_version} (hub tag {carried.r2_tag}, "
                  f"content {carried.content_sha256[:12]}): {how} in {carried.env} as v{carried.version}")
    _changes(out, promotion.changes)
    for check in promotion.checks:
        render_check(out, check)
    if promotion.override is not None:
        override = promotion.override
        out.print(f"override recorded: approved by {override.approved_by}: {override.reason}")
    if promotion.blocked:
        return
    _where(out, promotion.branch, promotion.commit, True)
    _plan(out, promotion.plan, promotion.plan_error)


def render_rollback(result: Rollback) -> None:
    """What the rollback restored, from which commit, and the plan of the result."""
    out = console()
    out.print(f"roll back {result.env} to {result.source[:12]} ({result.ref}) from {result.head[:12]}: "
              f"{len(result.changes)} field(s) restored")
    _changes(out, result.changes)
    _where(out, result.branch, result.commit, True)
    out.print("applying that commit completes the rollback")
    _plan(out, result.plan, result.plan_error)
