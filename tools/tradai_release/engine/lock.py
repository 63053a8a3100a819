"""One lease lock per env in the release-state table: one apply at a time, expiring when its holder dies.

Expiry is read on the one clock (:func:`tradai_release.core.clock.utc_now`), so a test moves past a lease by
moving the clock, not by waiting.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from tradai_release.core.clock import stamp, utc_now
from tradai_release.core.errors import ApplyFailed, ConditionFailed, LockHeld
from tradai_release.engine.release_table import LeaseRecord, ReleaseTable
from tradai_release.stores import KeyValueTable

DEFAULT_LEASE_SECONDS = 900
"""A crashed apply blocks the environment at most this long; a live one renews as it goes."""


def _now() -> float:
    """Epoch seconds on the injected clock."""
    return utc_now().timestamp()


@dataclass
class Lease:
    """A held lock; ``renew`` extends it (conditionally: only while it is still ours)."""

    releases: ReleaseTable
    lease_id: str
    holder: str
    deployment_id: str
    seconds: int
    expires_at: float

    @property
    def env(self) -> str:
        return self.releases.env

    def _record(self, expires_at: float, commit: str | None = None) -> LeaseRecord:
        return LeaseRecord(self.lease_id, self.holder, self.deployment_id, commit, stamp(), expires_at)

    def renew_if_due(self) -> None:
        """Extend the lease once a third of it has passed; ApplyFailed when another apply took it over."""
        now = _now()
        if self.expires_at - now > self.seconds * 2 / 3:
            return
        expires = now + self.seconds
        try:
            self.releases.renew_lease(self._record(expires))
        except ConditionFailed:
            detail = "the lease lock expired and was taken over"
            raise ApplyFailed(self.env, self.deployment_id, detail) from None
        self.expires_at = expires

    def release(self) -> None:
        """Drop the lock if it is still ours (an expired and taken-over lease is left to its new holder)."""
        with contextlib.suppress(ConditionFailed):
            self.releases.drop_lease(self.lease_id)


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
    releases = ReleaseTable(table, env)
    lease = Lease(releases, uuid.uuid4().hex, holder, deployment_id, seconds, 0.0)
    current = releases.lease()
    now = _now()
    if current is not None and current.expires_at > now:
        raise _held(env, current)
    expires = now + seconds
    try:
        releases.take_lease(lease._record(expires, commit), expired=current)
    except ConditionFailed:
        raise _held(env, releases.lease()) from None
    lease.expires_at = expires
    return lease


def _held(env: str, lease: LeaseRecord | None) -> LockHeld:
    return LockHeld(
        env,
        (lease.holder if lease is not None else "") or "another apply",
        (lease.deployment_id if lease is not None else "") or "?",
        stamp(datetime.fromtimestamp((lease.expires_at if lease is not None else 0) or _now(), UTC)),
    )
