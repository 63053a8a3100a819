"""What the release board shows, read from git and each environment's live systems; no presentation.

Per environment the reads are those of one plan (desired state at the commit, live state, the plan
built from them), plus one query for the deployment records, one journal query for each of the
newest ``JOURNAL_DEPTH`` deployments and one query for the recorded drift checks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tradai_release.core.redact import scrub_text, secret_values
from tradai_release.engine.actions import (
    Action,
    ActivateConfig,
    ArchiveVersion,
    CreateConfigVersion,
    DeleteAlias,
    DeployBot,
    SetAlias,
    SetLifecycle,
    UploadConfig,
    VerifyArtifacts,
    WriteProfilePointer,
)
from tradai_release.registry.lifecycle import (
    ARCHIVED,
    LEFT_TAG,
    PRODUCTION,
    STAGING,
    current_lifecycle,
    production_alias,
    was_production,
)

if TYPE_CHECKING:
    from tradai_release.core.equity import EquityCurve
    from tradai_release.core.settings import Settings
    from tradai_release.domain.live import LiveResult
    from tradai_release.domain.progress import Decision
    from tradai_release.engine.context import ReleaseContext
    from tradai_release.engine.deployments import Deployment
    from tradai_release.engine.drift import Drift
    from tradai_release.engine.plan import Plan
    from tradai_release.engine.release_table import JournalEntry, RecordedCheck, ReleaseTable
    from tradai_release.engine.state import DesiredState, LiveState
    from tradai_release.registry.adapter import ModelVersionInfo

IN_SYNC = "in sync"
DRIFT = "drift"
PENDING = "pending"
BLOCKED = "policy blocked"
STATES: tuple[str, ...] = (IN_SYNC, PENDING, DRIFT, BLOCKED)  # the worst wins

JOURNAL_DEPTH = 20  # deployments whose journal is read for "what moved" (newest first)
_MOVES = (ActivateConfig, SetAlias, DeleteAlias, WriteProfilePointer, DeployBot)  # what moves a cell
MAX_CHALLENGERS = 3  # newest challengers drawn next to the champion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """One strategy in one profile of one environment: what git pins, what is live, and the verdict."""

    env: str
    profile: int
    strategy: str
    model: str
    version: int
    staging: int | None
    lifecycle: str
    tag: str
    sha256: str
    config_id: str | None
    config_hash: str
    since: str | None  # when the newest deployment that moved this cell finished
    state: str
    notes: tuple[str, ...] = ()  # why the state is what it is, one line each
    psi_level: str | None = None  # of the latest recorded drift check of the live version
    psi_max: float | None = None


@dataclass(frozen=True)
class Moved:
    """One deployment of one environment, for the timeline."""

    deployment: Deployment
    moved: tuple[str, ...]  # the reasons of the actions that moved something (from the journal)
    more: int  # moving actions not listed
    subject: str = ""  # the commit's subject line, when the repository has the commit


@dataclass(frozen=True)
class VersionRow:
    """One registered version of a strategy's model in one environment."""

    info: ModelVersionInfo
    lifecycle: str
    role: str  # champion / challenger / previous champion / ""
    verdicts: tuple[tuple[int, str], ...]  # (champion version, comparator decision) per champion
    equity: EquityCurve | None


@dataclass(frozen=True)
class LiveVerification:
    """Where a strategy's new version stands in an environment with waves: the waves, how many run it,
    what ``progress`` would decide now, and the live readings of the bots it is judged on (the challenger
    and the champion of one profile) with the backtest's expected profit per hour."""

    waves: tuple[tuple[int, ...], ...]
    candidate: int | None
    reached: int
    decision: Decision
    profile: int | None  # the profile whose bots the chart shows
    challenger: tuple[LiveResult, ...] = ()
    champion: tuple[LiveResult, ...] = ()
    expected_per_hour: float | None = None
    last_decided_at: str | None = None  # the newest recorded decision of progress

    @property
    def state(self) -> str:
        """``challenger`` (not yet in wave 1), ``wave K of N``, or ``done``."""
        if self.candidate is None:
            return "done"
        return "challenger" if self.reached == 0 else f"wave {self.reached} of {len(self.waves)}"


@dataclass(frozen=True)
class StrategyEnv:
    """A strategy as one environment runs and registers it."""

    env: str
    model: str
    champions: Mapping[int, int]  # profile -> live (else pinned) production version
    versions: tuple[VersionRow, ...]  # newest first
    drift: tuple[RecordedCheck, ...] = ()  # recorded checks, newest first
    verification: LiveVerification | None = None  # in an environment whose policy declares waves

    @property
    def charted(self) -> list[VersionRow]:
        """The versions on the equity chart: champions, challengers (newest first), the previous champion."""
        order = ("champion", "challenger", "previous champion")
        return sorted((row for row in self.versions if row.role), key=lambda row: order.index(row.role))


@dataclass(frozen=True)
class EnvBoard:
    env: str
    commit: str
    applied_commit: str | None
    cells: tuple[Cell, ...]
    deployments: tuple[Moved, ...]
    drift: tuple[Drift, ...]
    actions: int
    error: str | None = None


@dataclass
class Board:
    """Everything the site shows: per environment its board and timeline, per strategy its versions."""

    generated_at: str
    repository_url: str | None
    envs: list[EnvBoard] = field(default_factory=list)
    strategies: dict[str, list[StrategyEnv]] = field(default_factory=dict)


def read_board(settings: Settings, envs: Iterable[str] | None = None, commit: str = "HEAD") -> Board:
    """The board of ``envs`` (default: every declared environment) at ``commit`` of ``settings.repo``."""
    from tradai_release.core.clock import stamp
    from tradai_release.core.errors import TradaiError
    from tradai_release.engine.context import ReleaseContext

    board = Board(generated_at=stamp(), repository_url=settings.repository_url)
    # The last of the promotion order (production) first: what trades is what a reader looks for first.
    for context in reversed(ReleaseContext.open_all(settings, list(envs) if envs else None, commit=commit)):
        try:
            env_board, strategies = _read_env(context)
        except TradaiError as err:
            # One environment that cannot be planned (a backend down, a pin the registry lacks) is
            # shown as such, the others are still worth publishing. The page is public: it names the
            # error's class only; the details, scrubbed, go to the job's log.
            detail = scrub_text(str(err), secret_values(settings))
            log.warning("report: cannot read %s: %s", context.name, detail)
            error = type(err).__name__
            env_board, strategies = EnvBoard(context.name, "", None, (), (), (), 0, error=error), {}
        board.envs.append(env_board)
        for name, entry in strategies.items():
            board.strategies.setdefault(name, []).append(entry)
    board.strategies = dict(sorted(board.strategies.items()))
    subjects = _subjects(settings, {m.deployment.commit for env in board.envs for m in env.deployments})
    for index, env in enumerate(board.envs):
        moved = tuple(replace(m, subject=subjects.get(m.deployment.commit, "")) for m in env.deployments)
        board.envs[index] = replace(env, deployments=moved)
    return board


def _subjects(settings: Settings, commits: Iterable[str]) -> dict[str, str]:
    """Subject lines of ``commits`` in one git call; none when the clone lacks one (a shallow CI clone)."""
    from tradai_release.core.errors import TradaiError
    from tradai_release.repository.gitrepo import GitRepo

    wanted = sorted(commits)
    if not wanted:
        return {}
    try:
        with GitRepo(settings.repo) as git:
            out = git.run("log", "--no-walk=unsorted", "--format=%H %s", *wanted)
    except TradaiError:
        return {}
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def _read_env(context: ReleaseContext) -> tuple[EnvBoard, dict[str, StrategyEnv]]:
    from tradai_release.engine.plan import build_plan
    from tradai_release.engine.release_table import ReleaseTable
    from tradai_release.engine.state import read_live

    desired, backends = context.desired, context.backends
    live = read_live(backends, desired)
    plan = build_plan(desired, live)
    table = ReleaseTable(backends.releases, context.name)
    deployments = table.deployments()
    moved = tuple(
        _moved(deployment, table.journal(str(deployment.deployment_id)))
        if index < JOURNAL_DEPTH
        else Moved(deployment, (), 0)
        for index, deployment in enumerate(deployments)
    )
    checks = table.recorded_checks()
    cells = _cells(desired, live, plan, deployments, checks, gated=context.env.gated)
    strategies = _strategies(desired, live, checks)
    if context.name in desired.policy.waves:
        for name, verification in _verifications(context, table, live, strategies).items():
            strategies[name] = replace(strategies[name], verification=verification)
    env_board = EnvBoard(
        env=context.name,
        commit=desired.commit,
        applied_commit=plan.applied_commit,
        cells=tuple(cells),
        deployments=moved,
        drift=plan.drift,
        actions=len(plan.actions),
    )
    return env_board, strategies


def _moved(deployment: Deployment, journal: Sequence[JournalEntry]) -> Moved:
    """The reasons of the journaled actions that moved a pin (config, alias, pointer, bot)."""
    reasons = []
    for entry in journal:
        action = entry.action
        if entry.status != "done":
            continue
        match action:
            case SetAlias() | DeleteAlias():  # the reason names the profile, not the model
                reasons.append(f"{action.target}: {action.reason}")
            case ActivateConfig() | WriteProfilePointer() | DeployBot():
                reasons.append(action.reason or action.kind)
    shown = 12
    return Moved(deployment, tuple(reasons[:shown]), max(0, len(reasons) - shown))


# --- the board's cells ------------------------------------------------------------------------------------


def _cells(
    desired: DesiredState,
    live: LiveState,
    plan: Plan,
    deployments: Sequence[Deployment],
    checks: Mapping[str, Sequence[RecordedCheck]],
    *,
    gated: bool,
) -> list[Cell]:
    cells = []
    for manifest in desired.manifests:
        for name, pin in sorted(manifest.strategies.items()):
            model, version = pin.model.name, pin.model.production
            info = next((v for v in live.versions.get(model, ()) if v.version == version), None)
            config = desired.configs[name]
            active = live.active.get(name)
            stored = active if active is not None and active.config_hash == config.config_hash else None
            stored = stored or live.by_hash.get(name)
            profile = manifest.profile
            notes: list[str] = []
            state = IN_SYNC
            drifted = [d for d in plan.drift if _drift_touches(d, desired.env, profile, name, model, version)]
            pending = [a for a in plan.actions if _action_touches(a, profile, name, model, version)]
            overridden = pin.model.override is not None
            blocked = [
                c for c in plan.model_changes
                if c.model == model and c.profile == profile and c.blocked(gated=gated, overridden=overridden)
            ]
            if pending:
                state = PENDING
                kinds = sorted({a.kind for a in pending})
                notes.append(f"{len(pending)} pending action(s): {', '.join(kinds)}")
            if drifted:
                state = DRIFT
                notes += [f"drift: {d.detail}" for d in drifted]
            if blocked:
                state = BLOCKED
                notes += [
                    f"comparator: {c.comparison.decision} for v{c.challenger} vs v{c.champion}, no override"
                    for c in blocked
                ]
            recorded = checks.get(name, ())
            latest = next((check for check in recorded if check.version == version), None)
            cells.append(
                Cell(
                    env=desired.env,
                    profile=profile,
                    strategy=name,
                    model=model,
                    version=version,
                    staging=pin.model.staging,
                    lifecycle=current_lifecycle(info) if info is not None else "not registered",
                    tag=manifest.artifacts.tag,
                    sha256=manifest.artifacts.sha256,
                    config_id=stored.config_id if stored is not None else None,
                    config_hash=config.config_hash,
                    since=_since(deployments, desired.env, profile, name, model),
                    state=state,
                    notes=tuple(notes),
                    psi_level=latest.level if latest is not None else None,
                    psi_max=latest.max_psi if latest is not None else None,
                )
            )
    return cells


def _action_touches(action: Action, profile: int, strategy: str, model: str, version: int) -> bool:
    match action:
        case UploadConfig() | CreateConfigVersion() | ActivateConfig():
            return action.strategy == strategy
        case SetAlias() | DeleteAlias():
            return action.model == model and action.profile == profile
        case WriteProfilePointer():
            return action.profile == profile
        case VerifyArtifacts():
            return profile in action.profiles
        case DeployBot():
            return action.profile == profile and action.strategy == strategy
        case SetLifecycle() | ArchiveVersion():
            return action.model == model and action.version == version
    return False


def _drift_touches(entry: Drift, env: str, profile: int, strategy: str, model: str, version: int) -> bool:
    if entry.kind == "config":
        return entry.target == strategy
    if entry.kind == "alias":
        return entry.target in (f"{model}@p{profile}", f"{model}@p{profile}-staging")
    if entry.kind in ("lifecycle", "stage"):
        return entry.target == f"{model}/v{version}"
    if entry.kind == "pointer":
        return entry.target == f"profile-{profile}"
    if entry.kind == "deployment":
        return entry.target == f"{strategy}-p{profile}"
    return False


def _since(
    deployments: Sequence[Deployment], env: str, profile: int, strategy: str, model: str
) -> str | None:
    """When the newest deployment that moved this cell's alias, pointer, config or bot finished."""
    targets = {f"{model}@{production_alias(profile)}", f"{env}/profile-{profile}", strategy,
               f"{env}/{strategy}-p{profile}"}
    for deployment in deployments:  # newest first
        if deployment.outcome not in ("succeeded", "failed"):
            continue
        for action, status in deployment.steps():
            moved = status == "done" and isinstance(action, _MOVES)
            if moved and action.target in targets:
                return deployment.finished_at or deployment.started_at
    return None


# --- the strategy pages -----------------------------------------------------------------------------------


def _strategies(
    desired: DesiredState, live: LiveState, checks: Mapping[str, Sequence[RecordedCheck]]
) -> dict[str, StrategyEnv]:
    from tradai_release.core.equity import from_tags
    from tradai_release.domain.gate import by_version, champion, judge
    from tradai_release.registry.comparator import ModelComparator

    comparator = ModelComparator()
    pins: dict[str, tuple[str, dict[int, int]]] = {}
    for manifest in desired.manifests:
        for name, pin in manifest.strategies.items():
            pins.setdefault(name, (pin.model.name, {}))[1][manifest.profile] = pin.model.production
    result = {}
    for name, (model, pinned) in sorted(pins.items()):
        listed = list(live.versions.get(model, ()))
        versions = by_version(listed)
        champions: dict[int, int] = {}
        for profile, version in sorted(pinned.items()):
            current = champion(profile, versions, version)
            champions[profile] = current.version if current is not None else version
        champion_versions = sorted(set(champions.values()))
        newest_champion = max(champion_versions, default=0)
        challengers = [
            info.version for info in sorted(listed, key=lambda i: -i.version)
            if info.version > newest_champion and current_lifecycle(info) != ARCHIVED
        ][:MAX_CHALLENGERS]
        previous = _previous_champion(listed, champion_versions)
        rows = []
        for info in sorted(listed, key=lambda i: -i.version):
            if info.version in champion_versions:
                role = "champion"
            elif info.version in challengers:
                role = "challenger"
            elif previous is not None and info.version == previous:
                role = "previous champion"
            else:
                role = ""
            # The comparator's view against each champion, also of a version that was Production before.
            verdicts: dict[int, str] = {}
            for profile, number in sorted(champions.items()):
                if number != info.version and number not in verdicts:
                    verdict = judge(profile, model, versions.get(number), info, comparator, rollbacks=False)
                    verdicts[number] = verdict.decision
            rows.append(VersionRow(
                info, current_lifecycle(info), role, tuple(sorted(verdicts.items())), from_tags(info.tags)
            ))
        result[name] = StrategyEnv(desired.env, model, champions, tuple(rows), tuple(checks.get(name, ())))
    return result


def _verifications(
    context: ReleaseContext, table: ReleaseTable, live: LiveState, strategies: Mapping[str, StrategyEnv]
) -> dict[str, LiveVerification]:
    """Per strategy: progress's judgement now, on the recorded readings (pure: nothing is written)."""
    from tradai_release.core.clock import utc_now
    from tradai_release.domain.live import CHALLENGER, PRODUCTION
    from tradai_release.domain.progress import Facts, decide, wave_reached
    from tradai_release.repository.tree import ReleaseTree
    from tradai_release.workflows.progress import cells_of, expected_per_hour

    policy = context.desired.policy
    env = context.name
    readings = table.live_results()
    decided: dict[str, str] = {}
    for item in table.decisions():
        decided.setdefault(str(item.get("strategy")), str(item.get("decided_at") or ""))
    tree = ReleaseTree.work(context.root)
    now = utc_now()
    found: dict[str, LiveVerification] = {}
    for name, entry in strategies.items():
        cells = cells_of(context.root, tree, env, name)
        facts = Facts(env, name, cells, policy.waves[env], policy.verification[env],
                      tuple(r for r in readings if r.strategy == name), now,
                      expected_per_hour(live.versions, [entry.model]))
        candidate, reached = wave_reached(facts)
        staged = [cell.profile for cell in cells if candidate is not None and cell.staging == candidate]
        moved = [cell.profile for cell in cells if candidate is not None and cell.production == candidate]
        profile = next(iter(staged or moved), None)
        mine = [r for r in facts.readings if r.profile == profile]
        found[name] = LiveVerification(
            waves=policy.waves[env], candidate=candidate, reached=reached, decision=decide(facts),
            profile=profile,
            challenger=tuple(r for r in mine if r.role == (CHALLENGER if staged else PRODUCTION)),
            champion=tuple(r for r in mine if r.role == PRODUCTION) if staged else (),
            expected_per_hour=facts.expected_per_hour.get(candidate) if candidate is not None else None,
            last_decided_at=decided.get(name),
        )
    return found


def _previous_champion(listed: Sequence[ModelVersionInfo], champions: Sequence[int]) -> int | None:
    """The version most recently retired from Production (by its leave time, then number)."""
    retired = [
        info for info in listed
        if was_production(info) and info.version not in champions
        and current_lifecycle(info) not in (PRODUCTION, STAGING)
    ]
    if not retired:
        return None
    return max(retired, key=lambda info: (info.tags.get(LEFT_TAG) or "", info.version)).version
