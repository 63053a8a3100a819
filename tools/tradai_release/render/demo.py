"""Terminal output of ``invoke demo``: each step as it finishes, then the summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradai_release.render import console, titled_table

if TYPE_CHECKING:
    from tradai_release.demo import DemoReport, DemoStep


def render_step(step: DemoStep) -> None:
    """One finished step: name, time, and what it produced."""
    out = console()
    out.print(f"[bold green]✓[/] {step.name} [dim]({step.seconds:.1f} s)[/]", highlight=False)
    for part in step.detail.split("; "):
        if part:
            out.print(f"    {part}", highlight=False, markup=False)


def render_summary(report: DemoReport) -> None:
    """Lifecycle of the promoted strategy, the deployments, and where to look."""
    out = console()
    total = sum(step.seconds for step in report.steps)
    for strategy, versions in report.lifecycle.items():
        columns = ("version", "lifecycle", "aliases", "r2_tag", "total_profit", "sharpe_ratio")
        table = titled_table(f"{strategy} in prod after the rollback", columns)
        for view in versions:
            metrics = view.get("metrics", {})
            table.add_row(
                str(view["version"]),
                str(view["lifecycle"]),
                ", ".join(view["aliases"]) or "-",
                str(view.get("r2_tag") or "-"),
                f"{metrics['total_profit']:.3f}" if "total_profit" in metrics else "-",
                f"{metrics['sharpe_ratio']:.2f}" if "sharpe_ratio" in metrics else "-",
            )
        out.print(table)
    deployments = titled_table(
        "prod deployments (newest first)", ("deployment", "commit", "outcome", "actions", "actor")
    )
    for record in report.deployments:
        deployments.add_row(
            str(record["deployment_id"]),
            str(record["commit"])[:12],
            str(record["outcome"]),
            str(len(record.get("actions", []))),
            str(record.get("actor", "")),
        )
    out.print(deployments)
    out.print(f"{len(report.steps)} steps in {total:.0f} s; scratch repository and state in {report.workdir}")
    if report.plan_markdown:
        out.print(f"the pull request's plan comment: {report.plan_markdown}")
    if report.board:
        out.print(f"the release board: {report.board}")
    if report.trades_db:
        out.print(f"the bot's trade database (Freqtrade's SQLite): {report.trades_db}")
