"""Apply: lock, refuse stale commits, execute a plan's actions in order with a journal, re-check.

See docs/architecture.md §7.

Every action is idempotent, and the plan only holds what is not yet live, so an apply that
crashed part-way converges when re-run: the new plan holds exactly what is left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.clock import stamp
from tradai_release.engine.deployments import (
    FAILED,
    NOOP,
    RUNNING,
    SUCCEEDED,
    Deployment,
    journal,
    new_deployment_id,
    save_deployment,
)
from tradai_release.engine.lock import DEFAULT_LEASE_SECONDS, acquire
from tradai_release.engine.plan import Action, Plan, build_plan
from tradai_release.engine.state import EngineBackends, load_desired, read_live
from tradai_release.environments import environment
from tradai_release.errors import ApplyFailed, HubIntegrityError, StaleCommit, TradaiError

if TYPE_CHECKING:
    from tradai_release.engine.state import AppliedState, DesiredState
    from tradai_release.environments import Environment
    from tradai_release.settings import Settings
    from tradai_release.targets import RunningBot

AfterAction = Callable[[int, Action], None]


def apply_env(
    settings: Settings,
    env: str | Environment,
    *,
    commit: str = "HEAD",
    repo: Path | str | None = None,
    actor: str | None = None,
    backends: EngineBackends | None = None,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    after_action: AfterAction | None = None,
) -> Deployment:
    """Make ``env`` match ``commit``; returns the deployment (outcome ``noop`` when nothing was to do).

    Refuses (exit 1) a commit that does not descend from the last applied one, and a
    second apply while the env's lease lock is held. An apply with nothing to do
    writes nothing. ``after_action`` is called after each executed action (tests inject
    crashes with it).
    """
    target = environment(settings, env)
    env = target.name
    root = Path(repo if repo is not None else settings.repo)
    desired = load_desired(root, env, commit)
    backends = backends or EngineBackends.from_settings(settings, target)
    actor = actor or settings.actor
    trace_id = settings.new_trace_id()

    live = read_live(backends, desired)
    check_descends(root, env, desired.commit, live.applied)
    plan = build_plan(desired, live)
    started = stamp()
    if plan.empty:
        return Deployment(env, desired.commit, None, NOOP, actor, trace_id, started, started, plan.to_dict())

    deployment_id = new_deployment_id()
    lease = acquire(
        backends.releases,
        env,
        holder=actor,
        deployment_id=deployment_id,
        commit=desired.commit,
        seconds=lease_seconds,
    )
    deployment = Deployment(env, desired.commit, deployment_id, RUNNING, actor, trace_id, started)
    statuses: list[dict[str, Any]] = []
    try:
        # Under the lock, read again: an apply that held it before us may have changed everything.
        live = read_live(backends, desired)
        check_descends(root, env, desired.commit, live.applied)
        plan = build_plan(desired, live)
        if plan.empty:  # the apply that held the lock before us did it all
            lease.release()
            return Deployment(
                env, desired.commit, None, NOOP, actor, trace_id, started, stamp(), plan.to_dict()
            )
        statuses = [{**action.to_dict(), "status": "pending"} for action in plan.actions]
        deployment = replace(deployment, plan=plan.to_dict(), actions=tuple(statuses))
        save_deployment(backends.releases, deployment)
        executor = _Executor(backends, plan, deployment)
        for index, action in enumerate(plan.actions):
            try:
                executor.run(action)
            except Exception:
                statuses[index]["status"] = "failed"
                journal(backends.releases, env, deployment_id, index, action.to_dict(), "failed")
                raise
            statuses[index]["status"] = "done"
            journal(backends.releases, env, deployment_id, index, action.to_dict(), "done")
            lease.renew_if_due()
            if after_action is not None:
                after_action(index, action)
        after = build_plan(desired, read_live(backends, desired))
        if not after.empty:
            left = ", ".join(f"{a.kind} {a.target}" for a in after.actions[:3])
            raise ApplyFailed(env, deployment_id, f"the plan after applying is not empty: {left}")
        deployment = deployment.with_outcome(SUCCEEDED if plan.actions else NOOP, statuses)
        save_deployment(backends.releases, deployment)
    except BaseException as err:
        message = str(err) or type(err).__name__
        failed = deployment.with_outcome(FAILED, statuses, error=message)
        try:
            save_deployment(backends.releases, failed)
        finally:
            lease.release()
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


def check_descends(repo_root: Path, env: str, commit: str, applied: AppliedState | None) -> None:
    """Refuse ``commit`` unless it is the last applied commit or a descendant of it."""
    if applied is None or applied.commit == commit:
        return
    from tradai_release.gitrepo import GitRepo

    with GitRepo(repo_root) as git:
        if not git.has_commit(applied.commit):
            detail = "cannot be checked: this clone lacks (fetch full history) the last applied commit"
            raise StaleCommit(env, commit, applied.commit, detail)
        descends = git.is_ancestor(applied.commit, commit)
    if not descends:
        raise StaleCommit(env, commit, applied.commit)


class _Executor:
    """Runs one action against the live systems; every action is safe to run twice."""

    def __init__(self, backends: EngineBackends, plan: Plan, deployment: Deployment) -> None:
        self.backends = backends
        self.plan = plan
        self.deployment = deployment
        self.stages_supported = True
        self.deployed: dict[str, RunningBot] = {}

    @property
    def desired(self) -> DesiredState:
        assert self.plan.desired is not None
        return self.plan.desired

    def run(self, action: Action) -> None:
        handler: Callable[[Mapping[str, Any]], None] = getattr(self, "_" + action.kind)
        handler(action.details)

    def _upload_config(self, details: Mapping[str, Any]) -> None:
        config = self.desired.configs[details["strategy"]]
        self.backends.configs.repository.save(config.strategy, dict(config.data))

    def _create_config_version(self, details: Mapping[str, Any]) -> None:
        config = self.desired.configs[details["strategy"]]
        self.backends.configs.create_version(
            strategy_name=config.strategy,
            config_data=dict(config.data),
            description=f"applied from git {self.plan.commit[:12]} ({self.deployment.deployment_id})",
            git_commit=self.plan.commit,
            trace_id=self.deployment.trace_id,
        )

    def _activate_config(self, details: Mapping[str, Any]) -> None:
        from tradai_release.errors import ConfigVersionNotFound

        strategy, digest = details["strategy"], details["config_hash"]
        version = self.backends.configs.find_by_hash(strategy, digest)
        if version is None:
            raise ConfigVersionNotFound(strategy, f"hash {digest[:12]}")
        self.backends.configs.activate(strategy, version.config_id)

    def _verify_artifacts(self, details: Mapping[str, Any]) -> None:
        # Deep: a same-size blob with other bytes must not become live; the store's checksums
        # make this a HEAD per blob, and only tags this apply pins are checked.
        problems = self.backends.hub.verify_tag(details["tag"], details["sha256"], deep=True)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise HubIntegrityError(f"tag {details['tag']}", problems[0] + more)

    def _lifecycle(self, details: Mapping[str, Any]) -> None:
        registry = self.backends.registry
        name, version = details["model"], int(details["version"])
        for key, value in dict(details["tags"]).items():
            if value is None:
                registry.delete_version_tag(name, version, key)
            else:
                registry.set_version_tag(name, version, key, str(value))
        stage = details.get("stage")
        if stage and self.stages_supported and not registry.set_stage(name, version, stage):
            self.stages_supported = False

    _set_lifecycle = _lifecycle
    _archive_version = _lifecycle

    def _set_alias(self, details: Mapping[str, Any]) -> None:
        self.backends.registry.set_alias(details["model"], details["alias"], int(details["version"]))

    def _delete_alias(self, details: Mapping[str, Any]) -> None:
        self.backends.registry.delete_alias(details["model"], details["alias"])

    def _write_profile_pointer(self, details: Mapping[str, Any]) -> None:
        self.backends.hub.set_profile_pointer(
            self.plan.env,
            int(details["profile"]),
            details["tag"],
            details["sha256"],
            deployment_id=self.deployment.deployment_id,
        )

    def _deploy_bot(self, details: Mapping[str, Any]) -> None:
        """Deploy the bot's pins, with the config id the config registry has now (created above)."""
        from tradai_release.errors import ConfigVersionNotFound
        from tradai_release.targets import DeployStamp

        spec = next(bot for bot in self.desired.bots if bot.key.name == details["bot"])
        strategy, digest = spec.pins.strategy, spec.pins.config_hash
        stored = self.backends.configs.find_by_hash(strategy, digest)
        if stored is None:
            raise ConfigVersionNotFound(strategy, f"hash {digest[:12]}")
        spec = replace(spec, pins=replace(spec.pins, config_id=stored.config_id))
        stamp_ = DeployStamp(self.plan.commit, self.deployment.deployment_id or "", self.deployment.trace_id)
        self.deployed[spec.key.name] = self.backends.target.deploy(spec, stamp_)

    def _wait_rollout(self, details: Mapping[str, Any]) -> None:
        keys = [bot.key for bot in self.desired.bots if bot.key.name in set(details["bots"])]
        self.backends.target.wait(keys)

    def _record_deployment(self, details: Mapping[str, Any]) -> None:
        assert self.plan.target is not None
        bots = dict(self.plan.target.bots)
        for name, running in self.deployed.items():
            bots[name] = (running.content_hash, running.revision)
        target = replace(
            self.plan.target,
            deployment_id=self.deployment.deployment_id or "",
            applied_at=stamp(),
            mirror_stages=self.plan.target.mirror_stages and self.stages_supported,
            bots=bots,
        )
        self.backends.releases.put(target.to_item(self.plan.env))


def _notify(settings: Settings, event: str, summary: str, details: Mapping[str, Any]) -> None:
    """Post to the webhook, if one is set; a failed notification never fails the apply."""
    from tradai_release.notify import notify

    notify(settings, event, summary, dict(details))
