"""Desired state of an environment at a git commit, and its live state read from the backends.

See docs/architecture.md §7.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import ValidationFailed
from tradai_release.engine.release_table import AppliedState, LeaseRecord, ReleaseTable, open_release_table
from tradai_release.registry.lifecycle import MANAGED_ALIAS

if TYPE_CHECKING:
    from tradai_release.configs.entities import ConfigVersion
    from tradai_release.configs.service import ConfigVersionService
    from tradai_release.core.settings import Settings
    from tradai_release.hub.hub import ModelHub
    from tradai_release.hub.manifest import TagManifest
    from tradai_release.hub.pointers import ProfilePointer
    from tradai_release.registry.adapter import ModelRegistry, ModelVersionInfo
    from tradai_release.repository.bots import BotKey, BotSpec
    from tradai_release.repository.environments import Environment
    from tradai_release.repository.manifest import ReleaseManifest
    from tradai_release.repository.policy import Policy
    from tradai_release.stores import KeyValueTable
    from tradai_release.targets import DeploymentTarget, RunningBot


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
    def from_settings(cls, settings: Settings, env: Environment) -> EngineBackends:
        """Every backend of ``env`` (clients are created lazily by each adapter)."""
        from tradai_release.configs.service import ConfigVersionService
        from tradai_release.hub.hub import ModelHub
        from tradai_release.registry.adapter import MlflowRegistry
        from tradai_release.targets import open_target

        return cls(
            env=env.name,
            configs=ConfigVersionService.for_env(env, settings),
            registry=MlflowRegistry.for_env(env, settings),
            hub=ModelHub.from_settings(settings),
            releases=open_release_table(settings, env),
            target=open_target(settings, env),
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
    policy: Policy = field(default_factory=lambda: _default_policy())

    @property
    def prune(self) -> bool:
        """policy.yaml's prune at the commit: apply retires what no manifest declares."""
        return self.policy.prune

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
    from tradai_release.repository.rules import validate_offline
    from tradai_release.repository.tree import ReleaseTree

    with ReleaseTree.at(repo_root, commit) as tree:
        repo = tree.load()
        problems = validate_offline(tree.tree, repo)
        resolved = str(tree.commit)
    if problems:
        raise ValidationFailed(problems)
    from tradai_release.repository.bots import CHALLENGER_ROLE, BotPins, BotSpec, image_reference

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
            if pin.model.staging is not None:
                # The challenger: the staging version, dry-run beside the production bot. Its files are the
                # version's own tag (its r2_tag), found when the live state is read (resolve_challengers).
                challenger = replace(pins, model_version=pin.model.staging, hub_tag="", hub_sha256="",
                                     role=CHALLENGER_ROLE)
                bots.append(BotSpec(challenger, cpu, memory))
    return DesiredState(
        env=env,
        commit=resolved,
        manifests=manifests,
        configs=dict(sorted(configs.items())),
        features=features,
        bots=tuple(sorted(bots, key=lambda bot: (bot.pins.profile, bot.pins.strategy, bot.pins.role))),
        policy=repo.policy,
    )


def _default_policy() -> Policy:
    from tradai_release.repository.policy import Policy

    return Policy()


# --- live ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveState:
    """The live values plan compares with the desired state.

    ``by_hash`` holds, for each strategy whose ACTIVE config is not the desired one, the stored
    version with the desired hash (None when there is none): read only for those strategies.
    ``active``, ``versions`` and ``pointers`` hold everything the environment's backends have, not
    only what the commit declares (aliased models, every profile pointer): prune compares the two.
    """

    active: Mapping[str, ConfigVersion]
    by_hash: Mapping[str, ConfigVersion | None]
    versions: Mapping[str, Sequence[ModelVersionInfo]]
    pointers: Mapping[int, ProfilePointer | None]
    applied: AppliedState | None
    bots: LiveBots = field(default_factory=lambda: LiveBots())
    lease: LeaseRecord | None = None  # an apply holding the environment's lock now


@dataclass(frozen=True)
class LiveBots:
    """What the environment's deployment target runs for each bot of the desired state.

    ``definition_hash`` is the target's (pure) hash of a spec, so planning compares like with like.
    """

    target: str = "none"
    running: Mapping[BotKey, RunningBot] = field(default_factory=dict)
    files: Mapping[BotKey, str] = field(default_factory=dict)  # each bot's own files' digest in its tag
    pulled: Mapping[BotKey, str] = field(default_factory=dict)  # the same in another tag a bot pulls from
    definition_hash: Callable[[BotSpec], str] = field(default=lambda spec: "", compare=False)
    waits: bool = False
    read: frozenset[str] = frozenset()  # names of the bots whose target was read
    undeclared: Mapping[BotKey, RunningBot] = field(default_factory=dict)  # running, declared by no manifest
    challenger_tags: Mapping[BotKey, tuple[str, str]] = field(default_factory=dict)  # (tag, sha256) of each

    def resolved(self, spec: BotSpec) -> BotSpec:
        """``spec`` with the hub tag its challenger pulls from (a production bot's is its manifest's)."""
        if spec.key not in self.challenger_tags:
            return spec
        tag, sha256 = self.challenger_tags[spec.key]
        return replace(spec, pins=replace(spec.pins, hub_tag=tag, hub_sha256=sha256))


def read_live(backends: EngineBackends, desired: DesiredState) -> LiveState:
    """Read the live state that matters for ``desired``.

    Calls: one config-table scan, one get per strategy whose ACTIVE config differs (hash lookup),
    one registry search of the models with aliases and one batched read of every model pinned now,
    at the last apply or carrying an alias this tool manages, one listing of the env's pointers and
    one get per listed one, one get each of the applied-state item and the lease, one tag read per
    distinct tag the bots pin, and the deployment target's batched
    read (ECS: one describe per 10 services, plus a task definition only when its revision is not the
    recorded one) and listing of the bots no manifest declares (ECS: one list per 100 services).
    """
    releases = ReleaseTable(backends.releases, desired.env)
    applied, lease = releases.applied(), releases.lease()
    active = backends.configs.active_by_strategy()
    by_hash: dict[str, ConfigVersion | None] = {}
    for name, config in desired.configs.items():
        current = active.get(name)
        if current is None or current.config_hash != config.config_hash:
            by_hash[name] = backends.configs.find_by_hash(name, config.config_hash)
    aliased = backends.registry.aliased_models()
    managed = {name for name, aliases in aliased.items() if any(MANAGED_ALIAS.match(a) for a in aliases)}
    names = set(desired.model_names) | set(applied.models if applied else ()) | managed
    versions = backends.registry.versions(sorted(names)) if names else {}
    hub = backends.hub
    listed = set(hub.pointer_profiles(desired.env))
    profiles = {manifest.profile for manifest in desired.manifests} | listed
    if applied is not None:
        profiles |= set(applied.pointers)
    pointers = {
        profile: hub.get_profile_pointer(desired.env, profile) if profile in listed else None
        for profile in sorted(profiles)
    }
    target = backends.target
    known = {revision: content for content, revision in (applied.bots.values() if applied else ())}
    keys = [bot.key for bot in desired.bots] if target.name != "none" else []
    running = target.read(keys, known=known) if keys else {}
    read = frozenset(key.name for key in keys)
    undeclared = target.undeclared(desired.env, keys) if target.name != "none" else {}
    specs = resolve_challengers(hub, versions, desired.bots) if keys else desired.bots
    files = bot_files(hub, specs) if keys else {}
    pulled = pulled_files(hub, specs, running)
    challengers = {s.key: (s.pins.hub_tag, s.pins.hub_sha256) for s in specs if s.key.challenger}
    bots = LiveBots(
        target.name, running, files, pulled, target.definition_hash, target.waits, read, undeclared,
        challengers,
    )
    return LiveState(
        active=active, by_hash=by_hash, versions=versions, pointers=pointers, applied=applied, bots=bots,
        lease=lease,
    )


def resolve_challengers(
    hub: ModelHub, versions: Mapping[str, Sequence[ModelVersionInfo]], specs: Sequence[BotSpec]
) -> tuple[BotSpec, ...]:
    """The bots with each challenger's hub tag filled in: its staging version's own tag (``r2_tag``,
    where training pushed its files) and that tag's stored manifest hash, read now (one read per tag).
    A staging version without a tag in the hub cannot run: one InputError naming the pin."""
    from tradai_release.core.errors import HubError, InputError
    from tradai_release.repository.manifest import manifest_path

    resolved: list[BotSpec] = []
    hashes: dict[str, str] = {}
    for spec in specs:
        pins = spec.pins
        if not spec.key.challenger or pins.hub_tag:
            resolved.append(spec)
            continue
        where = (manifest_path(pins.env, pins.profile), f"strategies.{pins.strategy}.model.staging")
        info = next((v for v in versions.get(pins.model_name, ()) if v.version == pins.model_version), None)
        tag = info.tags.get("r2_tag", "") if info is not None else ""
        if not tag:
            reason = (f"{pins.model_name} v{pins.model_version} names no model-hub tag (r2_tag): its "
                      "challenger bot has no files to run")
            raise InputError(*where, reason)
        if tag not in hashes:
            try:
                hashes[tag] = hub.tag_sha256(tag)
            except HubError as err:
                raise InputError(*where, f"the hub tag {tag} of v{pins.model_version}: {err}") from None
        resolved.append(replace(spec, pins=replace(pins, hub_tag=tag, hub_sha256=hashes[tag])))
    return tuple(resolved)


def bot_files(hub: ModelHub, specs: Iterable[BotSpec]) -> dict[BotKey, str]:
    """Each bot's own files in its pinned tag, by content digest (one tag read per distinct tag). A tag
    that cannot be read gives no digest: the bot is then pinned by its tag, and verification fails."""
    return files_in_tags(hub, [(spec.key, spec.pins.hub_tag, spec.pins.hub_sha256) for spec in specs])


def files_in_tags(hub: ModelHub, wanted: Iterable[tuple[BotKey, str, str]]) -> dict[BotKey, str]:
    """Per bot, the digest of its strategy's files in the tag (tag, manifest sha256) given for it; a bot
    whose tag cannot be read or holds no files of its strategy is left out."""
    from tradai_release.core.errors import HubError, InputError

    manifests: dict[tuple[str, str], TagManifest | None] = {}
    found: dict[BotKey, str] = {}
    for key, tag, sha256 in wanted:
        if (tag, sha256) not in manifests:
            try:
                manifests[(tag, sha256)] = hub.read_tag(tag, expected_sha256=sha256 or None)
            except (HubError, InputError):
                manifests[(tag, sha256)] = None
        manifest = manifests[(tag, sha256)]
        digest = strategy_digest(manifest, key.strategy) if manifest is not None else None
        if digest is not None:
            found[key] = digest
    return found


def pulled_files(
    hub: ModelHub, specs: Iterable[BotSpec], running: Mapping[BotKey, RunningBot]
) -> dict[BotKey, str]:
    """For each bot that pulls from another tag than its manifest's (kept since its files did not change,
    or edited by hand), the digest of its strategy's files in that tag ("" when it holds none)."""
    from tradai_release.repository.bots import HUB_SHA256, HUB_TAG

    elsewhere = []
    for spec in specs:
        variables = (bot.variables or {}) if (bot := running.get(spec.key)) is not None else {}
        tag, sha256 = variables.get(HUB_TAG, ""), variables.get(HUB_SHA256, "")
        if tag and (tag, sha256) != (spec.pins.hub_tag, spec.pins.hub_sha256):
            elsewhere.append((spec.key, tag, sha256))
    found = files_in_tags(hub, elsewhere)
    return {key: found.get(key, "") for key, _, _ in elsewhere}


def strategy_digest(manifest: TagManifest, strategy: str) -> str | None:
    """The content digest of ``strategy``'s files in a tag (as registration tags a version's files), or
    None when the tag holds none."""
    from tradai_release.registry.registrar import content_sha256

    prefix = f"{strategy}/"
    files = {
        path[len(prefix) :]: entry.sha256 for path, entry in manifest.files.items() if path.startswith(prefix)
    }
    return content_sha256(files) if files else None
