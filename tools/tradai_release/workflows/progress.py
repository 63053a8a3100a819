"""``progress``: move each strategy's release forward or back by commit, on its bots' recorded live results.

Reads the policy's waves and verification rules, the manifests of the working tree's commit and the
readings ``invoke observe`` recorded; per strategy :func:`~tradai_release.domain.progress.decide` says
hold, promote the challenger into the next wave, or roll back a breaching production pin. A move is a
commit on its own branch ``progress/<key>`` (the key names the move, so deciding it again on the same
evidence finds the branch and writes nothing), made through promote: its comparator, policy and override
rules, and its rollback rule (a version that was Production before). Every decision is recorded in the
release-state table, and one that differs from the strategy's last is notified (docs/architecture.md §18).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.clock import stamp, utc_now
from tradai_release.core.errors import InputError
from tradai_release.domain.progress import HOLD, PROMOTE, ROLLBACK, Cell, Decision, Facts, decide
from tradai_release.repository.policy import POLICY_PATH

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.domain.live import LiveResult
    from tradai_release.engine.context import ReleaseContext
    from tradai_release.registry.adapter import ModelRegistry, ModelVersionInfo
    from tradai_release.repository.tree import ReleaseTree

BRANCH_PREFIX = "progress/"


@dataclass(frozen=True)
class Outcome:
    """One strategy's decision and what this run did with it."""

    decision: Decision
    branch: str | None = None  # the move's branch (written now, or found from an earlier run)
    commit: str | None = None  # the commit written now (None: nothing written)
    proposed_before: bool = False  # the same move's branch already existed: nothing written
    merge: bool = False  # a rollback the policy merges without review
    notified: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.decision.to_dict(),
            "branch": self.branch,
            "commit": self.commit,
            "written": self.commit is not None,
            "proposed_before": self.proposed_before,
            "merge": self.merge,
            "notified": self.notified,
        }


@dataclass(frozen=True)
class ProgressReport:
    env: str
    decided_at: datetime
    outcomes: tuple[Outcome, ...]

    @property
    def written(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.commit is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "decided_at": stamp(self.decided_at),
            "decisions": [outcome.to_dict() for outcome in self.outcomes],
            "written": [outcome.branch for outcome in self.written],
        }


def progress(
    ctx: ReleaseContext,
    *,
    strategy: str | None = None,
    commit: bool = False,
    now: datetime | None = None,
    readings: Sequence[LiveResult] | None = None,
    registry: ModelRegistry | None = None,
    notify_decisions: bool = True,
) -> ProgressReport:
    """Decide for every strategy ``ctx``'s environment pins (or ``strategy``) and, with ``commit``, write
    each move on its branch (the checked-out branch stays as it is). ``readings`` and ``registry`` default
    to the environment's release-state table and registry (tests pass them)."""
    from tradai_release.engine.release_table import ReleaseTable
    from tradai_release.repository.tree import ReleaseTree

    moment = now or utc_now()
    tree = ReleaseTree.work(ctx.root)
    env = ctx.env.name
    policy = tree.policy()
    if env not in policy.waves:
        raise InputError(POLICY_PATH, f"waves.{env}", "not declared: progress moves a model wave by wave")
    rules = policy.verification[env]
    manifests = tree.manifests(env)
    names = sorted({name for manifest in manifests for name in manifest.strategies})
    if strategy is not None:
        if strategy not in names:
            raise InputError(f"releases/{env}", "--strategy", f"no profile of {env} pins {strategy}")
        names = [strategy]
    table = ReleaseTable(ctx.backends.releases, env)
    registry = registry or ctx.backends.registry
    every = list(readings) if readings is not None else table.live_results()
    outcomes: list[Outcome] = []
    for name in names:
        cells = cells_of(ctx.root, tree, env, name)
        models = sorted({m.strategies[name].model.name for m in manifests if name in m.strategies})
        facts = Facts(
            env=env, strategy=name, cells=cells, waves=policy.waves[env], rules=rules,
            readings=tuple(r for r in every if r.strategy == name), now=moment,
            expected_per_hour=expected_per_hour(registry.versions(models), models),
        )
        decision = decide(facts)
        outcome = _act(ctx, decision, commit=commit, merge=rules.merges_rollbacks, registry=registry)
        last = table.decisions(name)[:1]
        if not last or last[0].get("summary") != decision.summary:  # a new decision: recorded, said
            table.record_decision(decision, moment)
            if notify_decisions:
                outcome = replace(outcome, notified=_notify(ctx.settings, outcome))
        outcomes.append(outcome)
    return ProgressReport(env, moment, tuple(outcomes))


def cells_of(root: Path, tree: ReleaseTree, env: str, strategy: str) -> tuple[Cell, ...]:
    """The strategy's pins in each profile of ``env`` that runs it, with the version each ran before."""
    cells = []
    for manifest in tree.manifests(env):
        pin = manifest.strategies.get(strategy)
        if pin is None:
            continue
        previous = previous_production(root, manifest.path, strategy, pin.model.production)
        cells.append(Cell(manifest.profile, pin.model.production, pin.model.staging, previous))
    return tuple(cells)


def previous_production(root: Path, path: str, strategy: str, current: int, depth: int = 50) -> int | None:
    """The production version of ``strategy`` the manifest at ``path`` pinned before ``current`` (walking
    its git history back, at most ``depth`` commits), or None when it never pinned another."""
    import yaml

    from tradai_release.core.errors import GitError
    from tradai_release.repository.gitrepo import GitRepo

    with GitRepo(root) as git:
        try:
            commits = git.run("log", f"-{depth}", "--format=%H", "HEAD", "--", path).split()
        except GitError:
            return None
        for sha in commits:
            try:
                data = yaml.safe_load(git.show(sha, path)) or {}
            except (GitError, yaml.YAMLError):
                continue
            model = ((data.get("strategies") or {}).get(strategy) or {}).get("model") or {}
            pinned = model.get("production")
            if isinstance(pinned, int) and pinned != current:
                return pinned
    return None


def expected_per_hour(
    versions: Mapping[str, Sequence[ModelVersionInfo]], models: Sequence[str]
) -> dict[int, float]:
    """Per version: its held-out backtest's ``total_profit`` over the window's hours (the equity tag's
    start and end), what the production rule's band is measured from."""
    from tradai_release.core.clock import parse_stamp
    from tradai_release.core.equity import from_tags

    rates: dict[int, float] = {}
    for model in models:
        for info in versions.get(model, ()):
            curve = from_tags(info.tags)
            profit = info.metrics.get("total_profit")
            if curve is None or profit is None or not curve.start or not curve.end:
                continue
            try:
                hours = (parse_stamp(curve.end) - parse_stamp(curve.start)).total_seconds() / 3600
            except ValueError:
                continue
            if hours > 0:
                rates[info.version] = float(profit) / hours
    return rates


def _act(
    ctx: ReleaseContext, decision: Decision, *, commit: bool, merge: bool, registry: ModelRegistry
) -> Outcome:
    """Write the decision's commit on its branch (nothing for a hold, nor when the branch exists)."""
    from tradai_release.repository.gitrepo import GitRepo
    from tradai_release.workflows.promote import promote

    if decision.kind == HOLD:
        return Outcome(decision)
    branch = BRANCH_PREFIX + decision.key
    merges = decision.kind == ROLLBACK and merge
    with GitRepo(ctx.root) as git:
        if git.branch_exists(branch):
            return Outcome(decision, branch=branch, proposed_before=True, merge=merges)
    if not commit:
        return Outcome(decision, branch=branch, merge=merges)
    assert decision.version is not None
    written = promote(
        ctx.settings, ctx.env, list(decision.profiles), decision.strategy, decision.version,
        commit=True, repo=ctx.root, registry=registry, plan=False, branch=branch,
        note=evidence_note(decision), checkout=False,
    )
    if written.blocked:
        raise InputError("progress", decision.strategy, written.blocked)
    return Outcome(decision, branch=branch, commit=written.commit, merge=merges)


def evidence_note(decision: Decision) -> str:
    """What a progress commit's message adds to promote's: the decision, its evidence and the rule."""
    what = {PROMOTE: f"wave {decision.wave}", ROLLBACK: "rollback"}.get(decision.kind, decision.kind)
    lines = [f"progress ({what}): {decision.reason}", *(f"- {line}" for line in decision.evidence)]
    return "\n".join(lines) + "\n"


def _notify(settings: Settings, outcome: Outcome) -> bool:
    from tradai_release.domain.notify import notify

    decision = outcome.decision
    events = {HOLD: "progress_held", PROMOTE: "progress_promoted", ROLLBACK: "progress_rolled_back"}
    event = events[decision.kind]
    details: dict[str, Any] = {"environment": decision.env, "strategy": decision.strategy}
    if decision.profiles:
        details["profiles"] = ", ".join(f"p{p}" for p in decision.profiles)
    if outcome.branch:
        details["branch"] = outcome.branch
    if decision.evidence:
        details["evidence"] = "\n".join(decision.evidence)
    if decision.unanswered:
        details["not answering"] = "\n".join(decision.unanswered)
    return notify(settings, event, f"{decision.strategy} in {decision.env}: {decision.reason}", details)
