"""Presentation of drift reports, retraining checks and retrain outcomes (terminal and Markdown)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradai_release.render import console

if TYPE_CHECKING:
    from tradai_release.workflows.drift import DriftReport
    from tradai_release.workflows.retrain_all import RetrainRun
    from tradai_release.workflows.retrain_check import RetrainingCheck
    from tradai_release.workflows.retrain_proposal import RetrainResult
    from tradai_release.workflows.retrain_set import RetrainingSet

_STYLE = {"stable": "green", "moderate": "yellow", "significant": "bold red"}


def render_drift(report: DriftReport) -> None:
    """Per live model a table of PSI per feature and prediction, then the plan's state drift."""
    from rich.table import Table

    out = console()
    limits = report.thresholds
    out.print(
        f"[bold]{report.env}[/]: PSI drift {report.level} "
        f"(stable < {limits.moderate:g} <= moderate <= {limits.significant:g} < significant)"
    )
    if not report.strategies:
        out.print("  no model is pinned in this environment")
    for item in report.strategies:
        live = item.live
        profiles = ", ".join(str(p) for p in live.profiles)
        out.print(
            f"\n[bold]{item.strategy}[/] {live.model} v{live.version} "
            f"(profiles {profiles}, {item.reference}) "
            f"vs {item.window.source}: {item.window.rows} rows {item.window.start} .. {item.window.end}"
        )
        table = Table(show_edge=False, pad_edge=False, box=None)
        table.add_column("kind")
        table.add_column("name")
        table.add_column("PSI", justify="right")
        table.add_column("level")
        for row in item.rows:
            style = _STYLE.get(row.level, "")
            table.add_row(
                row.kind, row.name, f"{row.psi:.4f}", f"[{style}]{row.level}[/]" if style else row.level
            )
        out.print(table)
        out.print(f"  => {item.level} (max PSI {item.max_psi:.4f})")
    if report.state_error:
        out.print(f"\nlive state: not planned ({report.state_error})")
    elif report.pending_actions is not None:
        out.print(
            f"\nlive state: {len(report.state_drift)} value(s) changed by hand, "
            f"{report.pending_actions} pending action(s) in the plan"
        )
        for entry in report.state_drift:
            out.print(f"  drift {entry.get('kind')} {entry.get('target')}: {entry.get('detail')}")
    if report.notified:
        out.print("notified: drift_found")


def render_check(check: RetrainingCheck) -> None:
    """One block per live model: needed or not, and every reason."""
    out = console()
    verdict = "retraining needed for " + ", ".join(check.retrain) if check.needed else "no retraining needed"
    out.print(f"[bold]{check.env}[/]: {verdict}")
    for item in check.strategies:
        age = (
            "age unknown"
            if item.age_days is None
            else f"{item.age_days:.1f} days old ({item.created_source})"
        )
        state = "[bold red]retrain[/]" if item.needed else "[green]ok[/]"
        out.print(
            f"  {item.strategy} v{item.version} (profiles {', '.join(map(str, item.profiles))}): {state}; "
            f"{age}, max {item.max_age_days} ({item.max_age_source}); drift {item.drift_level or '-'}"
        )
        for reason in item.reasons:
            out.print(f"    - {reason}")


def render_retrain(result: RetrainResult) -> None:
    """The challenger, each profile's decision, and the branch proposed (or why none was)."""
    out = console()
    if result.challenger is None:
        out.print(
            f"{result.strategy}: retraining reproduced the champion's files in every selected profile of "
            f"{result.env}; no hub tag pushed, no version registered"
        )
    else:
        tags = ", ".join(f"{tag} (from {source})" for source, (tag, _) in result.tags.items())
        how = "already registered with the same files" if result.duplicate else "registered"
        out.print(f"challenger {result.model} v{result.challenger} {how} in {result.env}; hub tag {tags}")
    for verdict in result.verdicts:
        out.print(f"  profile {verdict.profile}: champion v{verdict.champion} -> {verdict.decision}")
        for reason in verdict.reasons:
            out.print(f"    - {reason}")
    if result.already_proposed:
        out.print(
            f"already proposed on branch {result.branch} (commit {result.commit}) by an earlier retrain; "
            "nothing new written"
        )
    elif result.proposed:
        out.print(f"proposed on branch {result.branch} (commit {result.commit}); open a pull request from it")
    elif result.challenger is None:
        out.print("unchanged: nothing pushed, registered or proposed")
    else:
        out.print("nothing proposed: the champion stays (reasons above, recorded on the challenger version)")
    if result.notified:
        out.print(f"notified: {result.event}")


def render_set(retraining: RetrainingSet) -> None:
    """Each strategy to retrain once, with every environment's reasons, and the jobs that will train them."""
    out = console()
    checked = ", ".join(retraining.checked)
    if not retraining.strategies:
        out.print(f"no retraining needed in {checked}")
        return
    count = len(retraining.strategies)
    out.print(f"retrain {count} strateg{'y' if count == 1 else 'ies'} once each (checked {checked}); "
              f"each challenger is registered in {retraining.register_env}")
    for item in retraining.strategies:
        out.print(f"  [bold]{item.strategy}[/] ({', '.join(item.reasons) or 'manual'})")
        for env, reasons in item.reasons.items():
            for reason in reasons:
                out.print(f"    - {env}: {reason}")
        if item.requested:
            out.print("    - requested manually")
    jobs = retraining.matrix()["include"]
    out.print(f"{len(jobs)} job(s) of at most {retraining.max_jobs}")


def render_run(run: RetrainRun) -> None:
    """``retrain --all``: each strategy's outcome, then the failed ones, then the time it took."""
    out = console()
    if run.retraining is not None:
        render_set(run.retraining)
    for result in run.results:
        out.print("")
        render_retrain(result)
    for strategy, error in sorted(run.failed.items()):
        out.print(f"[bold red]{strategy} failed[/]: {error}")
    out.print(f"{len(run.results)} retrained, {len(run.failed)} failed, {run.workers} training process(es), "
              f"{run.seconds:.1f} s")
