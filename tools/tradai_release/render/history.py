"""Terminal output of ``invoke history``: an environment's rows, and what was live at an instant."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradai_release.render import console, short, titled_table

if TYPE_CHECKING:
    from tradai_release.engine.history.values import Change, History, LiveAt


def describe_change(change: Change) -> str:
    """``PascalStrategy p1: v1 -> v2, tag a -> b, config x -> y`` (only what moved; added / removed)."""
    before, after = change.before, change.after
    head = f"{change.strategy} p{change.profile}"
    if before is None and after is not None:
        config = _config(after.config_id, after.config_hash)
        return f"{head}: added at v{after.version}, tag {after.tag}, config {config}"
    if after is None and before is not None:
        return f"{head}: removed (was v{before.version}, tag {before.tag})"
    assert before is not None and after is not None
    parts = []
    if before.version != after.version:
        parts.append(f"v{before.version} -> v{after.version}")
    if before.staging != after.staging:
        parts.append(f"staging {_version(before.staging)} -> {_version(after.staging)}")
    if (before.tag, before.sha256) != (after.tag, after.sha256):
        parts.append(f"tag {before.tag} -> {after.tag}")
    if (before.config_hash, before.config_id) != (after.config_hash, after.config_id):
        parts.append(
            f"config {_config(before.config_id, before.config_hash)} -> "
            f"{_config(after.config_id, after.config_hash)}"
        )
    return f"{head}: {', '.join(parts)}"


def _version(value: int | None) -> str:
    return f"v{value}" if value is not None else "-"


def _config(config_id: str | None, config_hash: str) -> str:
    return config_id or short(config_hash)


def render_history(found: History) -> None:
    """One row per change, newest first; then progress's decisions."""
    out = console()
    scope = ", ".join(f"{name} {value}" for name, value in found.filters.items() if value not in (None, ""))
    title = f"history of {found.env}" + (f" ({scope})" if scope else "") + ", newest first"
    if not found.rows:
        out.print(f"{title}: no deployment recorded")
    else:
        _render_rows(found, title)
    if found.decisions:
        decisions = titled_table("progress's decisions, newest first",
                                 ["when", "strategy", "decision", "why", "branch"])
        for decision in found.decisions:
            moved = decision.get("decision") != "hold" and decision.get("key")
            decisions.add_row(str(decision.get("decided_at") or ""), str(decision.get("strategy") or ""),
                              str(decision.get("decision") or ""), str(decision.get("reason") or ""),
                              f"progress/{decision['key']}" if moved else "-")
        out.print(decisions)


def _render_rows(found: History, title: str) -> None:
    out = console()
    table = titled_table(
        title, ["when", "deployment", "outcome", "commit", "PR", "actor", "trace", "what moved"]
    )
    for row in found.rows:
        d = row.deployment
        what = describe_change(row.change) if row.change is not None else ""
        if row.note:
            what = f"{what} ({row.note})" if what else row.note
        table.add_row(
            row.at,
            str(d.deployment_id),
            d.outcome,
            d.commit[:12],
            f"#{row.pull_request}" if row.pull_request is not None else "-",
            d.actor,
            d.trace_id,
            what,
        )
    out.print(table)


def render_live(found: LiveAt) -> None:
    """Every profile x strategy live at the instant, with the deployment that made it so."""
    out = console()
    last = found.deployment
    if last is None:
        out.print(f"nothing was live in {found.env} at {found.at}: no apply had started by then")
        return
    head = f"live in {found.env} at {found.at}: last apply begun {last.deployment_id} ({last.commit[:12]})"
    out.print(head)
    if found.partial is not None:
        out.print(f"[yellow]{found.partial.describe()}[/yellow]")
        for done in found.partial.done:
            out.print(f"  done: {done}")
    table = titled_table(
        "",
        ["profile", "strategy", "model", "version", "staging", "tag", "sha256", "config id", "made so by"],
        right=["profile", "version", "staging"],
    )
    for held in found.pins:
        pin = held.pin
        table.add_row(
            str(pin.profile),
            pin.strategy,
            pin.model,
            f"v{pin.version}",
            _version(pin.staging),
            pin.tag,
            short(pin.sha256),
            _config(pin.config_id, pin.config_hash),
            f"{held.deployment_id} ({held.since})",
        )
    out.print(table)
