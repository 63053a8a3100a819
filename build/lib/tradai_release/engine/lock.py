"""One lease lock per env in the release-state table: one apply at a time, expiring when its holder dies."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tradai_release.clock import stamp
from tradai_release.engine.state import release_key
from tradai_release.errors import ApplyFailed, ConditionFailed, LockHeld
from tradai_release.stores import Condition, KeyValueTable

LOCK_KEY = "#LOCK"
DEFAULT_LEASE_SECONDS = 900
"""A crashed apply blocks the environment at most this long; a live one renews as it goes."""


@dataclass
class Lease:
    """A held lock; ``renew`` extends it (conditionally: only while it is still ours)."""

    table: KeyValueTable
    env: str
    lease_id: str
    holder: str
    deployment_id: str
    seconds: int
    expires_at: float

    def _item(self, expires_at: float, commit: str | None = None) -> dict[str, Any]:
        return {
            **release_key(self.env, LOCK_KEY),
            "lease_id": self.lease_id,
            "holder": self.holder,
            "deployment_id": self.deployment_id,
            "commit": commit,
            "acquired_at": stamp(),
            "expires_at": int(expires_at),
        }

    def renew_if_due(self) -> None:
        """Extend the lease once a third of it has passed; ApplyFailed when another apply took it over."""
        now = time.time()
        if self.expires_at - now > self.seconds * 2 / 3:
            return
        expires = now + self.seconds
        try:
            self.table.put(self._item(expires), condition=Condition(equals={"lease_id": self.lease_id}))
        except ConditionFailed:
            detail = "the lease lock expired and was taken over"
            raise ApplyFailed(self.env, self.deployment_id, detail) from None
        self.expires_at = expires

    def release(self) -> None:
        """Drop the lock if it is still ours (an expired and taken-over lease is left to its new holder)."""
        mine = Condition(equals={"lease_id": self.lease_id})
        with contextlib.suppress(ConditionFailed):
            self.table.delete(release_key(self.env, LOCK_KEY), condition=mine)


def acquire(
    table: KeyValueTable,
    env: str,
    *,
    holder: str,
    deployment_id: str,
    commit: str,
    seconds: int = DEFAULT_LEASE_SECONDS,
) -> Lease:
    """Take the env's lock, or raise LockHeld naming the current holder and when its lease expires.

    An expired lock is taken over with a compare-and-swap on its lease id, so of two
    appliers that both saw it expire only one wins.
    """
    key = release_key(env, LOCK_KEY)
    lease = Lease(table, env, uuid.uuid4().hex, holder, deployment_id, seconds, 0.0)
    current = table.get(key)
    now = time.time()
    if current is not None and float(current.get("expires_at") or 0) > now:
        raise _held(env, current)
    if current is None:
        condition = Condition(exists=False)
    else:  # expired: take it over only if nobody else did meanwhile
        condition = Condition(equals={"lease_id": current.get("lease_id")})
    expires = now + seconds
    try:
        table.put(lease._item(expires, commit), condition=condition)
    except ConditionFailed:
        raced = table.get(key)
        raise _held(env, raced or {}) from None
    lease.expires_at = expires
    return lease


def read_lock(table: KeyValueTable, env: str) -> dict[str, Any] | None:
    """The lock item of ``env`` (None when free); an expired one is returned too (check ``expires_at``)."""
    return table.get(release_key(env, LOCK_KEY))


def _held(env: str, item: dict[str, Any]) -> LockHeld:
    return LockHeld(
        env,
        str(item.get("holder") or "another apply"),
        str(item.get("deployment_id") or "?"),
        stamp(datetime.fromtimestamp(float(item.get("expires_at") or time.time()), UTC)),
    )
