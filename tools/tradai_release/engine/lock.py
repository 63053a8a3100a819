"""One lease lock per env in the release-state table: one apply at a time, lapsing soon after its holder dies.

A live apply renews its lease from a heartbeat thread every third of the lease, so a slow action (a
rollout wait of many minutes) keeps it, while a holder killed outright lets it lapse within one lease
(60 s by default): the next run takes it over and finishes the job. ``unlock`` breaks a lease by hand.
Expiry is read on the one clock (:func:`tradai_release.core.clock.utc_now`), so a test moves past a lease
by moving the clock, not by waiting.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tradai_release.core.clock import stamp, utc_now
from tradai_release.core.errors import ApplyFailed, ConditionFailed, InputError, LockHeld, TradaiError
from tradai_release.engine.release_table import LeaseRecord, ReleaseTable
from tradai_release.stores import KeyValueTable

DEFAULT_LEASE_SECONDS = 60
"""A crashed apply blocks the environment at most this long after its last heartbeat."""


def _now() -> float:
    """Epoch seconds on the injected clock."""
    return utc_now().timestamp()


@dataclass
class Lease:
    """A held lock: its heartbeat renews it, conditionally (only while it is still ours)."""

    releases: ReleaseTable
    lease_id: str
    holder: str
    deployment_id: str
    seconds: float
    expires_at: float
    commit: str | None = None
    acquired_at: str = ""
    _lost: str | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def env(self) -> str:
        return self.releases.env

    def _record(self, expires_at: float, renewed: bool = False) -> LeaseRecord:
        return LeaseRecord(self.lease_id, self.holder, self.deployment_id, self.commit, self.acquired_at,
                           expires_at, stamp() if renewed else "")

    def _renew(self) -> None:
        with self._guard:
            expires = _now() + self.seconds
            try:
                self.releases.renew_lease(self._record(expires, renewed=True))
            except ConditionFailed:
                detail = "the lease lock lapsed and was taken over, or was broken by unlock"
                self._lost = detail
                raise ApplyFailed(self.env, self.deployment_id, detail) from None
            self.expires_at = expires

    def start_heartbeat(self) -> None:
        """Renew the lease every third of it from a daemon thread until ``release``. A renewal that finds
        the lease gone stops the beat and fails the apply at its next step; a backend error is retried
        at the next beat (if it lasts, the lease lapses, as a dead holder's does)."""
        interval = max(self.seconds / 3, 0.05)

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    self._renew()
                except ApplyFailed:
                    return
                except TradaiError:
                    continue

        threading.Thread(target=beat, name=f"lease-{self.env}", daemon=True).start()

    def renew_if_due(self) -> None:
        """Between two actions: ApplyFailed when the lease was lost; else extend it once a third of it
        has passed (an apply without a heartbeat thread renews only here)."""
        if self._lost is not None:
            raise ApplyFailed(self.env, self.deployment_id, self._lost)
        if self.expires_at - _now() > self.seconds * 2 / 3:
            return
        self._renew()

    def stop(self) -> None:
        """Stop the heartbeat: the lease then lapses ``seconds`` after its last renewal."""
        self._stop.set()

    def release(self) -> None:
        """Stop the heartbeat and drop the lock if it is still ours (a lease taken over is left to its new
        holder)."""
        self.stop()
        with self._guard, contextlib.suppress(ConditionFailed):
            self.releases.drop_lease(self.lease_id)


def acquire(
    table: KeyValueTable,
    env: str,
    *,
    holder: str,
    deployment_id: str,
    commit: str,
    seconds: float = DEFAULT_LEASE_SECONDS,
) -> Lease:
    """Take the env's lock, or raise LockHeld naming the current holder and when its lease expires.

    An expired lock is taken over with a compare-and-swap on its lease id, so of two
    appliers that both saw it expire only one wins.
    """
    releases = ReleaseTable(table, env)
    lease = Lease(releases, uuid.uuid4().hex, holder, deployment_id, seconds, 0.0, commit, stamp())
    current = releases.lease()
    now = _now()
    if current is not None and current.expires_at > now:
        raise _held(env, current)
    expires = now + seconds
    try:
        releases.take_lease(lease._record(expires), expired=current)
    except ConditionFailed:
        raise _held(env, releases.lease()) from None
    lease.expires_at = expires
    if current is not None and current.deployment_id:
        _lapsed(releases, current, deployment_id)
    return lease


def _lapsed(releases: ReleaseTable, lapsed: LeaseRecord, successor: str) -> None:
    """The apply whose lease lapsed died without a word: its record, still running, says so now."""
    from tradai_release.engine.deployments import FAILED, RUNNING

    deployment = releases.deployment(lapsed.deployment_id)
    if deployment is None or deployment.outcome != RUNNING:
        return
    renewed = lapsed.renewed_at or lapsed.acquired_at
    error = f"its apply stopped renewing the lease (last at {renewed}); deployment {successor} took it over"
    releases.save_deployment(replace(deployment, outcome=FAILED, error=error, finished_at=stamp()))


def _held(env: str, lease: LeaseRecord | None) -> LockHeld:
    return LockHeld(
        env,
        (lease.holder if lease is not None else "") or "another apply",
        (lease.deployment_id if lease is not None else "") or "?",
        stamp(datetime.fromtimestamp((lease.expires_at if lease is not None else 0) or _now(), UTC)),
        (lease.lease_id if lease is not None else "") or "",
    )


@dataclass(frozen=True)
class Unlocked:
    """A lease broken by hand: whose it was, and the record of who broke it and why."""

    env: str
    lease: LeaseRecord
    record: dict[str, Any]
    deployment_found: bool

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "lease": self.lease.to_dict(), "unlocked": self.record,
                "deployment_recorded": self.deployment_found}


def unlock(
    table: KeyValueTable, env: str, lease_id: str, *, actor: str, reason: str, force: bool = False
) -> Unlocked:
    """Break ``env``'s lease ``lease_id``. A lease still being renewed (its holder is alive, or died less
    than one lease ago) is refused unless ``force``; the deployment the lease was for records who broke
    it, when and why (a running one is marked failed)."""
    from tradai_release.engine.deployments import FAILED, RUNNING

    releases = ReleaseTable(table, env)
    current = releases.lease()
    if current is None:
        raise InputError("unlock", "--lease", f"{env} holds no lease lock")
    if current.lease_id != lease_id:
        raise InputError("unlock", "--lease", f"the lease of {env} is {current.lease_id}, not {lease_id}")
    expires = stamp(datetime.fromtimestamp(current.expires_at, UTC))
    if current.expires_at > _now() and not force:
        renewed = current.renewed_at or current.acquired_at
        raise InputError(
            "unlock", "--lease",
            f"{current.holder} (deployment {current.deployment_id}) still renews it (last at {renewed}, "
            f"lapses at {expires}); a dead holder's lease lapses by itself: pass --force to break a live one",
        )
    record = {"by": actor, "reason": reason, "at": stamp(), "lease_id": lease_id, "forced": force}
    try:
        releases.drop_lease(lease_id)
    except ConditionFailed:
        raise InputError("unlock", "--lease", f"the lease of {env} changed meanwhile; look again") from None
    deployment = releases.deployment(current.deployment_id) if current.deployment_id else None
    if deployment is not None:
        outcome = FAILED if deployment.outcome == RUNNING else deployment.outcome
        error = deployment.error or f"lease broken by {actor}: {reason}"
        releases.save_deployment(replace(deployment, outcome=outcome, unlocked=record, error=error,
                                         finished_at=deployment.finished_at or stamp()))
    return Unlocked(env, current, record, deployment is not None)
