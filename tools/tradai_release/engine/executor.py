"""The executor of a plan's actions: one action against the live systems, each safe to run twice.

``apply`` decides when an action runs (phases, lanes, lease, journal); this module only knows how.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from tradai_release.core.clock import stamp
from tradai_release.core.errors import HubIntegrityError
from tradai_release.engine.actions import (
    Action,
    ActivateConfig,
    CreateConfigVersion,
    DeleteAlias,
    DeployBot,
    LifecycleWrite,
    RecordDeployment,
    RetireAlias,
    RetireBot,
    RetireConfig,
    RetirePointer,
    SetAlias,
    UploadConfig,
    VerifyArtifacts,
    WaitRollout,
    WriteProfilePointer,
)
from tradai_release.engine.release_table import ReleaseTable

if TYPE_CHECKING:
    from tradai_release.engine.deployments import Deployment
    from tradai_release.engine.plan import Plan
    from tradai_release.engine.state import DesiredState, EngineBackends
    from tradai_release.targets import DeployStamp, RunningBot


class Executor:
    """Runs one action against the live systems; every action is safe to run twice."""

    def __init__(self, backends: EngineBackends, plan: Plan, deployment: Deployment) -> None:
        self.backends = backends
        self.plan = plan
        self.deployment = deployment
        self.stages_supported = True
        self.deployed: dict[str, RunningBot] = {}
        # A strategy's config id is looked up once per apply, not once per bot running it (its
        # version was created in an earlier phase and cannot change during this apply).
        self.config_ids: dict[tuple[str, str], str] = {}

    @property
    def desired(self) -> DesiredState:
        assert self.plan.desired is not None
        return self.plan.desired

    def run(self, action: Action) -> None:
        match action:
            case UploadConfig():
                self._upload_config(action)
            case CreateConfigVersion():
                self._create_config_version(action)
            case ActivateConfig():
                self._activate_config(action)
            case RetireConfig():
                self.backends.configs.deprecate(action.strategy, action.config_id)
            case VerifyArtifacts():
                self._verify_artifacts(action)
            case LifecycleWrite():  # set_lifecycle, archive_version, retire_version
                self._lifecycle(action)
            case SetAlias():
                assert action.version is not None
                self.backends.registry.set_alias(action.model, action.alias, action.version)
            case DeleteAlias() | RetireAlias():
                self.backends.registry.delete_alias(action.model, action.alias)
            case WriteProfilePointer():
                self.backends.hub.set_profile_pointer(
                    self.plan.env, action.profile, action.tag, action.sha256,
                    deployment_id=self.deployment.deployment_id,
                )
            case RetirePointer():
                self.backends.hub.delete_profile_pointer(self.plan.env, action.profile)
            case DeployBot():
                self._deploy_bot(action)
            case WaitRollout():
                self.backends.target.wait([b.key for b in self.desired.bots if b.key.name in action.bots])
            case RetireBot():
                self._retire_bot(action)
            case RecordDeployment():
                self._record_deployment()
            case _:
                raise TypeError(f"apply cannot run a {type(action).__name__}")

    def _upload_config(self, action: UploadConfig) -> None:
        config = self.desired.configs[action.strategy]
        self.backends.configs.repository.save(config.strategy, dict(config.data))

    def _create_config_version(self, action: CreateConfigVersion) -> None:
        config = self.desired.configs[action.strategy]
        self.backends.configs.create_version(
            strategy_name=config.strategy,
            config_data=dict(config.data),
            description=f"applied from git {self.plan.commit[:12]} ({self.deployment.deployment_id})",
            git_commit=self.plan.commit,
            trace_id=self.deployment.trace_id,
        )

    def _activate_config(self, action: ActivateConfig) -> None:
        from tradai_release.core.errors import ConfigVersionNotFound

        version = self.backends.configs.find_by_hash(action.strategy, action.config_hash)
        if version is None:
            raise ConfigVersionNotFound(action.strategy, f"hash {action.config_hash[:12]}")
        self.backends.configs.activate(action.strategy, version.config_id)

    def _verify_artifacts(self, action: VerifyArtifacts) -> None:
        # Deep: a same-size blob with other bytes must not become live; the store's checksums
        # make this a HEAD per blob, and only tags this apply pins are checked.
        problems = self.backends.hub.verify_tag(action.tag, action.sha256, deep=True)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise HubIntegrityError(f"tag {action.tag}", problems[0] + more)

    def _lifecycle(self, action: LifecycleWrite) -> None:
        registry = self.backends.registry
        for key, value in action.tags.items():
            if value is None:
                registry.delete_version_tag(action.model, action.version, key)
            else:
                registry.set_version_tag(action.model, action.version, key, str(value))
        stage = action.stage
        if stage and self.stages_supported and not registry.set_stage(action.model, action.version, stage):
            self.stages_supported = False

    def _deploy_bot(self, action: DeployBot) -> None:
        """Deploy the bot's pins, with the config id the config registry has now (created above)."""
        from tradai_release.core.errors import ConfigVersionNotFound

        spec = next(bot for bot in self.desired.bots if bot.key.name == action.bot)
        strategy, digest = spec.pins.strategy, spec.pins.config_hash
        config_id = self.config_ids.get((strategy, digest))
        if config_id is None:
            stored = self.backends.configs.find_by_hash(strategy, digest)
            if stored is None:
                raise ConfigVersionNotFound(strategy, f"hash {digest[:12]}")
            config_id = self.config_ids.setdefault((strategy, digest), stored.config_id)
        # The plan's tag: a challenger's is its version's own tag, read when the plan was made.
        pins = replace(spec.pins, config_id=config_id, files_sha256=action.files_sha256 or "",
                       hub_tag=action.tag, hub_sha256=action.sha256)
        spec = replace(spec, pins=pins)
        self.deployed[spec.key.name] = self.backends.target.deploy(spec, self._stamp())

    def _retire_bot(self, action: RetireBot) -> None:
        from tradai_release.repository.bots import PRODUCTION_ROLE, BotKey, parse_bot_name

        parsed = parse_bot_name(action.bot)
        role = parsed[2] if parsed is not None else PRODUCTION_ROLE
        key = BotKey(self.plan.env, action.profile, action.strategy, role)
        self.backends.target.retire(key, self._stamp())

    def _stamp(self) -> DeployStamp:
        from tradai_release.targets import DeployStamp

        return DeployStamp(self.plan.commit, self.deployment.deployment_id or "", self.deployment.trace_id)

    def _record_deployment(self) -> None:
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
        ReleaseTable(self.backends.releases, self.plan.env).record_applied(target)
