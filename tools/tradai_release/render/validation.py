"""Terminal output of ``invoke validate`` and ``invoke hash``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tradai_release.domain.pins import PinChange
from tradai_release.render import console, print_errors
from tradai_release.workflows.validate import ValidationReport


def render_report(report: ValidationReport) -> None:
    """Problems on stderr (one ``error:`` line each), or a one-line summary on stdout when all is well."""
    if report.problems:
        print_errors(report.problems)
        return
    mode = "offline" if report.offline else "offline + live"
    if report.deep:
        mode += ", blob contents"
    scope = ""
    if report.changes is not None:
        scope = (
            f"; changed since base: {len(report.changes.strategies)} strategies, "
            f"{len(report.changes.manifests)} manifests"
        )
    console().print(
        f"[green]ok[/green]: {report.strategies} strategies and {report.manifests} manifests "
        f"pass validation ({mode}){scope}"
    )


def render_hashes(hashes: Mapping[str, str], updates: Sequence[PinChange] | None = None) -> None:
    """A table of config hashes per strategy, then the manifest pins ``--write`` refreshed."""
    from rich.table import Table

    out = console()
    table = Table(box=None, pad_edge=False)
    table.add_column("strategy", no_wrap=True)
    table.add_column("config hash", no_wrap=True, min_width=64)
    table.add_column("config_id suffix", no_wrap=True)
    for name in sorted(hashes):
        table.add_row(name, hashes[name], hashes[name][:8])
    out.print(table)
    if updates is None:
        return
    if not updates:
        out.print("all manifest config pins are up to date")
        return
    for update in updates:
        out.print(
            f"updated {update.path}: strategies.{update.strategy}.config "
            f"{update.old[:12]} -> {update.new[:12]}"
        )
