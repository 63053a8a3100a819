"""Terminal output of ``invoke progress``: one row per strategy (decision, why, what was written), then the
evidence of each move."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradai_release.render import console, titled_table

if TYPE_CHECKING:
    from tradai_release.workflows.progress import ProgressReport


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
