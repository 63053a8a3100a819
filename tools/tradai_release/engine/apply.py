"""Apply: lock, refuse stale commits, execute a plan's actions in order with a journal, re-check.

See docs/architecture.md §7. How each action runs is :mod:`tradai_release.engine.executor`'s; this
module decides when (phases, lanes, workers), and holds the lease and the journal around it.

Every action is idempotent, and the plan only holds what is not yet live, so an apply that
crashed part-way converges when re-run: the new plan holds exactly what is left.
"""

from __future__ import annotations

import contextlib
import heapq
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.clock import stamp
from tradai_release.core.errors import (
    ApplyFailed,
    ApplyRefused,
    ArtifactsRefused,
    BackendError,
    PolicyBlocked,
    StaleCommit,
    TradaiError,
)
from tradai_release.core.redact import scrub_text, secret_values
from tradai_release.engine.actions import Action, VerifyArtifacts
from tradai_release.engine.admission import judge_plan, override_records, refuse_blocked
from tradai_release.engine.deployments import (
    FAILED,
    NOOP,
    RUNNING,
    SUCCEEDED,
    Deployment,
    new_deployment_id,
    pull_request_number,
    recorded_pins,
)
from tradai_release.engine.executor import Executor
from tradai_release.engine.lock import Lease, acquire
from tradai_release.engine.plan import build_plan
from tradai_release.engine.release_table import ReleaseTable
from tradai_release.engine.state import EngineBackends, read_live

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.engine.context import ReleaseContext
    from tradai_release.engine.state import AppliedState
    from tradai_release.stores import KeyValueTable

AfterAction = Callable[[int, Action], None]


def apply_env(
    context: ReleaseContext,
    *,
    actor: str | None = None,
    lease_seconds: float | None = None,
    after_action: AfterAction | None = None,
    concurrency: int | None = None,
) -> Deployment:
    """Make the context's environment match its commit; returns the deployment (outcome ``noop`` when
    nothing was to do).

    Refuses (exit 1) a commit that does not descend from the last applied one, and a
    second apply while the env's lease lock is held. An apply with nothing to do
    writes nothing. Actions of one phase on different keys run ``concurrency`` at a time
    (default ``settings.apply_concurrency``). ``after_action`` is called in the calling thread
    after each executed action is journaled (tests inject crashes with it).
    """
    settings, env, root = context.settings, context.name, context.root
    desired, backends = context.desired, context.backends
    actor = actor or settings.actor
    trace_id = settings.new_trace_id()

    live = read_live(backends, desired)
    check_descends(root, env, desired.commit, live.applied)
    plan = build_plan(desired, live)
    started = stamp()
    if plan.empty:
        return Deployment(env, desired.commit, None, NOOP, actor, trace_id, started, started, plan.to_dict())
    # The policy is enforced here, whatever validate said: before the lease, the first write.
    plan = replace(plan, verdicts=judge_plan(settings, plan, repo=root, hub=backends.hub))
    refuse_blocked(env, plan.verdicts)

    deployment_id = new_deployment_id()
    lease = acquire(
        backends.releases,
        env,
        holder=actor,
        deployment_id=deployment_id,
        commit=desired.commit,
        seconds=settings.lease_seconds if lease_seconds is None else lease_seconds,
    )
    lease.start_heartbeat()
    deployment = Deployment(
        env, desired.commit, deployment_id, RUNNING, actor, trace_id, started,
        pins=recorded_pins(desired), pull_request=_pull_request(root, desired.commit),
    )
    statuses: list[dict[str, Any]] = []
    try:
        # Under the lock, read again: an apply that held it before us may have changed everything.
        live = read_live(backends, desired)
        check_descends(root, env, desired.commit, live.applied)
        judged, plan = plan, build_plan(desired, live)
        if plan.empty:  # the apply that held the lock before us did it all
            lease.release()
            return Deployment(
                env, desired.commit, None, NOOP, actor, trace_id, started, stamp(), plan.to_dict()
            )
        verdicts = judged.verdicts
        if [a.to_dict() for a in plan.actions] != [a.to_dict() for a in judged.actions]:
            verdicts = judge_plan(settings, plan, repo=root, hub=backends.hub)  # another apply moved things
        plan = replace(plan, verdicts=verdicts)
        if plan.blocked:
            lease.release()
            refuse_blocked(env, plan.verdicts)
        statuses = [{**action.to_dict(), "status": "pending"} for action in plan.actions]
        deployment = replace(deployment, plan=plan.to_dict(), actions=tuple(statuses),
                             overrides=override_records(plan.verdicts))
        executor = Executor(backends, plan, deployment)
        verified = _verify(executor, statuses)  # reads only: a refusal here writes nothing
        releases = ReleaseTable(backends.releases, env)
        releases.save_deployment(deployment)
        for index in verified:
            releases.write_journal(deployment_id, index, plan.actions[index], "done")
        workers = _workers(backends, settings.apply_concurrency if concurrency is None else concurrency)
        _Schedule(executor, statuses, lease, after_action, workers).run()
        settled = read_live(backends, desired)
        after = build_plan(desired, settled)
        if not after.empty:
            left = ", ".join(f"{a.kind} {a.target}" for a in after.actions[:3])
            raise ApplyFailed(env, deployment_id, f"the plan after applying is not empty: {left}")
        deployment = replace(
            deployment.with_outcome(SUCCEEDED if plan.actions else NOOP, statuses),
            pins=recorded_pins(desired, settled.active),
        )
        ReleaseTable(backends.releases, env).save_deployment(deployment)
    except BaseException as err:
        if isinstance(err, (PolicyBlocked, ApplyRefused)):  # refused under the lease before any write
            lease.release()
            if isinstance(err, ArtifactsRefused):  # what was merged cannot go live: say so
                details = {"env": env, "commit": desired.commit, "outcome": "refused", "error": str(err)}
                _notify(settings, "apply_failed", str(err), details)
            raise
        lease.stop()  # whatever happens next, this apply renews no more
        message = scrub_text(str(err) or type(err).__name__, secret_values(settings))
        failed = deployment.with_outcome(FAILED, statuses, error=message)
        message += _close_failed(backends.releases, lease, failed, err)
        _notify(
            settings,
            "apply_failed",
            f"apply {env} {desired.commit[:12]} failed: {message}",
            failed.to_record(),
        )
        if isinstance(err, TradaiError) and not isinstance(err, ApplyFailed):
            raise ApplyFailed(env, deployment_id, message) from err
        raise
    lease.release()
    rolled_back = sorted({f"{c.model} v{c.challenger}" for c in plan.model_changes if c.rollback})
    if rolled_back:  # a pin moved back to a version that was Production before
        summary = f"rolled {env} back to {', '.join(rolled_back)} at {desired.commit[:12]}"
        _notify(settings, "rollback_applied", summary, deployment.to_record())
    else:
        summary = f"applied {desired.commit[:12]} to {env}: {len(plan.actions)} actions"
        _notify(settings, "apply_succeeded", summary, deployment.to_record())
    return deployment


def _verify(executor: Executor, statuses: list[dict[str, Any]]) -> list[int]:
    """Run the plan's verifications before anything is written; their indices. A failure is the apply's
    refusal (ArtifactsRefused), as a stale commit or a policy block is: no record, no journal."""
    done = []
    for index, action in enumerate(executor.plan.actions):
        if isinstance(action, VerifyArtifacts):
            try:
                executor.run(action)
            except TradaiError as err:
                raise ArtifactsRefused(executor.plan.env, str(err)) from err
            statuses[index]["status"] = "done"
            done.append(index)
    return done


def _pull_request(root: Path, commit: str) -> int | None:
    """The pull request number ``commit``'s message names (history shows it), None when it names none."""
    from tradai_release.repository.gitrepo import GitRepo

    with GitRepo(root) as git:
        return pull_request_number(git.message(commit))


def _close_failed(table: KeyValueTable, lease: Lease, failed: Deployment, err: BaseException) -> str:
    """Record the failed deployment and release the lease, as far as the release table lets us.

    Returns what could not be done, to append to the error. When the release table itself is
    the backend that failed, neither is tried (each would wait out the same retry budget): the
    lease lock then expires by itself, ``lease_seconds`` after its last renewal.
    """
    expires = stamp(datetime.fromtimestamp(lease.expires_at, UTC))
    unreachable = (
        f"; the release table is unreachable: the failed deployment is not recorded and the lease "
        f"lock of {lease.env} expires at {expires}"
    )
    if _failed_table(err, table):
        return unreachable
    try:
        ReleaseTable(table, failed.env).save_deployment(failed)
    except TradaiError as save_err:
        if _failed_table(save_err, table):
            return unreachable
        note = f"; recording the failed deployment failed: {save_err}"
    else:
        note = ""
    try:
        lease.release()
    except TradaiError as release_err:
        note += f"; the lease lock was not released ({release_err}): it expires at {expires}"
    return note


def _failed_table(err: BaseException, table: KeyValueTable) -> bool:
    return isinstance(err, BackendError) and err.backend == table.name


def _workers(backends: EngineBackends, requested: int) -> int:
    """How many actions run at once: ``requested``, or 1 when the registry is an embedded SQLite file.

    Threads would be faster there too (measured 2.1x at 20 strategies x 5 profiles), but MLflow's
    SQLite store reads then writes in deferred transactions: two threads upgrading their locks at
    once get "database is locked" at once, not after the busy timeout, and in-process there is no
    HTTP retry to absorb it (a server on SQLite answers 500 and the client retries).
    """
    embedded = getattr(backends.registry, "tracking_uri", "").startswith("sqlite:")
    return 1 if embedded else max(1, requested)


def phases(actions: Sequence[Action]) -> list[list[tuple[int, Action]]]:
    """The plan's actions (with their plan index) cut into phases, in plan order.

    Actions of one phase touch different keys and may run at once; the plan lists a phase's actions
    together, so a phase is a run of consecutive actions of one ``phase``. Lifecycle changes appear
    twice (versions entering Production before the aliases move, versions leaving after).
    """
    cut: list[list[tuple[int, Action]]] = []
    for index, action in enumerate(actions):
        if cut and cut[-1][-1][1].phase == action.phase:
            cut[-1].append((index, action))
        else:
            cut.append([(index, action)])
    return cut


class _Schedule:
    """Runs a plan's actions phase by phase, ``workers`` at a time within a phase.

    Actions on one key run in plan order, one after another. Each action is journaled by the
    thread that ran it; the lease is renewed and ``after_action`` called by the calling thread,
    as each action completes. On the first failure nothing new starts, running actions finish
    (their statuses recorded as they end), and the first failure is raised.
    """

    def __init__(
        self,
        executor: Executor,
        statuses: list[dict[str, Any]],
        lease: Lease,
        after_action: AfterAction | None,
        workers: int,
    ) -> None:
        self.executor = executor
        self.statuses = statuses
        self.lease = lease
        self.after_action = after_action
        self.workers = workers

    def run(self) -> None:
        if self.workers == 1:
            for index, action in enumerate(self.executor.plan.actions):
                self._step(index, action)
                self._completed(index, action)
            return
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="apply")
        try:
            for phase in phases(self.executor.plan.actions):
                self._phase(pool, phase)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _phase(self, pool: ThreadPoolExecutor, phase: list[tuple[int, Action]]) -> None:
        lanes: dict[str, deque[tuple[int, Action]]] = {}
        for index, action in phase:
            lanes.setdefault(action.key, deque()).append((index, action))
        ready = [(lane[0][0], key) for key, lane in lanes.items()]  # lowest plan index first
        heapq.heapify(ready)
        running: dict[Future[None], tuple[str, int, Action]] = {}
        failure: BaseException | None = None
        while running or (ready and failure is None):
            while ready and failure is None and len(running) < self.workers:
                key = heapq.heappop(ready)[1]
                index, action = lanes[key].popleft()
                running[pool.submit(self._step, index, action)] = (key, index, action)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: running[f][1]):
                key, index, action = running.pop(future)
                error = future.exception()
                if error is None and failure is None:
                    try:
                        self._completed(index, action)
                    except BaseException as err:
                        error = err
                failure = failure or error
                if lanes[key] and failure is None:
                    heapq.heappush(ready, (lanes[key][0][0], key))
        if failure is not None:
            raise failure

    def _step(self, index: int, action: Action) -> None:
        """Run one action and journal it (done, or failed when the journal can still be written); one
        already done (a verification, before the record was written) is not run again."""
        if self.statuses[index]["status"] == "done":
            return
        executor = self.executor
        table, env = executor.backends.releases, executor.plan.env
        deployment_id = executor.deployment.deployment_id or ""
        try:
            executor.run(action)
        except BaseException as err:
            self.statuses[index]["status"] = "failed"
            if not _failed_table(err, table):
                with contextlib.suppress(TradaiError):  # the action's own error is the one to report
                    ReleaseTable(table, env).write_journal(deployment_id, index, action, "failed")
            raise
        self.statuses[index]["status"] = "done"
        ReleaseTable(table, env).write_journal(deployment_id, index, action, "done")

    def _completed(self, index: int, action: Action) -> None:
        self.lease.renew_if_due()
        if self.after_action is not None:
            self.after_action(index, action)


def check_descends(repo_root: Path, env: str, commit: str, applied: AppliedState | None) -> None:
    """Refuse ``commit`` unless it is the last applied commit or a descendant of it."""
    if applied is None or applied.commit == commit:
        return
    from tradai_release.repository.gitrepo import GitRepo

    with GitRepo(repo_root) as git:
        if not git.has_commit(applied.commit):
            detail = "cannot be checked: this clone lacks (fetch full history) the last applied commit"
            raise StaleCommit(env, commit, applied.commit, detail)
        descends = git.is_ancestor(applied.commit, commit)
    if not descends:
        raise StaleCommit(env, commit, applied.commit)


def _notify(settings: Settings, event: str, summary: str, details: Mapping[str, Any]) -> None:
    """Post to the webhook, if one is set; a failed notification never fails the apply."""
    from tradai_release.domain.notify import notify

    notify(settings, event, summary, dict(details))
