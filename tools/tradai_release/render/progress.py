"""Terminal output of ``invoke observe`` (a row per bot) and ``invoke progress`` (a row per strategy: the
decision, why, what was written; then the evidence of each move)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradai_release.render import console, titled_table

if TYPE_CHECKING:
    from tradai_release.workflows.observe import ObserveReport
    from tradai_release.workflows.progress import ProgressReport


def render_observe(report: ObserveReport) -> None:
    out = console()
    columns = ("bot", "runs", "trades", "closed profit", "max drawdown", "open", "since", "answered")
    table = titled_table(f"bots of {report.env} at {report.observed_at:%Y-%m-%d %H:%M} UTC", columns,
                         right=columns[2:6])
    for r in report.results:
        if not r.answered:
            table.add_row(r.bot, "-", "-", "-", "-", "-", "-", f"no: {r.error}")
            continue
        runs = f"v{r.model_version} {r.files_sha256[:12]}" if r.model_version else "?"
        since = f"{r.since:%Y-%m-%d %H:%M}" if r.since else "-"
        table.add_row(r.bot, runs, str(r.trades), f"{r.closed_profit:.4f}", f"{r.max_drawdown:.4f}",
                      str(r.open_trades), since, "yes" if not r.error else f"yes ({r.error})")
    out.print(table)


def render_progress(report: ProgressReport) -> None:
    out = console()
    table = titled_table(f"progress in {report.env}", ("strategy", "decision", "why", "branch"))
    for outcome in report.outcomes:
        decision = outcome.decision
        if outcome.commit:
            branch = f"{outcome.branch} (written {outcome.commit[:12]})"
        elif outcome.proposed_before:
            branch = f"{outcome.branch} (proposed before: nothing written)"
        else:
            branch = outcome.branch or "-"
        why = decision.reason
        if decision.next_check_at is not None:
            why += f" (next check {decision.next_check_at:%Y-%m-%d %H:%M} UTC)"
        table.add_row(decision.strategy, decision.kind, why, branch)
    out.print(table)
    for outcome in report.outcomes:
        for line in outcome.decision.evidence:
            out.print(f"  {outcome.decision.strategy}: {line}", highlight=False)
