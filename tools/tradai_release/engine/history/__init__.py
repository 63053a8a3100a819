"""Release history of an environment: what each apply moved, and what was live at any instant.

Answered from the deployment records and, for applies that failed, were interrupted or were in
progress at the instant asked about, the per-action journal: one query of each in the
release-state table whatever the number of deployments (the store pages through them). Records
written before deployments carried their pins are read at their commit from git objects (nothing
is checked out). See docs/architecture.md §15.

What history cannot know is a hand change between applies: it shows as the drift that the next
apply repaired (that deployment's row says so), not as a change of its own.

The package: ``values`` (what the answers hold), ``timeline`` (the records, read once), ``replay``
(the fold over them), ``filters`` (the flags); here the two entry points.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from tradai_release.engine.history.filters import Filter, parse_instant
from tradai_release.engine.history.replay import history_rows, live_state_at
from tradai_release.engine.history.timeline import Timeline
from tradai_release.engine.history.values import History, LiveAt

if TYPE_CHECKING:
    from tradai_release.engine.context import ReleaseContext
    from tradai_release.stores import KeyValueTable


def _timeline(context: ReleaseContext, table: KeyValueTable | None) -> Timeline:
    from tradai_release.engine.release_table import open_release_table

    return Timeline(table or open_release_table(context.settings, context.env), context.name, context.root)


def history(
    context: ReleaseContext,
    *,
    profile: str | int | None = None,
    strategy: str | None = None,
    since: str | None = None,
    until: str | None = None,
    table: KeyValueTable | None = None,
) -> History:
    """One row per change of ``env``'s pins, newest first (filtered by profile, strategy and time), and
    the decisions ``progress`` recorded in that range (what moved a release forward or back, and why)."""
    from tradai_release.engine.release_table import ReleaseTable, open_release_table

    wanted = Filter.from_flags(profile, strategy, since, until)
    timeline = _timeline(context, table)
    rows = tuple(row for row in history_rows(timeline) if wanted.keeps(row))
    releases = ReleaseTable(table or open_release_table(context.settings, context.env), context.name)
    decisions = tuple(d for d in releases.decisions(wanted.strategy) if wanted.keeps_decision(d))
    return History(timeline.env, rows, wanted.to_dict(), decisions)


def live_at(
    context: ReleaseContext,
    at: str,
    *,
    profile: str | int | None = None,
    strategy: str | None = None,
    table: KeyValueTable | None = None,
) -> LiveAt:
    """What was live in ``env`` at ``at`` for every profile x strategy (or the ones asked for), with the
    deployment that made each pin so; an instant inside (or after) an apply that did not finish says so
    and shows what of it was applied."""
    moment = parse_instant("history", "--at", at)
    wanted = Filter.from_flags(profile, strategy)
    found = live_state_at(_timeline(context, table), moment)
    return replace(found, pins=tuple(held for held in found.pins if wanted.keeps_pin(held)))
