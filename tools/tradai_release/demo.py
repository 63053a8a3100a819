"""The whole release loop on the embedded default, in a scratch repository (``invoke demo``).

bootstrap -> a quant tweaks PascalStrategy -> a challenger is trained once, pushed and registered in
dev -> promoted in dev, then carried with ``promote --from`` to staging and to prod (each merged and
applied), where it runs as a dry-run challenger beside the champion -> progress promotes it into wave
1 -> full validation and the Markdown plan (the PR comment) -> merge -> apply -> the bot trades v2 ->
a breach is rolled back by progress -> the bot restarts on v1 -> re-apply is a no-op.
Every step uses the same library calls as the invoke tasks; nothing is faked.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.clock import utc_now
from tradai_release.core.errors import TradaiError
from tradai_release.engine.context import ReleaseContext
from tradai_release.repository.bots import CHALLENGER_ROLE as CHALLENGER
from tradai_release.repository.bots import PRODUCTION_ROLE
from tradai_release.repository.environments import environment
from tradai_release.repository.gitrepo import GitRepo
from tradai_release.repository.policy import POLICY_PATH
from tradai_release.repository.tree import ReleaseTree

if TYPE_CHECKING:
    from tradai_release.bot.rest import BotReading
    from tradai_release.bot.standin import ExchangeStandIn
    from tradai_release.core.settings import Settings
    from tradai_release.domain.live import LiveResult
    from tradai_release.engine.plan import Plan
    from tradai_release.repository.bots import BotKey
    from tradai_release.repository.environments import Environment
    from tradai_release.workflows.validate import ValidationReport

DEMO_ENV = "prod"
DEMO_PROFILE = 3
DEMO_STRATEGY = "PascalStrategy"
# The quant's tweak: a lower bar for a long signal and a 12 h position horizon. Freqtrade's held-out
# backtest of the challenger beats v1 on every metric of the comparator (profit 0.130 vs 0.098,
# Sharpe 5.5 vs 4.3, drawdown 0.024 vs 0.026, win rate 0.57 vs 0.53, 37 trades vs 30).
DEMO_TWEAK = {"signal": {"horizon": 6, "threshold": 0.001}, "position": {"horizon": 12}}
COPIED = ("strategies", "releases", ".gitignore")
# The demo's bot: how long it may take to fill an entry (about 6 s here), to stop after SIGTERM, and how
# far above the entry threshold the replayed hour's probabilities are.
BOT_WAIT_SECONDS = 60.0
BOT_STOP_SECONDS = 20.0
ENTRY_MARGIN = 0.02
# The caller's settings and exchange keys stay out of the bot's environment: it runs the embedded default.
SCRUBBED = ("TRADAI_", "FREQTRADE__", "AWS_")
DEMO_API_PASSWORD = secrets.token_urlsafe(16)  # the demo bots' REST API password (this process's own)
DEMO_WAVES = "[[3], [1, 2], [4, 5]]"
# Seconds of dry run cannot meet hours of soak: the demo's challenger needs no minimum run or trades, only
# to trade no worse than the champion over the same window; production keeps a 10 % drawdown limit, and a
# breach's rollback is merged at once.
DEMO_POLICY = f"""environments: [dev, staging, {DEMO_ENV}]
waves:
  {DEMO_ENV}: {DEMO_WAVES}
verification:
  {DEMO_ENV}:
    soak: 24h
    rollback: merge
    challenger: {{min_hours: 0, min_trades: 0, profit: 0.02, max_drawdown: 0.05}}
    production: {{max_drawdown: 0.10, profit: 0.05}}
"""


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo and what it produced."""

    name: str
    detail: str
    seconds: float


@dataclass
class DemoReport:
    """Everything the demo did, for the summary (and ``--json``)."""

    workdir: Path
    steps: list[DemoStep] = field(default_factory=list)
    plan_markdown: Path | None = None
    board: Path | None = None  # the release board's index.html
    lifecycle: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    bots: list[dict[str, Any]] = field(default_factory=list)  # the bots' ready records, in order
    observed: list[dict[str, Any]] = field(default_factory=list)  # observe's readings of the answering bots
    trades_db: Path | None = None  # the bot's Freqtrade trade database (SQLite)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "steps": [
                {"name": s.name, "detail": s.detail, "seconds": round(s.seconds, 2)} for s in self.steps
            ],
            "plan_markdown": str(self.plan_markdown) if self.plan_markdown else None,
            "board": str(self.board) if self.board else None,
            "lifecycle": self.lifecycle,
            "deployments": self.deployments,
            "bots": self.bots,
            "observed": self.observed,
            "trades_db": str(self.trades_db) if self.trades_db else None,
        }


Echo = Callable[[DemoStep], None]
Comment = Callable[["Plan", "ValidationReport"], str]
"""Renders the pull request's plan comment (the presentation layer passes its Markdown renderer)."""
Board = Callable[["Settings", Path], Path]
"""Writes the release board of the scratch state to a directory; returns its index page (the report)."""


def embedded_settings(repo: Path, state_dir: Path) -> Settings:
    """Settings for ``repo`` on the embedded default, whatever the caller's environment says."""
    from pydantic import SecretStr

    from tradai_release.core.settings import Settings

    defaults = {
        name: info.default
        for name, info in Settings.model_fields.items()
        if name.endswith("_uri") or name == "mlflow_artifact_root"
    }
    return Settings(
        repo=repo,
        state_dir=state_dir,
        models_dir=state_dir / "models",
        envs={},
        webhook_url=None,
        aws_endpoint_url=None,
        deploy_target="env-file",
        bot_env_dir=Settings.model_fields["bot_env_dir"].default,
        actor="demo",
        bot_api_password=SecretStr(DEMO_API_PASSWORD),  # observe reads the demo's bots with it
        **defaults,
    )


def run_demo(
    source: Path,
    workdir: Path | None = None,
    echo: Echo | None = None,
    comment: Comment | None = None,
    board: Board | None = None,
) -> DemoReport:
    """Run the loop in ``workdir`` (a new temporary directory by default); returns the report.

    ``echo`` is told each step as it ends; ``comment`` renders the pull request's plan comment,
    written to ``plan-<env>.md`` in ``workdir`` (no file without it); ``board`` writes the release
    board of the final state to ``workdir/board`` (after a recorded drift check of prod).
    """
    workdir = Path(workdir or tempfile.mkdtemp(prefix="tradai-demo-")).resolve()
    repo = workdir / "repo"
    if repo.exists():
        raise TradaiError(f"demo: {repo} already exists; pass an empty --workdir")
    report = DemoReport(workdir)
    settings = embedded_settings(repo, workdir / "state")

    @contextmanager
    def step(name: str) -> Iterator[list[str]]:
        started = time.perf_counter()
        detail: list[str] = []
        yield detail
        done = DemoStep(name, "; ".join(detail), time.perf_counter() - started)
        report.steps.append(done)
        if echo is not None:
            echo(done)

    with step("scratch repository") as note:
        git = _make_repo(source, repo)
        tree = ReleaseTree.work(repo)
        counts = f"{len(tree.strategy_names())} strategies, {len(tree.manifest_keys())} manifests"
        note.append(f"{repo} with {counts}")

    with step("bootstrap: train, push, register, pin, apply dev/staging/prod") as note:
        from tradai_release.workflows.bootstrap import bootstrap

        booted = bootstrap(settings, commit=True)
        note.append(f"hub tag {booted.tag} sha256 {booted.sha256[:12]}")
        note.append("version 1 of each strategy registered in every env")
        note.append(", ".join(f"{env} {applied['outcome']}" for env, applied in booted.applied.items()))

    with step(f"a quant tweaks {DEMO_STRATEGY} and merges it") as note:
        path = repo / "strategies" / DEMO_STRATEGY / "ml_config.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        config.update(DEMO_TWEAK)
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        git.run("commit", "-q", "-am", f"{DEMO_STRATEGY}: 0.1 % signal threshold, 12h position horizon")
        note.append(", ".join(f"{part} {value}" for part, value in DEMO_TWEAK.items()))

    prod = environment(settings, DEMO_ENV)  # the scratch repository declares it: parsed once
    dev, before = environment(settings, "dev"), environment(settings, "staging")
    with step("challenger: trained once, pushed to the hub, registered in dev") as note:
        version, tag = _challenger(settings, dev, git, booted.tag, booted.sha256)
        note.append(f"{DEMO_STRATEGY} version {version} in dev, hub tag {tag}")

    with step(f"dev: promote v{version} in profile {DEMO_PROFILE}, merge, apply") as note:
        from tradai_release.workflows.promote import promote

        moved = promote(settings, dev, DEMO_PROFILE, DEMO_STRATEGY, version, commit=True, plan=False)
        note.append(_merged_and_applied(settings, git, moved.branch, dev))

    with step("staging: promote --from dev (the same artifact), merge, apply") as note:
        moved = promote(settings, before, DEMO_PROFILE, DEMO_STRATEGY, version, commit=True, plan=False,
                        source=dev)
        assert moved.carried is not None
        note.append(f"dev v{version} is staging v{moved.carried.version} (promoted_from dev:v{version})")
        note.append(_merged_and_applied(settings, git, moved.branch, before))
        version = moved.carried.version

    staging = f"policy: waves and live verification for {DEMO_ENV}; --from staging as the challenger"
    with step(staging) as note:
        (repo / POLICY_PATH).write_text(DEMO_POLICY, encoding="utf-8")
        git.run("add", POLICY_PATH)
        git.run("commit", "-q", "-m", f"{DEMO_ENV}: waves and live verification rules")
        staged = promote(settings, prod, DEMO_PROFILE, DEMO_STRATEGY, version, stage="Staging", commit=True,
                         plan=False, source=before)
        assert staged.carried is not None
        note.append(f"staging v{version} is {DEMO_ENV} v{staged.carried.version}, same files "
                    f"({staged.carried.content_sha256[:12]})")
        version = staged.carried.version
        note.append(f"waves {DEMO_WAVES}; " + _merged_and_applied(settings, git, staged.branch, prod))

    exchange = _exchange_stand_in(settings, repo, workdir / "replay" / "models", version)
    side_by_side = f"champion v1 and challenger v{version} trade side by side (dry run); observe reads both"
    with step(side_by_side) as note:
        from tradai_release.workflows.observe import observe

        with exchange, _bots(settings, workdir, exchange, [_bot(), _bot(CHALLENGER)]) as running:
            observed = observe(ReleaseContext.open(settings, DEMO_ENV), read=_until_answered)
        for record in running:
            report.bots.append(record)
        for result in observed.results:
            if result.strategy == DEMO_STRATEGY and result.profile == DEMO_PROFILE:
                note.append(f"{result.bot}: runs v{result.model_version} (files {result.files_sha256[:12]}), "
                            f"{result.open_trades} open, {result.trades} closed")
        report.observed = [r.to_item() | {"bot": r.bot} for r in observed.results if r.answered]

    with step("progress: the verified challenger moves into wave 1 (a commit on its own branch)") as note:
        from tradai_release.workflows.progress import progress

        decided = progress(ReleaseContext.open(settings, DEMO_ENV), strategy=DEMO_STRATEGY, commit=True)
        (outcome,) = decided.outcomes
        if outcome.decision.kind != "promote" or outcome.branch is None:
            raise TradaiError(f"demo: progress did not promote: {outcome.decision.reason}")
        branch = outcome.branch
        note.append(f"{outcome.decision.reason}; branch {branch}")
        note.extend(outcome.decision.evidence)

    with step("CI on the pull request: full validation and the Markdown plan") as note:
        from tradai_release.engine.plan import plan_env
        from tradai_release.workflows.validate import validate_repository

        git.run("checkout", "-q", branch)
        validation = validate_repository(repo, offline=False, base="main", settings=settings)
        git.run("checkout", "-q", "main")
        if not validation.ok:
            raise TradaiError(f"demo: validation failed: {validation.problems[0]}")
        plan = plan_env(ReleaseContext.open(settings, DEMO_ENV, commit=branch))
        if comment is not None:
            report.plan_markdown = workdir / f"plan-{DEMO_ENV}.md"
            report.plan_markdown.write_text(comment(plan, validation), encoding="utf-8")
        where = f"comment in {report.plan_markdown}" if report.plan_markdown else "no comment rendered"
        note.append(f"validation ok; {len(plan.actions)} planned actions; {where}")

    with step("merge the pull request, apply prod") as note:
        from tradai_release.engine.apply import apply_env

        git.run("merge", "-q", "--no-ff", branch, "-m", f"Merge {branch}")
        merged = apply_env(ReleaseContext.open(settings, DEMO_ENV, commit="HEAD"), actor="demo")
        note.append(f"apply {merged.outcome}: {len(merged.actions)} actions")
        note.append(_pins(settings, prod, version))

    with step(f"the bot of {DEMO_STRATEGY} profile {DEMO_PROFILE} trades v{version} (dry run)") as note:
        with exchange:
            report.bots.append(_trade(settings, workdir, exchange, note, fills=True))
        report.trades_db = Path(report.bots[-1]["trades_db"])

    with step("a breach: progress rolls the pin back by commit, merged at once (policy), applied") as note:
        from tradai_release.engine.release_table import ReleaseTable
        from tradai_release.workflows.progress import progress

        # Simulated: the reading a bad day would leave (the loopback market is frozen at one hour).
        breach = _simulated_breach(settings, version)
        ReleaseTable(ReleaseContext.open(settings, DEMO_ENV).backends.releases, DEMO_ENV).record_live(breach)
        note.append(f"simulated reading: {breach.bot} v{version} max_drawdown {breach.max_drawdown:.2f}")
        decided = progress(ReleaseContext.open(settings, DEMO_ENV), strategy=DEMO_STRATEGY, commit=True)
        (outcome,) = decided.outcomes
        if outcome.decision.kind != "rollback" or outcome.branch is None or not outcome.merge:
            raise TradaiError(f"demo: progress did not roll back: {outcome.decision.reason}")
        git.run("merge", "-q", "--no-ff", outcome.branch, "-m", f"Merge {outcome.branch}")
        reverted = apply_env(ReleaseContext.open(settings, DEMO_ENV, commit="HEAD"), actor="demo")
        note.append(f"{outcome.decision.reason}; {outcome.branch} merged")
        note.append(f"apply {reverted.outcome}: {len(reverted.actions)} actions")
        note.append(_pins(settings, prod, version))

    restart = f"the bot of {DEMO_STRATEGY} profile {DEMO_PROFILE} restarts on the champion"
    with step(restart) as note, exchange:
        report.bots.append(_trade(settings, workdir, exchange, note, fills=False))

    with step("apply again: nothing to do, nothing written") as note:
        again = apply_env(ReleaseContext.open(settings, DEMO_ENV, commit="HEAD"), actor="demo")
        note.append(f"apply {again.outcome}: {len(again.actions)} actions")

    if board is not None:
        with step("drift check of prod (recorded), the release board") as note:
            from tradai_release.workflows.drift import check_drift, record_checks

            checked = check_drift(settings, prod, state=False)
            note.append(f"{record_checks(settings, checked)} strategies' PSI recorded, level {checked.level}")
            report.board = board(settings, workdir / "board")
            note.append(f"board: {report.board}")

    from tradai_release.engine.deployments import list_deployments
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.registry.views import model_versions

    registry = MlflowRegistry.for_env(prod, settings)
    views = model_versions(registry, DEMO_STRATEGY, DEMO_ENV)
    report.lifecycle[DEMO_STRATEGY] = [view.to_dict() for view in views]
    report.deployments = [
        {**deployment.to_dict(), "actor": deployment.actor, "started_at": deployment.started_at}
        for deployment in list_deployments(settings, prod)
    ]
    return report


def _make_repo(source: Path, repo: Path) -> GitRepo:
    repo.mkdir(parents=True)
    for name in COPIED:
        origin = source / name
        if origin.is_dir():
            shutil.copytree(origin, repo / name)
        elif origin.is_file():
            shutil.copy2(origin, repo / name)
    git = GitRepo.init(repo, "main")
    git.run("config", "user.name", "tradai demo")
    git.run("config", "user.email", "demo@tradai.invalid")
    git.run("add", "-A")
    git.run("commit", "-q", "-m", "Release repository: strategies and manifests")
    return git


def _merged_and_applied(settings: Settings, git: GitRepo, branch: str | None, env: Environment) -> str:
    """Merge a promotion's branch into main, apply ``env``; what apply did, and the bots it deployed."""
    from tradai_release.engine.apply import apply_env

    assert branch is not None
    git.run("checkout", "-q", "main")
    git.run("merge", "-q", "--no-ff", branch, "-m", f"Merge {branch}")
    applied = apply_env(ReleaseContext.open(settings, env.name, commit="HEAD"), actor="demo")
    deployed = [str(a["target"]) for a in applied.actions if a.get("kind") == "deploy_bot"]
    return f"apply {env.name} {applied.outcome}: deployed {', '.join(deployed) or 'nothing'}"


def _challenger(
    settings: Settings, first: Environment, git: GitRepo, source_tag: str, source_sha: str
) -> tuple[int, str]:
    """Train the tweaked strategy once, compose a hub tag from the live one, register it in ``first``."""
    from tradai_release.hub import ModelHub
    from tradai_release.registry.registrar import register_training
    from tradai_release.training import train_strategy

    repo = git.root
    head = git.head()
    hub = ModelHub.from_settings(settings)
    tag = f"v{utc_now():%Y%m%d}-p{DEMO_PROFILE}"
    with tempfile.TemporaryDirectory(prefix="challenger-", dir=settings.state_dir) as scratch:
        result = train_strategy(repo, DEMO_STRATEGY, Path(scratch), git_commit=head)
        hub.compose(
            Path(scratch),
            [DEMO_STRATEGY],
            source=source_tag,
            source_sha256=source_sha,
            tag=tag,
            message=f"{DEMO_STRATEGY} challenger for profile {DEMO_PROFILE}",
            git_commit=head,
        )
        config = ReleaseTree.work(repo).tradai(DEMO_STRATEGY).data
        registered = register_training(settings, result, r2_tag=tag, envs=[first], config=config)
    return int(registered[first.name].version), tag


def _exchange_stand_in(settings: Settings, repo: Path, models_dir: Path, version: int) -> ExchangeStandIn:
    """The loopback exchange the demo's bot trades on: the strategy's candles, frozen at an hour the
    challenger goes long (the last such hour in the data, held out from its training), so a dry-run
    entry fills at once (Pascal keeps the default entry threshold).

    The hour is found with the challenger's own models, pulled the way the bot pulls them into a models
    dir of the demo's own (the bot still pulls its copy); the bot decides again by itself on the candles
    the stand-in serves.
    """
    from tradai_release.bot.models import ENTRY_THRESHOLD, ReleasedModels
    from tradai_release.bot.pairs import parse_pairs
    from tradai_release.bot.standin import ExchangeStandIn
    from tradai_release.training.features import load_candles
    from tradai_release.training.train import data_file

    _start_bot(settings, models_dir)  # v{version}'s files, verified, into the bot's own models dir
    csv_path, display = data_file(repo, DEMO_STRATEGY)
    candles = load_candles(csv_path, display).frame
    models = ReleasedModels.load(models_dir / DEMO_STRATEGY)
    signal, position = models.probabilities(candles, time="timestamp")
    # A margin above the threshold: the bot sees the last 500 candles rather than the whole file, and its
    # EMAs start there (the features differ in the fourth decimal).
    bar = ENTRY_THRESHOLD + ENTRY_MARGIN
    long_rows = [row for row in range(len(candles)) if signal[row] > bar and position[row] > bar]
    if not long_rows:
        raise TradaiError(f"demo: {DEMO_STRATEGY} v{version} is never long on {display}: no hour to replay")
    symbols = ReleaseTree.work(repo).tradai(DEMO_STRATEGY).data["strategy_service"]["defaults"]["symbols"]
    pair = parse_pairs(symbols, where=display, field="symbols").of_data_file(csv_path.stem, where=display)
    return ExchangeStandIn({pair.symbol: csv_path}, "1h", until=long_rows[-1])


def _bot(role: str = PRODUCTION_ROLE) -> BotKey:
    from tradai_release.repository.bots import BotKey

    return BotKey(DEMO_ENV, DEMO_PROFILE, DEMO_STRATEGY, role)


def _launch(settings: Settings, workdir: Path, exchange: ExchangeStandIn, key: BotKey) -> tuple[Any, Path]:
    """The bot's container command, as its host runs it: the runtime checks the pins of the env file apply
    wrote, renders Freqtrade's config and becomes a dry-run Freqtrade bot on the stand-in (its REST API on
    a free loopback port). Its output goes to ``bot-<name>/freqtrade-<k>.log``."""
    import os
    import subprocess
    import sys

    from tradai_release.bot.config import API_PASSWORD_VARIABLE
    from tradai_release.repository.bots import BOT_EXEC
    from tradai_release.targets.envfile import EnvFileTarget

    env_file = EnvFileTarget.from_settings(settings, DEMO_ENV).path(key)
    home = workdir / f"bot-{key.name.removeprefix(DEMO_STRATEGY + '-')}"
    home.mkdir(parents=True, exist_ok=True)
    log = home / f"freqtrade-{len(list(home.glob('freqtrade-*.log'))) + 1}.log"
    environ = {name: value for name, value in os.environ.items() if not name.startswith(SCRUBBED)}
    environ.update({
        "TRADAI_REPO": str(settings.repo),
        "TRADAI_STATE_DIR": str(settings.state_dir),
        "TRADAI_MODELS_DIR": str(home / "models"),
        "TRADAI_EXCHANGE_API_URL": exchange.url,
        "TRADAI_BOT_API_PORT": "0",  # its REST API on a free loopback port
        API_PASSWORD_VARIABLE: DEMO_API_PASSWORD,
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    })
    # The container's command (BOT_COMMAND), with this venv's python and the env file apply wrote.
    command = [sys.executable, "-m", "tradai_release.runtime", "--env-file", str(env_file), "--json",
               "--exec", *BOT_EXEC]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environ, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return process, log


def _stop(process: Any) -> None:
    """SIGTERM, as an orchestrator stops a container; SIGKILL after BOT_STOP_SECONDS."""
    import os
    import signal
    import subprocess

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=BOT_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def _bots(
    settings: Settings, workdir: Path, exchange: ExchangeStandIn, keys: list[BotKey]
) -> Iterator[list[dict[str, Any]]]:
    """Several bots at once, each its own process; yields their ready records once every one has
    written it, and stops them all on the way out."""
    launched = [(key, *_launch(settings, workdir, exchange, key)) for key in keys]
    records: list[dict[str, Any]] = []
    try:
        for key, process, log in launched:
            ready, launch = _ready_record(log, process)
            records.append({**ready, "bot": key.name, "pid": process.pid, "trades_db": launch["trades_db"],
                            "log": str(log), "api_url": launch["api_url"]})
        yield records
    finally:
        for _key, process, _log in launched:
            _stop(process)


def _until_answered(url: str, username: str, password: str) -> BotReading:
    """observe's reader for bots that have just started: ask until the bot answers with its strategy loaded
    (a version and a first loop behind it), for at most BOT_WAIT_SECONDS."""
    from tradai_release.bot.rest import read_bot

    deadline = time.monotonic() + BOT_WAIT_SECONDS
    while True:
        reading = read_bot(url, username, password, timeout=2.0)
        loaded = reading.answered and reading.strategy_version and reading.heartbeat
        if loaded or time.monotonic() > deadline:
            return reading
        time.sleep(0.5)


def _simulated_breach(settings: Settings, version: int) -> LiveResult:
    """The reading of the profile's production bot on a bad day: 15 % drawdown, above the policy's 10 %."""
    from datetime import timedelta

    from tradai_release.domain.live import LiveResult

    now = utc_now()
    return LiveResult(env=DEMO_ENV, profile=DEMO_PROFILE, strategy=DEMO_STRATEGY, role=PRODUCTION_ROLE,
                      observed_at=now, answered=True, model_version=version, trades=6, closed_profit=-0.09,
                      max_drawdown=0.15, since=now - timedelta(hours=6), heartbeat=now)


def _trade(
    settings: Settings, workdir: Path, exchange: ExchangeStandIn, note: list[str], *, fills: bool
) -> dict[str, Any]:
    """The profile's production bot, run as its host runs it (:func:`_launch`).

    With ``fills`` the demo waits for an entry of this version to fill; else for the bot to have loaded
    the version and analysed the market once. Then the bot is stopped (SIGTERM, as an orchestrator does).
    The trade database is Freqtrade's own SQLite file.
    """
    from tradai_release.bot.trades import filled_entries, read_trades
    from tradai_release.repository.bots import BOT_EXEC
    from tradai_release.targets.envfile import EnvFileTarget

    env_file = EnvFileTarget.from_settings(settings, DEMO_ENV).path(_bot())
    served_before = exchange.requests["/fapi/v1/klines"]
    process, log = _launch(settings, workdir, exchange, _bot())
    try:
        ready, launch = _ready_record(log, process)
        tag = f"{ready['model_name']} v{ready['model_version']}"  # the entry tag (runtime.launch.entry_tag)
        deadline = time.monotonic() + BOT_WAIT_SECONDS
        db = Path(launch["trades_db"])
        while time.monotonic() < deadline and process.poll() is None:
            if fills and filled_entries(db, tag):
                break
            if not fills and _loaded(log, tag) and exchange.requests["/fapi/v1/klines"] > served_before:
                break
            time.sleep(0.5)
        else:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            state = f"exited {process.returncode}" if process.poll() is not None else "still running"
            raise TradaiError(f"demo: the bot never {'filled an entry' if fills else 'started'} "
                              f"({state}); {log}:\n{tail}")
    finally:
        _stop(process)
    trades = read_trades(db)
    mine = [trade for trade in trades if trade.enter_tag == tag]
    note.append(f"runtime checked {env_file.name}'s pins ({tag}, hub {ready['hub_tag']}) and became "
                f"`{' '.join(BOT_EXEC)}` (pid {process.pid}, dry run)")
    if fills:
        first = mine[0]
        note.append(f"entry {first.pair} filled at {first.open_rate:g}, tagged {first.enter_tag!r}")
    else:
        held = [f"{trade.enter_tag} {'open' if trade.is_open else 'closed'}" for trade in trades]
        note.append(f"{tag} loaded, market analysed; trades in the database: {', '.join(held) or 'none'}")
    note.append(f"stopped with SIGTERM; trades: {db}")
    return {**ready, "bot": _bot().name, "pid": process.pid, "trades_db": str(db), "log": str(log),
            "trades": [trade.to_dict() for trade in trades]}


def _ready_record(log: Path, process: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The runtime's ready record (its first line, --json) once written; an error line fails the demo."""
    deadline = time.monotonic() + BOT_WAIT_SECONDS
    while time.monotonic() < deadline:
        first = log.read_text(encoding="utf-8", errors="replace").split("\n", 1)
        if len(first) == 2 and first[0].startswith("{"):
            record = json.loads(first[0])
            return record, record["exec"]
        if process.poll() is not None:
            raise TradaiError(f"demo: the runtime refused to start the bot: {first[0].strip()}")
        time.sleep(0.2)
    raise TradaiError(f"demo: the runtime wrote no ready record in {BOT_WAIT_SECONDS} s ({log})")


def _loaded(log: Path, tag: str) -> bool:
    """Whether the strategy logged that it loaded the models of ``tag`` (``bot.strategy``'s start line)."""
    return f"trading {tag}" in log.read_text(encoding="utf-8", errors="replace")


def _start_bot(settings: Settings, models_dir: Path) -> None:
    """The runtime's start-up check as a library call, to read the pinned models before the bot runs."""
    from tradai_release.repository.bots import BotKey
    from tradai_release.runtime import read_variables, start_bot
    from tradai_release.targets.envfile import EnvFileTarget

    bot = BotKey(DEMO_ENV, DEMO_PROFILE, DEMO_STRATEGY, CHALLENGER)  # the staged version's pins
    variables, source = read_variables(EnvFileTarget.from_settings(settings, DEMO_ENV).path(bot))
    start_bot(settings, variables=variables, source=source, models_dir=models_dir)


def _pins(settings: Settings, prod: Environment, challenger: int) -> str:
    """Where the challenger and the champion stand: lifecycle and aliases."""
    from tradai_release.registry.adapter import MlflowRegistry

    registry = MlflowRegistry.for_env(prod, settings)
    versions = registry.versions([DEMO_STRATEGY]).get(DEMO_STRATEGY, [])
    shown = []
    for info in sorted(versions, key=lambda v: v.version):
        aliases = ",".join(sorted(info.aliases)) or "-"
        marker = " (challenger)" if info.version == challenger else ""
        shown.append(f"v{info.version}{marker} {info.lifecycle} [{aliases}]")
    return "; ".join(shown)
