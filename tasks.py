"""invoke tasks: each parses its flags, calls one library function and renders the result.

Heavy libraries are imported inside the task bodies so ``invoke --list`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Collection, Context, task

from tradai_release.cli import emit, handle_errors, required, required_env, required_release

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.workflows.retrain_set import RetrainingSet

ENV = "the environment (one of those releases/policy.yaml declares; default dev, staging, prod)"


def _settings() -> Settings:
    from tradai_release.core.settings import Settings

    return Settings()


# --- the whole loop, and the project's own tests ------------------------------------------------------


@task(help={"workdir": "empty directory for the scratch repository and state (default: a new temp dir)",
            "json": "print the report as one JSON object"})
@handle_errors
def demo(c: Context, workdir: str | None = None, json: bool = False) -> None:
    """Run the whole release loop on the embedded default, in a scratch repository."""
    from pathlib import Path

    from tradai_release.demo import run_demo
    from tradai_release.render.demo import render_step, render_summary
    from tradai_release.render.plan import render_markdown
    from tradai_release.report import build_site

    echo = None if json else render_step
    scratch = Path(workdir) if workdir else None
    outcome = run_demo(_settings().repo, scratch, echo=echo, comment=render_markdown,
                       board=lambda settings, out: build_site(settings, out).index)
    emit(json, outcome, lambda: render_summary(outcome))


@task(help={"quick": "skip the end-to-end tests (marked e2e: moto_server, mlflow server, act, a browser) "
                     "and the slow ones (marked slow: model training, a base-install venv)",
            "workers": "pytest-xdist workers (default 2; 0: one process)"})
def test(c: Context, quick: bool = False, workers: int = 2) -> None:
    """Check the import layers, then run the test suite (unit + end-to-end; --quick skips end-to-end)."""
    c.run("lint-imports", pty=False)
    marker = ' -m "not e2e and not slow"' if quick else ""
    # loadscope: a module's tests share a worker, so its module fixtures (the workflow run's world of
    # servers and a bootstrapped repository) are built once. No reorder: xdist would otherwise hand out
    # the modules with most tests first, and the few long ones (conftest's LONGEST_FIRST) came last,
    # the run's tail while the other worker idled.
    spread = f" -n {workers} --dist loadscope --no-loadscope-reorder" if workers > 0 else ""
    # Bytecode, pytest's rewritten test modules included, kept between runs outside the checkout: every
    # process the suite starts (servers, bots, the demo) would otherwise compile this project again.
    from tradai_release.core.fsutil import user_cache_dir

    env = {"PYTHONPYCACHEPREFIX": str(user_cache_dir() / "pycache"), "PYTHONDONTWRITEBYTECODE": "",
           **_memory_tmpdir()}
    c.run(f"python -m pytest -q --durations=25{marker}{spread}", pty=False, env=env)  # slowest, for CI logs


# The suite's temp dirs go to memory when /dev/shm is a tmpfs with room and TMPDIR is not set. On ext4
# without a journal (this project's machines) the kernel walks past every inode freed in the last minute
# (six minutes while its inode table block is unwritten) before it hands out a new one, so the run's
# churn of act's job venvs, git repositories and servers' files cost some 80 s of CPU there (perf:
# recently_deleted, find_inode_bit).
MEMORY = "/dev/shm"
MEMORY_NEEDED = 4 << 30  # a run's temp dirs (about 1.4 GB) and act's uv cache (1.2 GB), with room


def _memory_tmpdir(memory: str = MEMORY, mounts: str = "/proc/self/mounts") -> dict[str, str]:
    """``{"TMPDIR": <a directory of this user's in memory>}``, or nothing when TMPDIR is set or ``memory``
    is not an executable tmpfs (act's job venvs run from there) with MEMORY_NEEDED free."""
    import os
    from pathlib import Path

    if os.environ.get("TMPDIR"):
        return {}
    try:
        table = [line.split() for line in Path(mounts).read_text().splitlines()]
        free = os.statvfs(memory)
    except OSError:
        return {}
    options = [fields[3].split(",") for fields in table
               if len(fields) > 3 and fields[1:3] == [memory, "tmpfs"]]
    if not options or "noexec" in options[-1] or free.f_bavail * free.f_frsize < MEMORY_NEEDED:
        return {}
    directory = Path(memory) / f"tradai-release-tests-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        held = directory.lstat()  # a shared directory: only one that is this user's own is used
    except OSError:
        return {}
    if directory.is_symlink() or not directory.is_dir() or held.st_uid != os.getuid() or held.st_mode & 0o077:
        return {}
    return {"TMPDIR": str(directory)}


# --- the repository: validate / hash / diff / affected ----------------------------------------------


@task(help={
    "offline": "check only what needs no backend (schemas, paths, pins, hashes, tracked binaries)",
    "base": "git ref to compare with: live checks look only at what changed since it",
    "deep": "also check every pinned tag's blob contents (the hub's stored SHA-256, else a streamed hash)",
    "json": "print the report as one JSON object",
})
@handle_errors
def validate(
    c: Context, offline: bool = False, base: str | None = None, deep: bool = False, json: bool = False
) -> None:
    """Validate strategies/ and releases/; every problem is one `error:` line, exit 1."""
    from tradai_release.render.validation import render_report
    from tradai_release.workflows.validate import validate_repository

    settings = _settings()
    report = validate_repository(settings.repo, offline=offline, base=base, settings=settings, deep=deep)
    emit(json, report, lambda: render_report(report))
    if not report.ok:
        if json:
            from tradai_release.render import print_errors

            print_errors(report.problems)
        raise SystemExit(1)


@task(name="hash", help={
    "write": "refresh every manifest's config pins to the current hashes (like a lock file)",
    "json": "print the hashes (and refreshed pins) as one JSON object",
})
@handle_errors
def hash_(c: Context, write: bool = False, json: bool = False) -> None:
    """Print each strategy's config hash (SHA-256 of its normalized tradai.yaml); --write refreshes pins."""
    from tradai_release.render import print_errors
    from tradai_release.render.validation import render_hashes
    from tradai_release.workflows.validate import hash_strategies

    report = hash_strategies(_settings().repo, write=write)
    emit(json, report, lambda: render_hashes(report.hashes, report.updates))
    if report.problems:
        print_errors(list(report.problems))
        raise SystemExit(1)


@task(help={
    "base": "the older git ref (branch, tag or commit)",
    "head": "the newer git ref (default HEAD)",
    "json": "print the diff as one JSON object",
})
@handle_errors
def diff(c: Context, base: str | None = None, head: str = "HEAD", json: bool = False) -> None:
    """Semantic diff between two commits: strategies, config fields and release pins that changed."""
    from tradai_release.domain.diff import diff_refs
    from tradai_release.render.diff import render_diff

    older = required("diff", "--base", base, "the older git ref to compare with")
    result = diff_refs(_settings().repo, older, head)
    emit(json, result, lambda: render_diff(result))


@task(help={
    "base": "the older git ref (e.g. the pull request's base, or the commit before a push)",
    "head": "the newer git ref (default HEAD)",
    "json": "print {\"envs\": [...]} (what CI feeds its per-environment matrix)",
})
@handle_errors
def affected(c: Context, base: str = "", head: str = "HEAD", json: bool = False) -> None:
    """Environments whose desired state changed between two commits (a strategy change affects every env)."""
    from tradai_release.engine.gitops import affected_between

    older = required("affected", "--base", base, "the older git ref to compare with")
    envs = affected_between(_settings(), older, head)
    emit(json, {"base": base, "head": head, "envs": envs},
         lambda: print("\n".join(envs) if envs else "no environment changed"))


@task(help={"json": "print {\"envs\": [...]} (what CI feeds its per-environment matrix)"})
@handle_errors
def environments(c: Context, json: bool = False) -> None:
    """The environments releases/policy.yaml declares, in promotion order (default dev, staging, prod), and
    with --json the waves of those that declare them (progress.yml verifies those)."""
    from tradai_release.repository.tree import ReleaseTree

    policy = ReleaseTree.work(_settings().repo).policy()
    envs = list(policy.environments)
    waves = {env: [list(wave) for wave in waves] for env, waves in policy.waves.items()}
    emit(json, {"envs": envs, "waves": waves}, lambda: print("\n".join(envs)))


# --- model registry: models / rollback-candidates ---------------------------------------------------


@task(help={
    "strategy": "the strategy (= registered model name)",
    "env": "one environment (default: every declared environment, each with its own registry)",
    "json": "print the versions as one JSON object",
})
@handle_errors
def models(c: Context, strategy: str = "", env: str | None = None, json: bool = False) -> None:
    """List a strategy's registered model versions: lifecycle, aliases, metrics, r2_tag, git_commit."""
    from tradai_release.registry.views import models_in_envs
    from tradai_release.render.models import render_models

    name = required("models", "--strategy", strategy, "the strategy whose model versions to list")
    views = models_in_envs(_settings(), name, [env] if env else None)
    emit(json, {"strategy": name, "versions": [view.to_dict() for view in views]},
         lambda: render_models(name, views))


@task(name="rollback-candidates", help={
    "strategy": "the strategy (= registered model name)",
    "env": "the environment whose registry to read",
    "json": "print the candidates as one JSON object",
})
@handle_errors
def rollback_candidates(c: Context, strategy: str = "", env: str = "", json: bool = False) -> None:
    """Versions that were Production in the environment before, most recently retired first."""
    from tradai_release.registry.views import rollback_candidates_in
    from tradai_release.render.models import render_rollback_candidates

    settings = _settings()
    name = required("rollback-candidates", "--strategy", strategy, "the strategy to roll back")
    where = required_env("rollback-candidates", env, settings).name
    found = rollback_candidates_in(settings, name, where)
    emit(json, {"strategy": name, "env": where, "candidates": [item.to_dict() for item in found]},
         lambda: render_rollback_candidates(name, where, found))


# --- config versions: upload / strategy.list / provision --------------------------------------------


@task(help={
    "strategy": "the strategy whose strategies/<S>/tradai.yaml to stage",
    "env": "the environment whose config registry receives the DRAFT version",
    "json": "print the version as one JSON object",
})
@handle_errors
def upload(c: Context, strategy: str = "", env: str = "", json: bool = False) -> None:
    """Stage the working tree's tradai.yaml as a DRAFT config version (seed `strategy stage`)."""
    from tradai_release.configs.strategies import upload_strategy
    from tradai_release.render.configs import render_upload

    settings = _settings()
    name = required("upload", "--strategy", strategy, "the strategy to stage")
    where = required_env("upload", env, settings)
    version = upload_strategy(settings, name, where)
    emit(json, {"env": where.name, **version.to_dict(), "created": version.created},
         lambda: render_upload(version, where.name))


@task(name="list", help={
    "env": "the environment whose config registry to read (default: the first of the promotion order)",
    "json": "print the strategies as one JSON object",
})
@handle_errors
def strategy_list(c: Context, env: str = "", json: bool = False) -> None:
    """List strategies: version, config hash, ACTIVE config_id in the env and number of stored versions."""
    from tradai_release.configs.strategies import list_strategies
    from tradai_release.render.configs import render_strategy_list
    from tradai_release.repository.environments import declared_environments, environment

    settings = _settings()
    where = environment(settings, env or declared_environments(settings)[0])
    listings = list_strategies(settings, where)
    emit(json, {"env": where.name, "strategies": [item.to_dict() for item in listings]},
         lambda: render_strategy_list(where.name, listings))


@task(help={"env": "the environment whose AWS tables and buckets to create",
            "json": "print the outcome as JSON"})
@handle_errors
def provision(c: Context, env: str = "", json: bool = False) -> None:
    """Create the env's DynamoDB tables (TTL on) and S3 buckets if missing; safe to re-run."""
    from tradai_release.render.configs import render_provisioned
    from tradai_release.workflows.provision import provision as provision_env

    settings = _settings()
    done = provision_env(settings, required_env("provision", env, settings))
    emit(json, {"env": done.env, "created": list(done.created), "existing": list(done.existing)},
         lambda: render_provisioned(done.env, done.created, done.existing))


# --- training: train [--push-to-hub] -----------------------------------------------------------------


@task(iterable=["register_env"], help={
    "strategy": "the strategy to train (strategies/<S>: ml_config.json features, data/*.csv candles)",
    "push_to_hub": "then push the models dir to the model hub as a new tag and register the version",
    "register_env": "with --push-to-hub: environment whose MLflow registry gets the version "
    "(repeatable; default: the first environment of the promotion order)",
    "tag": "with --push-to-hub: the tag name (default vYYYYMMDD, suffixed when taken)",
    "message": "with --push-to-hub: the tag message (default 'train <S>')",
    "json": "print the result (metrics, tag, versions) as one JSON object",
})
@handle_errors
def train(c: Context, strategy: str = "", push_to_hub: bool = False, register_env: list[str] | None = None,
          tag: str | None = None, message: str = "", json: bool = False) -> None:
    """Train a strategy's signal and position models; --push-to-hub also pushes and registers them.

    Writes <models_dir>/<S>/ (signal/ and position/: RF, XGBoost, LightGBM, scaler, ONNX exports,
    metadata; model_compat.json). With --push-to-hub the whole models dir becomes one new hub tag,
    and the version is registered in MLflow in each --register-env with r2_tag = that tag.
    Prints the held-out metrics, the tag and the version(s).
    """
    from tradai_release.render.hub import transfer_progress
    from tradai_release.render.training import render_training
    from tradai_release.workflows.publish import train_and_publish

    with transfer_progress(enabled=not json) as progress:  # bars only on a terminal
        outcome = train_and_publish(_settings(), strategy, push_to_hub=push_to_hub, tag=tag, message=message,
                                    register_envs=tuple(register_env or ()), progress=progress)
    emit(json, outcome, lambda: render_training(outcome))


# --- GitOps engine: plan / apply ---------------------------------------------------------------------


@task(help={
    "env": ENV,
    "commit": "the git ref whose manifests and configs are the desired state (default HEAD)",
    "format": "text (terminal), markdown (PR comment / job summary) or json",
})
@handle_errors
def plan(c: Context, env: str = "", commit: str = "HEAD", format: str = "text") -> None:
    """Show what apply would change in ENV to match COMMIT, drift (live values changed by hand) and the
    verdicts of releases/policy.yaml (soak, freeze) on applying it now."""
    from tradai_release.engine.admission import judged_plan
    from tradai_release.render.plan import check_format, print_plan

    settings = _settings()
    print_plan(judged_plan(required_release("plan", env, settings, commit)), check_format(format))


@task(help={
    "env": ENV,
    "commit": "the git ref to make live (default HEAD); must descend from the last applied commit",
    "dry_run": "print the plan and stop: nothing is written",
    "json": "print the deployment (or with --dry-run the plan) as one JSON object",
})
@handle_errors
def apply(c: Context, env: str = "", commit: str = "HEAD", dry_run: bool = False, json: bool = False) -> None:
    """Make ENV match COMMIT: lock, refuse stale commits, run the plan's actions, check the plan is empty."""
    from tradai_release.engine.admission import judged_plan
    from tradai_release.engine.apply import apply_env
    from tradai_release.render.plan import print_plan, render_deployment

    settings = _settings()
    release = required_release("apply", env, settings, commit)
    if dry_run:  # dry-run means: stop after the plan
        print_plan(judged_plan(release), "json" if json else "text")
        return
    deployment = apply_env(release)
    emit(json, deployment, lambda: print(render_deployment(deployment), end=""))


@task(help={
    "env": ENV,
    "lease": "the lease id to break (plan and the \"locked by\" error show it)",
    "reason": "why (recorded in the deployment the lease was for, with who broke it)",
    "force": "break a lease that is still being renewed (its apply is alive: it fails at its next step)",
    "json": "print what was broken as one JSON object",
})
@handle_errors
def unlock(c: Context, env: str = "", lease: str = "", reason: str = "", force: bool = False,
           json: bool = False) -> None:
    """Break ENV's apply lease by hand; a dead holder's lease also lapses by itself within a minute."""
    from tradai_release.engine.lock import unlock as break_lease
    from tradai_release.engine.release_table import open_release_table

    settings = _settings()
    where = required_env("unlock", env, settings)
    lease_id = required("unlock", "--lease", lease, "the lease id plan shows")
    why = required("unlock", "--reason", reason, "why the lease is broken; it is recorded")
    done = break_lease(open_release_table(settings, where), where.name, lease_id, actor=settings.actor,
                       reason=why, force=force)
    emit(json, done, lambda: print(
        f"unlocked {done.env}: lease {done.lease.lease_id} of {done.lease.holder} (deployment "
        f"{done.lease.deployment_id}) broken by {done.record['by']}: {why}"))


@task(name="deploy-status", help={
    "env": ENV,
    "commit": "the git ref whose pins to compare (default HEAD)",
    "json": "print {\"env\", \"bots\": [...]} with each bot's pinned and running variables",
})
@handle_errors
def deploy_status(c: Context, env: str = "", commit: str = "HEAD", json: bool = False) -> None:
    """Each bot's pinned values (model, tag, config) against what its deployment target runs."""
    from tradai_release.engine.status import bot_statuses
    from tradai_release.render.bots import render_bot_statuses

    settings = _settings()
    release = required_release("deploy-status", env, settings, commit)
    statuses = bot_statuses(release)
    emit(json, {"env": release.name, "bots": [s.to_dict() for s in statuses]},
         lambda: render_bot_statuses(release.name, statuses))


@task(help={
    "env": ENV,
    "profile": "only this risk profile's pins",
    "strategy": "only this strategy's pins",
    "since": "only deployments from this instant on (ISO 8601: 2026-12-01T14:00:00Z; a date is 00:00 UTC)",
    "until": "only deployments up to this instant",
    "at": "instead of rows: exactly what was live at this instant, for every profile x strategy",
    "json": "print the rows (or with --at the live pins) as one JSON object",
})
@handle_errors
def history(c: Context, env: str = "", profile: str = "", strategy: str = "", since: str = "",
            until: str = "", at: str = "", json: bool = False) -> None:
    """What each apply of ENV moved, newest first; --at T: what was live at T (from deployment records)."""
    from tradai_release.core.errors import InputError
    from tradai_release.engine.history import history as read_history
    from tradai_release.engine.history import live_at
    from tradai_release.render.history import render_history, render_live

    settings = _settings()
    release = required_release("history", env, settings)
    if at:
        if since or until:
            raise InputError("history", "--at", "shows one instant: give --at or --since/--until, not both")
        found = live_at(release, at, profile=profile or None, strategy=strategy or None)
        emit(json, found, lambda: render_live(found))
        return
    rows = read_history(release, profile=profile or None, strategy=strategy or None,
                        since=since or None, until=until or None)
    emit(json, rows, lambda: render_history(rows))


# --- GitOps edits: promote / rollback ----------------------------------------------------------------


@task(help={
    "env": "the environment whose manifests to edit",
    "profile": "a risk profile number, or all (every profile of the env pinning the strategy)",
    "strategy": "the strategy whose model pin moves",
    "version": "the registered model version to pin",
    "stage": "Production (the live pin, default) or Staging (the dry-run challenger pin)",
    "no_archive": "keep the replaced production version Production (recorded as model.keep_production)",
    "override_reason": "record an override (who: TRADAI_ACTOR or your git identity; why: this text) "
    "when the comparator does not approve a forward move in production",
    "commit": "commit the edit on a new branch release/<env>-<strategy>-v<V>-<short> (not the current)",
    "json": "print the outcome as one JSON object",
    "from_": "an earlier environment whose version --version to carry here first: the same hub files, "
    "metrics and lineage (reused when this environment already holds those files)",
})
@handle_errors
def promote(c: Context, env: str = "", profile: str = "", strategy: str = "", version: str = "",
            stage: str = "Production", no_archive: bool = False, override_reason: str = "",
            commit: bool = False, json: bool = False, from_: str = "") -> None:
    """Pin a model version in manifests (seed `strategy set-version`), run the comparator, show the plan.

    With --from, the version is the earlier environment's: that very artifact is carried in first.
    """
    from tradai_release.core.errors import TradaiError
    from tradai_release.render.promote import render_promotion
    from tradai_release.workflows.promote import promote as promote_pins

    flags = {"--env": env, "--profile": profile, "--strategy": strategy, "--version": version}
    for flag, value in flags.items():
        required("promote", flag, value)
    settings = _settings()
    source = required_env("promote", from_, settings) if from_ else None
    result = promote_pins(settings, required_env("promote", env, settings), profile, strategy, version,
                          stage=stage, no_archive=no_archive, override_reason=override_reason or None,
                          commit=commit, source=source)
    emit(json, result, lambda: render_promotion(result))
    if result.blocked:
        raise TradaiError(result.blocked)


@task(help={
    "env": "the environment whose bots to read (production and challenger bots its manifests declare)",
    "json": "print the readings as one JSON object",
})
@handle_errors
def observe(c: Context, env: str = "", json: bool = False) -> None:
    """Read every bot's live results over Freqtrade's REST API and record them (progress decides on them)."""
    from tradai_release.render.progress import render_observe
    from tradai_release.workflows.observe import observe as read_bots

    settings = _settings()
    report = read_bots(required_release("observe", env, settings))
    emit(json, report, lambda: render_observe(report))


@task(help={
    "env": "the environment whose strategies move (its waves and verification rules in releases/policy.yaml)",
    "strategy": "only this strategy (default: every strategy the environment pins)",
    "commit": "write each move as a commit on its branch progress/<move> (the current branch stays)",
    "json": "print the decisions as one JSON object",
    "json_file": "also write that JSON object to this file (the workflow reads it)",
})
@handle_errors
def progress(c: Context, env: str = "", strategy: str = "", commit: bool = False, json: bool = False,
             json_file: str = "") -> None:
    """Hold, promote the challenger into the next wave, or roll back a breaching pin, on live results."""
    from tradai_release.render.progress import render_progress
    from tradai_release.workflows.progress import progress as decide_progress

    settings = _settings()
    report = decide_progress(required_release("progress", env, settings), strategy=strategy or None,
                             commit=commit)
    emit(json, report, lambda: render_progress(report), json_file)


@task(help={
    "env": "the environment to roll back",
    "profile": "only this risk profile (default: every profile of the env)",
    "strategy": "only this strategy's model pins (default: every pin and the hub tag)",
    "to": "restore the pins of this git ref (branch, tag or commit)",
    "deployment": "restore the pins of this deployment's commit (default: the previous deployment)",
    "commit": "commit the restore on a new branch rollback/<env>...-to-<short> (never the current one)",
    "json": "print the outcome as one JSON object",
})
@handle_errors
def rollback(c: Context, env: str = "", profile: str = "", strategy: str = "", to: str = "",
             deployment: str = "", commit: bool = False, json: bool = False) -> None:
    """Restore pins from an earlier commit or deployment (seed `deploy rollback`); applying it rolls back."""
    from tradai_release.render.promote import render_rollback
    from tradai_release.workflows.rollback import rollback as restore_pins

    settings = _settings()
    result = restore_pins(settings, required_env("rollback", env, settings), profile=profile or None,
                          strategy=strategy or None, to=to or None, deployment=deployment or None,
                          commit=commit)
    emit(json, result, lambda: render_rollback(result))


# --- drift and retraining: drift / retrain-check / retrain -------------------------------------------


@task(iterable=["data", "strategy"], help={
    "env": "the environment whose live models to check",
    "data": "recent candles CSV: STRATEGY=PATH (repeatable), or PATH with one --strategy "
    "(default: the last drift_window_rows candles of each strategy's data set)",
    "strategy": "check only this strategy (repeatable; default: every strategy pinned in the env)",
    "models-dir": "read the bundles from this directory instead of pulling the pinned hub tag",
    "psi-only": "skip the plan of the env (the live-state drift check)",
    "record": "store each strategy's PSI in the release state (the report's drift history)",
    "json": "print the report as one JSON object",
})
@handle_errors
def drift(c: Context, env: str = "", data: list[str] | None = None, strategy: list[str] | None = None,
          models_dir: str | None = None, psi_only: bool = False, record: bool = False,
          json: bool = False) -> None:
    """PSI drift of recent data and predictions vs the live models' training data; notifies if significant."""
    from pathlib import Path

    from tradai_release.domain.monitor.options import parse_data_options
    from tradai_release.render.drift import render_drift
    from tradai_release.workflows.drift import monitor

    settings = _settings()
    where = required_env("drift", env, settings)
    report = monitor(settings, where, data=parse_data_options(data or [], strategy or []),
                     strategies=strategy or None, models_dir=Path(models_dir) if models_dir else None,
                     state=not psi_only, record=record)
    emit(json, report, lambda: render_drift(report))


@task(iterable=["data", "strategy", "manual"], help={
    "env": "the environment whose live models to check (default: every declared environment, and the set "
    "of strategies to retrain once across them)",
    "strategy": "check only this strategy (repeatable)",
    "manual": "retrain this strategy regardless (repeatable or comma-separated; 'all' for every one)",
    "data": "recent candles CSV for the drift part, as for `invoke drift`",
    "max_jobs": "without --env: the most jobs the set's matrix may have (default 256, GitHub's limit)",
    "json": "print the decision as one JSON object",
    "json_file": "also write the decision as one JSON object to this file (CI: one check, both forms)",
})
@handle_errors
def retrain_check(c: Context, env: str = "", strategy: list[str] | None = None,
                  manual: list[str] | None = None, data: list[str] | None = None, max_jobs: int = 256,
                  json: bool = False, json_file: str = "") -> None:
    """Is retraining needed? Significant PSI drift, a model older than its max age, or --manual.

    Without --env: every environment, and each strategy that needs it anywhere, once (trained once).
    """
    from tradai_release.render.drift import render_check, render_set

    settings = _settings()
    if env:
        from tradai_release.workflows.retrain_check import retraining_needed

        check = retraining_needed(settings, required_env("retrain-check", env, settings),
                                  strategies=strategy or [], manual=manual or [], data=data or [])
        emit(json, check, lambda: render_check(check), json_file)
        return
    retraining = _retraining_set(settings, strategy or [], manual or [], data or [], max_jobs)
    emit(json, retraining, lambda: render_set(retraining), json_file)


def _retraining_set(settings: Settings, strategies: list[str], manual: list[str], data: list[str],
                    max_jobs: int) -> RetrainingSet:
    from tradai_release.repository.environments import environments
    from tradai_release.workflows.retrain_check import retraining_everywhere
    from tradai_release.workflows.retrain_set import retraining_set

    envs = environments(settings)
    checks = retraining_everywhere(settings, envs, strategies=strategies, manual=manual, data=data)
    return retraining_set([check.to_dict() for check in checks], envs[0].order, max_jobs=max_jobs,
                          checks=tuple(checks))


@task(iterable=["check", "manual"], help={
    "check": "a `retrain-check --env E --json-file` report (repeatable: one per environment), or a directory "
    "of check-*.json reports",
    "manual": "retrain this strategy regardless (repeatable or comma-separated; 'all' for every pinned one)",
    "max_jobs": "the most jobs the matrix may have (default 256, GitHub's limit; more strategies share jobs)",
    "json": "print the set and its matrix as one JSON object",
    "json_file": "also write that JSON object to this file (the drift workflow reads its matrix)",
})
@handle_errors
def retrain_set(c: Context, check: list[str] | None = None, manual: list[str] | None = None,
                max_jobs: int = 256, json: bool = False, json_file: str = "") -> None:
    """The strategies to retrain across environments, each once, and the workflow's job matrix."""
    from tradai_release.render.drift import render_set
    from tradai_release.repository.environments import declared_environments
    from tradai_release.repository.tree import ReleaseTree
    from tradai_release.workflows.retrain_set import read_checks, retraining_set

    paths = check or []
    required("retrain-set", "--check", ",".join(paths), "a retrain-check JSON report per environment")
    settings = _settings()
    pinned = sorted({name for m in ReleaseTree.work(settings.repo).load().manifests.values()
                     for name in m.strategies})
    reports, files = read_checks(paths)
    retraining = retraining_set(reports, declared_environments(settings), max_jobs=max_jobs,
                                where=files, manual=manual or [], pinned=pinned)
    emit(json, retraining, lambda: render_set(retraining), json_file)


@task(iterable=["manual"], help={
    "strategy": "the strategy to retrain",
    "env": "the environment to register the challenger in and propose it for (default: the first of the "
    "promotion order; promote --from carries it on)",
    "profile": "a profile number, a comma-separated list, or 'all' (default: every profile pinning it)",
    "all_": "retrain every strategy the retraining check finds across the environments, once each, "
    "training in a process pool",
    "manual": "with --all: retrain this strategy regardless (repeatable, comma-separated, or 'all')",
    "workers": "with --all: training processes (default 0: one per CPU; 1: one after another)",
    "json": "print the outcome as one JSON object",
    "json_file": "also write the outcome as one JSON object to this file (CI: one retrain, both forms)",
})
@handle_errors
def retrain(c: Context, strategy: str = "", env: str = "", profile: str = "all", all_: bool = False,
            manual: list[str] | None = None, workers: int = 0, json: bool = False,
            json_file: str = "") -> None:
    """Train a challenger once, push and register it, compare per profile; on promote write a retrain/ branch.

    A profile whose champion already has the retrained files is unchanged: nothing pushed or registered.
    """
    from tradai_release.core.errors import InputError, TradaiError
    from tradai_release.render.drift import render_retrain, render_run
    from tradai_release.workflows.retrain import first_environment, parse_profiles
    from tradai_release.workflows.retrain import retrain as run_retrain

    settings = _settings()
    where = required_env("retrain", env, settings) if env else first_environment(settings)
    if all_:
        from dataclasses import replace

        from tradai_release.workflows.retrain_all import retrain_all

        if strategy:
            raise InputError("retrain", "--strategy", "--all retrains the set the check finds; not both")
        if workers != 1:
            from tradai_release.workflows.retrain_all import warm_pool

            warm_pool()  # the training processes' imports, beside the check
        retraining = _retraining_set(settings, [], manual or [], [], 256)
        run = retrain_all(settings, retraining.retrain, where, workers=workers)
        run = replace(run, retraining=retraining)
        emit(json, run, lambda: render_run(run), json_file)
        if run.failed:
            raise TradaiError(f"retrain --all: {len(run.failed)} of {len(retraining.retrain)} strategies "
                              f"failed: {', '.join(sorted(run.failed))}")
        return
    name = required("retrain", "--strategy", strategy, "the strategy to retrain (or --all)")
    result = run_retrain(settings, name, where, profiles=parse_profiles(profile))
    emit(json, result, lambda: render_retrain(result), json_file)


@task(iterable=["env"], help={
    "env": "environment to bootstrap (repeatable; default: every declared environment)",
    "commit": "commit the manifests whose pins changed (default: only write them)",
    "no_apply": "stop after pinning; do not apply the environments",
    "json": "print what was done as one JSON object",
    "fresh": "train every strategy again, even one whose inputs, code and libraries are unchanged",
})
@handle_errors
def bootstrap(c: Context, env: list[str] | None = None, commit: bool = False, no_apply: bool = False,
              json: bool = False, fresh: bool = False) -> None:
    """Train every strategy, push hub tag v20261101, register version 1 per env, pin, apply."""
    from tradai_release.render.bootstrap import render_bootstrap
    from tradai_release.workflows.bootstrap import bootstrap as run_bootstrap

    result = run_bootstrap(_settings(), envs=env or None, commit=commit, apply=not no_apply, fresh=fresh)
    emit(json, result, lambda: render_bootstrap(result))


# --- the release board: report ------------------------------------------------------------------------


@task(iterable=["env"], help={
    "out": "directory for the site (created; an earlier report there is replaced, anything else refused)",
    "env": "environment to show (repeatable; default: every declared environment)",
    "commit": "the git ref whose manifests are the desired state (default HEAD)",
    "json": "print what was written as one JSON object",
})
@handle_errors
def report(c: Context, out: str = "", env: list[str] | None = None, commit: str = "HEAD",
           json: bool = False) -> None:
    """Write the release board to OUT: a static site (board, deployments, strategy pages with charts).

    Needs the report extra (pip install -e '.[report]'): Jinja2 templates, matplotlib SVG charts.
    Open OUT/index.html from disk, or publish the directory (CI: GitHub Pages, see the README).
    """
    from pathlib import Path

    from tradai_release.report import build_site

    where = required("report", "--out", out, "the directory to write the site to")
    result = build_site(_settings(), Path(where), env or None, commit=commit)
    emit(json, result, lambda: print(
        f"report: {result.pages} pages, {result.charts} charts, {result.bytes / 1e6:.2f} MB for "
        f"{', '.join(result.envs)} in {result.seconds:.1f} s\nopen {result.index}"))


# --- the workflow jobs' hash-locked installs -------------------------------------------------------

# Each lock the workflow jobs install (requirements/<name>.txt) -> the extras it holds besides the base
# dependencies; docs/ci.md has the job -> lock table. Every lock also holds requirements/build.in (the
# build backend), so the project itself installs with --no-deps --no-build-isolation and nothing unhashed.
CI_LOCKS: dict[str, tuple[str, ...]] = {
    "base": (),
    "registry": ("registry",),
    "drift": ("train", "registry"),
    "pages": ("report", "registry"),
    "progress": ("registry", "observe"),
}


@task(help={"lock": "refresh only this lock (default: all of them)"})
def lock(c: Context, lock: str = "") -> None:
    """Refresh requirements/*.txt, the hash-locked installs of the workflow jobs, from pyproject.toml.

    Run after changing a pin in pyproject.toml (a Dependabot bump included): tests/test_workflows.py fails
    while a lock disagrees with pyproject.toml. Needs the package index (uv pip compile).
    """
    import sys
    from pathlib import Path

    names = [lock] if lock else sorted(CI_LOCKS)
    unknown = [name for name in names if name not in CI_LOCKS]
    if unknown:
        raise SystemExit(f"error: --lock: unknown lock {unknown[0]!r} (locks: {', '.join(sorted(CI_LOCKS))})")
    uv = Path(sys.executable).parent / "uv"
    for name in names:
        extras = "".join(f" --extra {extra}" for extra in CI_LOCKS[name])
        # The runners are ubuntu-latest x86_64 with Python 3.11 (setup-python in every job).
        c.run(f"{uv} pip compile --quiet pyproject.toml requirements/build.in{extras} --generate-hashes"
              f" --python-version 3.11 --python-platform x86_64-manylinux_2_28"
              f" --custom-compile-command 'invoke lock' -o requirements/{name}.txt", pty=False)


# --- namespace ----------------------------------------------------------------------------------------

ns = Collection(
    demo, test, validate, hash_, diff, affected, environments, models, rollback_candidates, upload, provision,
    train, plan, apply, unlock, deploy_status, history, promote, observe, progress, rollback, drift,
    retrain_check, retrain_set, retrain, bootstrap, report, lock,
)
ns.add_collection(Collection("strategy", list=strategy_list))
