"""The release-state table: the one owner of its keys and item formats, read and written by typed methods.

One partition per environment (docs/architecture.md §12); the sort key says what an item is:

* ``#STATE``: what the last successful apply made live (:class:`AppliedState`);
* ``#LOCK``: the lease of the apply in progress (:class:`LeaseRecord`), ``expires_at`` its TTL;
* ``deploy#<deployment id>``: one apply of one commit (:class:`Deployment`);
* ``journal#<deployment id>#<index>``: one action of that apply that finished (:class:`JournalEntry`);
* ``drift#<strategy>#<checked at, to the microsecond>``: one recorded PSI check (:class:`RecordedCheck`);
* ``live#<strategy>#p<N>#<role>#<observed at>``: one reading of a bot's live results (:class:`LiveResult`,
  ``invoke observe``), ``expires_at`` its TTL;
* ``progress#<strategy>#<decided at>``: one of ``invoke progress``'s decisions, written when it differs
  from the strategy's last one (:class:`Decision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tradai_release.core.clock import stamp
from tradai_release.domain.live import LiveResult
from tradai_release.domain.progress import Decision
from tradai_release.engine.actions import Action
from tradai_release.engine.release_items import (
    RELEASE_TTL_ATTRIBUTE,
    AppliedState,
    Deployment,
    JournalEntry,
    LeaseRecord,
    RecordedCheck,
)
from tradai_release.stores import Condition

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.repository.environments import Environment
    from tradai_release.stores import KeyValueTable

RELEASE_TABLE = "releases"
"""Table name inside a SQLite file (a ``dynamodb://`` URI names the table itself)."""
RELEASE_PARTITION_KEY = "pk"
"""Partition key attribute of the release-state table: the environment."""
RELEASE_SORT_KEY = "sk"
"""Sort key attribute of the release-state table: what the item is."""

__all__ = [
    "RELEASE_PARTITION_KEY",
    "RELEASE_SORT_KEY",
    "RELEASE_TABLE",
    "RELEASE_TTL_ATTRIBUTE",
    "AppliedState",
    "Deployment",
    "JournalEntry",
    "LeaseRecord",
    "LiveResult",
    "RecordedCheck",
    "ReleaseTable",
    "open_release_table",
]

_STATE = "#STATE"
_LOCK = "#LOCK"
_DEPLOYMENT = "deploy#"
_JOURNAL = "journal#"
_CHECK = "drift#"
_LIVE = "live#"
_PROGRESS = "progress#"
LIVE_KEEP_DAYS = 30.0
"""Days a live reading is kept (its TTL): the board's chart and a challenger's window reach back this far."""


def open_release_table(settings: Settings, env: Environment) -> KeyValueTable:
    """The release-state table of ``env`` (§12), alone: history needs no other backend."""
    from tradai_release.stores import open_table

    return open_table(
        env.backends.release_table_uri,
        table=RELEASE_TABLE,
        partition_key=RELEASE_PARTITION_KEY,
        sort_key=RELEASE_SORT_KEY,
        aws=settings.aws(),
    )


def _key(env: str, sort_key: str) -> dict[str, str]:
    return {RELEASE_PARTITION_KEY: env, RELEASE_SORT_KEY: sort_key}


@dataclass(frozen=True)
class ReleaseTable:
    """The items of one environment's partition of the release-state table."""

    table: KeyValueTable
    env: str

    # --- the applied state ---

    def applied(self) -> AppliedState | None:
        """The record of the last successful apply (one consistent get), or None."""
        item = self.table.get(_key(self.env, _STATE))
        return AppliedState.from_item(item) if item is not None else None

    def record_applied(self, state: AppliedState) -> None:
        self.table.put({**_key(self.env, _STATE), **state.to_item()})

    # --- the lease lock (conditional writes: ConditionFailed when another apply holds it) ---

    def lease(self) -> LeaseRecord | None:
        """The lock (None when free); an expired one is returned too (check ``expires_at``)."""
        item = self.table.get(_key(self.env, _LOCK))
        return LeaseRecord.from_item(item) if item is not None else None

    def take_lease(self, lease: LeaseRecord, expired: LeaseRecord | None) -> None:
        """Write ``lease`` if the lock is free (``expired`` None) or still the ``expired`` one."""
        if expired is None:
            condition = Condition(exists=False)
        else:  # take it over only if nobody else did meanwhile
            condition = Condition(equals={"lease_id": expired.lease_id})
        self.table.put({**_key(self.env, _LOCK), **lease.to_item()}, condition=condition)

    def renew_lease(self, lease: LeaseRecord) -> None:
        """Overwrite the lock with ``lease`` while it is still ours (same lease id)."""
        item = {**_key(self.env, _LOCK), **lease.to_item()}
        self.table.put(item, condition=Condition(equals={"lease_id": lease.lease_id}))

    def drop_lease(self, lease_id: str) -> None:
        """Delete the lock while it is still ``lease_id``'s."""
        self.table.delete(_key(self.env, _LOCK), condition=Condition(equals={"lease_id": lease_id}))

    # --- deployments and their journal ---

    def save_deployment(self, deployment: Deployment) -> None:
        """Write (or overwrite) the deployment's record."""
        assert deployment.deployment_id is not None
        self.table.put({**_key(self.env, _DEPLOYMENT + deployment.deployment_id), **deployment.to_record()})

    def deployment(self, deployment_id: str) -> Deployment | None:
        item = self.table.get(_key(self.env, _DEPLOYMENT + deployment_id))
        return Deployment.from_item(item) if item is not None else None

    def deployments(self) -> list[Deployment]:
        """Every recorded deployment, newest first (one query)."""
        items = self.table.query(self.env, prefix=_DEPLOYMENT, descending=True)
        return [Deployment.from_item(item) for item in items]

    def write_journal(self, deployment_id: str, index: int, action: Action, status: str) -> None:
        """Record that action ``index`` of a deployment reached ``status`` (done / failed) now."""
        entry = JournalEntry(deployment_id, index, status, stamp(), action)
        self.table.put({**_key(self.env, f"{_JOURNAL}{deployment_id}#{index:04d}"), **entry.to_item()})

    def journal(self, deployment_id: str) -> list[JournalEntry]:
        """The journal entries of one deployment, in action order (one query)."""
        items = self.table.query(self.env, prefix=f"{_JOURNAL}{deployment_id}#")
        return [JournalEntry.from_item(item) for item in items]

    def journals(self) -> dict[str, list[JournalEntry]]:
        """The journal entries of every deployment, per deployment id, in action order (one query)."""
        grouped: dict[str, list[JournalEntry]] = {}
        for item in self.table.query(self.env, prefix=_JOURNAL):
            entry = JournalEntry.from_item(item)
            grouped.setdefault(entry.deployment_id, []).append(entry)
        for entries in grouped.values():
            entries.sort(key=lambda entry: entry.index)
        return grouped

    # --- recorded PSI checks ---

    def record_check(self, check: RecordedCheck, moment: datetime) -> None:
        # ``moment`` (the check's instant) orders it, to the microsecond: two checks in one second are two
        # records, in time order.
        order = moment.strftime("%Y%m%dT%H%M%S%fZ")
        self.table.put({**_key(self.env, f"{_CHECK}{check.strategy}#{order}"), **check.to_item()})

    def recorded_checks(self) -> dict[str, list[RecordedCheck]]:
        """Every recorded check (one query), per strategy, newest first."""
        found: dict[str, list[RecordedCheck]] = {}
        for item in self.table.query(self.env, prefix=_CHECK, descending=True):
            check = RecordedCheck.from_item(item)
            found.setdefault(check.strategy, []).append(check)
        return found

    # --- live results of the bots ---

    def record_live(self, result: LiveResult, keep_days: float = LIVE_KEEP_DAYS) -> None:
        """Write one reading; it expires ``keep_days`` after it was taken."""
        order = result.observed_at.strftime("%Y%m%dT%H%M%S%fZ")
        sort_key = f"{_LIVE}{result.strategy}#p{result.profile}#{result.role}#{order}"
        expires = (result.observed_at + timedelta(days=keep_days)).timestamp()
        self.table.put({**_key(self.env, sort_key), **result.to_item(), RELEASE_TTL_ATTRIBUTE: int(expires)})

    def live_results(self, strategy: str | None = None) -> list[LiveResult]:
        """Every kept reading (of one strategy's bots, or all), oldest first (one query)."""
        prefix = f"{_LIVE}{strategy}#" if strategy else _LIVE
        items = self.table.query(self.env, prefix=prefix)
        readings = [LiveResult.from_item(self.env, item) for item in items]
        return sorted(readings, key=lambda reading: reading.observed_at)

    # --- progress's decisions ---

    def record_decision(self, decision: Decision, moment: datetime) -> None:
        order = moment.strftime("%Y%m%dT%H%M%S%fZ")
        item = {**decision.to_dict(), "decided_at": stamp(moment), "summary": decision.summary}
        self.table.put({**_key(self.env, f"{_PROGRESS}{decision.strategy}#{order}"), **item})

    def decisions(self, strategy: str | None = None) -> list[dict[str, object]]:
        """The recorded decisions (of one strategy, or all), newest first (one query)."""
        prefix = f"{_PROGRESS}{strategy}#" if strategy else _PROGRESS
        return [dict(item) for item in self.table.query(self.env, prefix=prefix, descending=True)]
