"""Desired state of an environment at a git commit, and its live state read from the backends.

See docs/architecture.md §7.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.errors import ValidationFailed

if TYPE_CHECKING:
    from tradai_release.bots import BotKey, BotSpec
    from tradai_release.configs.entities import ConfigVersion
    from tradai_release.configs.service import ConfigVersionService
    from tradai_release.environments import Environment
    from tradai_release.hub.hub import ModelHub
    from tradai_release.hub.pointers import ProfilePointer
    from tradai_release.manifest import ReleaseManifest
    from tradai_release.registry.adapter import ModelRegistry, ModelVersionInfo
    from tradai_release.settings import Settings
    from tradai_release.stores import KeyValueTable
    from tradai_release.targets import DeploymentTarget, RunningBot

RELEASE_TABLE = "releases"
"""Table name inside a SQLite file (a ``dynamodb://`` URI names the table itself)."""
RELEASE_PARTITION_KEY = "pk"
"""Partition key attribute of the release-state table: the environment."""
RELEASE_SORT_KEY = "sk"
"""Sort key attribute of the release-state table: what the item is (state, lock, deployment, journal)."""
RELEASE_TTL_ATTRIBUTE = "expires_at"
"""Epoch seconds after which DynamoDB may drop an item (an expired lock lease)."""
STATE_KEY = "#STATE"
"""Sort key of the item recording what the last apply left live (drift is measured against it)."""


def release_key(env: str, sort_key: str) -> dict[str, str]:
    """The key of an item of the release-state table (one partition per environment)."""
    return {RELEASE_PARTITION_KEY: env, RELEASE_SORT_KEY: sort_key}


@dataclass
class EngineBackends:
    """The live systems of one environment, built from settings or passed in by tests."""

    env: str
    configs: ConfigVersionService
    registry: ModelRegistry
    hub: ModelHub
    releases: KeyValueTable
    target: DeploymentTarget = field(default_factory=lambda: _no_target())

    @classmethod
    def from_settings(cls, settings: Settings, env: str | Environment) -> EngineBackends:
        """Every backend of ``env`` (clients are created lazily by each adapter)."""
        from tradai_release.configs.service import ConfigVersionService
        from tradai_release.environments import environment
        from tradai_release.hub.hub import ModelHub
        from tradai_release.registry.adapter import MlflowRegistry
        from tradai_release.stores import open_table
        from tradai_release.targets import open_target

        target = environment(settings, env)
        backends = target.backends
        releases = open_table(
            backends.release_table_uri,
            table=RELEASE_TABLE,
            partition_key=RELEASE_PARTITION_KEY,
            sort_key=RELEASE_SORT_KEY,
            aws=settings.aws(),
        )
        return cls(
            env=target.name,
            configs=ConfigVersionService.for_env(target, settings),
            registry=MlflowRegistry.for_env(target, settings),
            hub=ModelHub.from_settings(settings),
            releases=releases,
            target=open_target(settings, target),
        )


def _no_target() -> DeploymentTarget:
    from tradai_release.targets import NoTarget

    return NoTarget()


# --- desired -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesiredConfig:
    """A strategy's tradai.yaml at the commit: its hash and parsed content (interpolation as written)."""

    strategy: str
    config_hash: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class DesiredState:
    """What ``env`` should run according to the repository at ``commit``."""

    env: str
    commit: str
    manifests: tuple[ReleaseManifest, ...]
    configs: Mapping[str, DesiredConfig]
    features: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bots: tuple[BotSpec, ...] = ()  # one per profile x strategy; config ids are the live state's to say

    @property
    def model_names(self) -> list[str]:
        """Registered models pinned by any profile, sorted."""
        return sorted({pin.model.name for m in self.manifests for pin in m.strategies.values()})

    def manifest_pinning(self, model: str, version: int) -> tuple[ReleaseManifest, str, str] | None:
        """The first manifest pinning ``model`` ``version``, with the strategy and the field (for errors)."""
        for manifest in self.manifests:
            for name, pin in manifest.strategies.items():
                if pin.model.name != model:
                    continue
                if pin.model.production == version:
                    return manifest, name, "production"
                if pin.model.staging == version:
                    return manifest, name, "staging"
        return None


def load_desired(repo_root: Path | str, env: str, commit: str = "HEAD") -> DesiredState:
    """The desired state of ``env`` read from git objects at ``commit`` (nothing is checked out).

    The commit must pass offline validation: a plan is never made from a broken repository.
    """
    from tradai_release.repo import ReleaseTree
    from tradai_release.rules import validate_offline

    with ReleaseTree.at(repo_root, commit) as tree:
        repo = tree.load()
        problems = validate_offline(tree.tree, repo)
        resolved = str(tree.commit)
    if problems:
        raise ValidationFailed(problems)
    from tradai_release.bots import BotPins, BotSpec, image_reference

    manifests = tuple(repo.manifests_of(env))
    configs: dict[str, DesiredConfig] = {}
    features: dict[str, tuple[str, ...]] = {}
    bots: list[BotSpec] = []
    for manifest in manifests:
        for name, pin in manifest.strategies.items():
            spec = repo.strategies[name]
            configs[name] = DesiredConfig(name, spec.config_hash, spec.tradai)
            features[name] = tuple(spec.ml_config.features)
            cpu, memory = spec.resources
            pins = BotPins(
                env=env,
                profile=manifest.profile,
                strategy=name,
                config_id=None,
                config_hash=spec.config_hash,
                model_name=pin.model.name,
                model_version=pin.model.production,
                hub_tag=manifest.artifacts.tag,
                hub_sha256=manifest.artifacts.sha256,
                image=image_reference(spec.image_repository, pin.image or spec.version),
            )
            bots.append(BotSpec(pins, cpu, memory))
    return DesiredState(
        env=env,
        commit=resolved,
        manifests=manifests,
        configs=dict(sorted(configs.items())),
        features=features,
        bots=tuple(sorted(bots, key=lambda bot: (bot.pins.profile, bot.pins.strategy))),
    )


# --- applied (what the last apply left live) ------------------------------------------------------------


@dataclass(frozen=True)
class AppliedState:
    """What the last successful apply made live; a live value that differs from it is drift.

    ``lifecycle`` maps model -> version (as str) -> lifecycle for versions not in lifecycle None.
    ``pointers`` maps profile -> (tag, sha256). ``mirror_stages`` is False once the registry
    refused legacy stages, so plans stop asking for them.
    """

    commit: str
    deployment_id: str
    applied_at: str
    configs: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    lifecycle: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    pointers: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    mirror_stages: bool = True
    bots: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # bot name -> (content, revision)
    config_tags: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    """model -> version (str) -> its ``config.*`` tags, for every version an alias pins: the
    registry layer of the bots' config, so a bot starts without an MLflow client (§14)."""

    @property
    def models(self) -> list[str]:
        return sorted(set(self.aliases) | set(self.lifecycle))

    def to_item(self, env: str) -> dict[str, Any]:
        """The release-table item (JSON values only)."""
        return {
            **release_key(env, STATE_KEY),
            "commit": self.commit,
            "deployment_id": self.deployment_id,
            "applied_at": self.applied_at,
            "configs": dict(self.configs),
            "aliases": {name: dict(mapping) for name, mapping in self.aliases.items()},
            "lifecycle": {name: dict(mapping) for name, mapping in self.lifecycle.items()},
            "pointers": {str(profile): list(value) for profile, value in self.pointers.items()},
            "mirror_stages": self.mirror_stages,
            "bots": {name: list(value) for name, value in self.bots.items()},
            "config_tags": {
                name: {version: dict(tags) for version, tags in versions.items()}
                for name, versions in self.config_tags.items()
            },
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> AppliedState:
        return cls(
            commit=str(item["commit"]),
            deployment_id=str(item.get("deployment_id") or ""),
            applied_at=str(item.get("applied_at") or ""),
            configs={str(k): str(v) for k, v in dict(item.get("configs") or {}).items()},
            aliases={
                str(name): {str(a): int(v) for a, v in dict(mapping).items()}
                for name, mapping in dict(item.get("aliases") or {}).items()
            },
            lifecycle={
                str(name): {str(v): str(stage) for v, stage in dict(mapping).items()}
                for name, mapping in dict(item.get("lifecycle") or {}).items()
            },
            pointers={
                int(profile): (str(value[0]), str(value[1]))
                for profile, value in dict(item.get("pointers") or {}).items()
            },
            mirror_stages=bool(item.get("mirror_stages", True)),
            bots={str(name): (str(v[0]), str(v[1])) for name, v in dict(item.get("bots") or {}).items()},
            config_tags={
                str(name): {
                    str(version): {str(k): str(v) for k, v in dict(tags).items()}
                    for version, tags in dict(versions).items()
                }
                for name, versions in dict(item.get("config_tags") or {}).items()
            },
        )


# --- live ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveState:
    """The live values plan compares with the desired state.

    ``by_hash`` holds, for each strategy whose ACTIVE config is not the desired one, the stored
    version with the desired hash (None when there is none): read only for those strategies.
    """

    active: Mapping[str, ConfigVersion]
    by_hash: Mapping[str, ConfigVersion | None]
    versions: Mapping[str, Sequence[ModelVersionInfo]]
    pointers: Mapping[int, ProfilePointer | None]
    applied: AppliedState | None
    bots: LiveBots = field(default_factory=lambda: LiveBots())


@dataclass(frozen=True)
class LiveBots:
    """What the environment's deployment target runs for each bot of the desired state.

    ``definition_hash`` is the target's (pure) hash of a spec, so planning compares like with like.
    """

    target: str = "none"
    running: Mapping[BotKey, RunningBot] = field(default_factory=dict)
    definition_hash: Callable[[BotSpec], str] = field(default=lambda spec: "", compare=False)
    waits: bool = False
    read: frozenset[str] = frozenset()  # names of the bots whose target was read


def read_applied(releases: KeyValueTable, env: str) -> AppliedState | None:
    """The record of the last successful apply of ``env`` (one consistent get), or None."""
    item = releases.get(release_key(env, STATE_KEY))
    return AppliedState.from_item(item) if item is not None else None


def read_live(backends: EngineBackends, desired: DesiredState) -> LiveState:
    """Read the live state that matters for ``desired``.

    Calls: one config-table scan, one get per strategy whose ACTIVE config differs (hash lookup),
    one batched registry read of every model pinned now or at the last apply, one pointer get per
    profile, one get of the applied-state item, and the deployment target's batched read (ECS: one
    describe per 10 services, plus a task definition only when its revision is not the recorded one).
    """
    applied = read_applied(backends.releases, desired.env)
    active = backends.configs.active_by_strategy()
    by_hash: dict[str, ConfigVersion | None] = {}
    for name, config in desired.configs.items():
        current = active.get(name)
        if current is None or current.config_hash != config.config_hash:
            by_hash[name] = backends.configs.find_by_hash(name, config.config_hash)
    names = set(desired.model_names) | set(applied.models if applied else ())
    versions = backends.registry.versions(sorted(names)) if names else {}
    profiles = {manifest.profile for manifest in desired.manifests}
    if applied is not None:
        profiles |= set(applied.pointers)
    hub = backends.hub
    pointers = {profile: hub.get_profile_pointer(desired.env, profile) for profile in sorted(profiles)}
    target = backends.target
    known = {revision: content for content, revision in (applied.bots.values() if applied else ())}
    keys = [bot.key for bot in desired.bots] if target.name != "none" else []
    running = target.read(keys, known=known) if keys else {}
    read = frozenset(key.name for key in keys)
    bots = LiveBots(target.name, running, target.definition_hash, target.waits, read)
    return LiveState(
        active=active, by_hash=by_hash, versions=versions, pointers=pointers, applied=applied, bots=bots
    )
