"""The Plan: ordered, reasoned actions that make an environment's live state match a commit.

See docs/architecture.md §7.

``build_plan`` is pure (desired + live -> Plan); ``plan_env`` reads both and calls it. Only
``apply`` executes a plan's actions; showing a plan writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tradai_release.clock import stamp, utc_now
from tradai_release.configs.loader import TAG_PREFIX as CONFIG_TAG_PREFIX
from tradai_release.errors import InputError, ValidationFailed
from tradai_release.registry.lifecycle import (
    ARCHIVED,
    NONE,
    PRODUCTION,
    STAGING,
    DesiredLifecycle,
    ProfilePin,
    current_lifecycle,
    derive_lifecycle,
    was_production,
)

if TYPE_CHECKING:
    from tradai_release.bots import BotSpec
    from tradai_release.engine.state import AppliedState, DesiredState, EngineBackends, LiveState
    from tradai_release.environments import Environment
    from tradai_release.equity import EquityCurve
    from tradai_release.policy import PolicyVerdict
    from tradai_release.registry.adapter import ModelVersionInfo
    from tradai_release.registry.comparator import Comparison
    from tradai_release.settings import Settings
    from tradai_release.targets import RunningBot

# Action kinds, in the order apply runs them (a plan lists them in this order).
VERIFY_ARTIFACTS = "verify_artifacts"  # read-only, first: a bad tag stops apply before any write
UPLOAD_CONFIG = "upload_config"
CREATE_VERSION = "create_config_version"
ACTIVATE_CONFIG = "activate_config"
SET_LIFECYCLE = "set_lifecycle"  # a version entering Production / Staging (before aliases point at it)
SET_ALIAS = "set_alias"
DELETE_ALIAS = "delete_alias"
ARCHIVE_VERSION = "archive_version"  # a version leaving Production (after aliases moved away)
WRITE_POINTER = "write_profile_pointer"
DEPLOY_BOT = "deploy_bot"  # after pins, aliases and pointers: a bot that starts finds the new values
WAIT_ROLLOUT = "wait_rollout"
# Prune: what no manifest of the env declares any more, retired after everything declared is live.
# Bots stop first, so nothing running reads the aliases, pointer and config retired after them.
RETIRE_BOT = "retire_bot"  # scale the deployment to zero
RETIRE_ALIAS = "retire_alias"  # delete the alias of a deleted profile or a strategy no profile runs
RETIRE_VERSION = "retire_version"  # archive a version only such aliases held (after they are gone)
RETIRE_POINTER = "retire_pointer"  # delete a deleted profile's hub pointer
RETIRE_CONFIG = "retire_config"  # deprecate (with its TTL) the ACTIVE config of a strategy no profile runs
RECORD_DEPLOYMENT = "record_deployment"

ACTION_KINDS: tuple[str, ...] = (
    VERIFY_ARTIFACTS,
    UPLOAD_CONFIG,
    CREATE_VERSION,
    ACTIVATE_CONFIG,
    SET_LIFECYCLE,
    SET_ALIAS,
    DELETE_ALIAS,
    ARCHIVE_VERSION,
    WRITE_POINTER,
    DEPLOY_BOT,
    WAIT_ROLLOUT,
    RETIRE_BOT,
    RETIRE_ALIAS,
    RETIRE_VERSION,
    RETIRE_POINTER,
    RETIRE_CONFIG,
    RECORD_DEPLOYMENT,
)
RETIRE_KINDS: tuple[str, ...] = (RETIRE_BOT, RETIRE_ALIAS, RETIRE_VERSION, RETIRE_POINTER, RETIRE_CONFIG)


@dataclass(frozen=True)
class Action:
    """One idempotent change to a live system; ``details`` are JSON values (read-only)."""

    kind: str
    target: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "reason": self.reason, **_plain(self.details)}


@dataclass(frozen=True)
class Drift:
    """A live value that differs from what the last apply left there: someone changed it by hand."""

    kind: str  # config | alias | lifecycle | stage | pointer | deployment
    target: str
    expected: Any
    actual: Any
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "expected": _plain(self.expected),
            "actual": _plain(self.actual),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ModelChange:
    """A profile's pin moving to another version: the challenger judged against the champion."""

    profile: int
    model: str
    alias: str
    champion: int | None
    challenger: int
    champion_metrics: Mapping[str, float]
    challenger_metrics: Mapping[str, float]
    rollback: bool  # the challenger was Production before: no comparison is required
    comparison: Comparison
    champion_equity: EquityCurve | None = None  # held-out backtest curves, from the versions' tags
    challenger_equity: EquityCurve | None = None


@dataclass(frozen=True)
class Plan:
    """What ``apply`` would do to ``env`` to make it match ``commit``. Immutable.

    ``target`` is the state the live systems will be in afterwards (recorded by apply, and
    the reference that later plans measure drift against); ``desired`` carries the config
    bodies apply uploads. Neither is part of ``to_dict``. ``orphans`` are the retire actions
    that policy.yaml's ``prune: false`` leaves undone (with ``prune`` they are among ``actions``):
    shown as a warning, never executed, and not counted by ``empty``.
    """

    env: str
    commit: str
    actions: tuple[Action, ...]
    drift: tuple[Drift, ...]
    model_changes: tuple[ModelChange, ...] = ()
    orphans: tuple[Action, ...] = ()
    prune: bool = False
    applied_commit: str | None = None
    created_at: str = ""
    target: AppliedState | None = field(default=None, repr=False, compare=False)
    desired: DesiredState | None = field(default=None, repr=False, compare=False)
    verdicts: tuple[PolicyVerdict, ...] = ()  # policy.yaml on applying it now (engine.admission.judged_plan)

    @property
    def empty(self) -> bool:
        """True when live already matches the commit (no drift either); orphans left by ``prune:
        false`` do not count: nothing is to be done about them."""
        return not self.actions

    def to_dict(self) -> dict[str, Any]:
        """``{"env", "commit", "actions": [...], "drift": [...], "orphans": [...], "prune"}``
        (docs/architecture.md §10), and ``"policy": [...]`` when releases/policy.yaml judged it."""
        data = {
            "env": self.env,
            "commit": self.commit,
            "actions": [action.to_dict() for action in self.actions],
            "drift": [entry.to_dict() for entry in self.drift],
            "orphans": [action.to_dict() for action in self.orphans],
            "prune": self.prune,
        }
        if self.verdicts:
            data["policy"] = [verdict.to_dict() for verdict in self.verdicts]
        return data

    @property
    def blocked(self) -> bool:
        """True when a policy verdict blocks applying the plan now."""
        return any(verdict.blocked for verdict in self.verdicts)

    def profiles(self) -> list[int]:
        """Profiles some action concerns (for per-profile rendering)."""
        found = {int(a.details["profile"]) for a in self.actions if "profile" in a.details}
        found |= {p for a in self.actions for p in a.details.get("profiles", ())}
        return sorted(found)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- planning ------------------------------------------------------------------------------------------


def plan_env(
    settings: Settings,
    env: str | Environment,
    *,
    commit: str = "HEAD",
    repo: Path | str | None = None,
    backends: EngineBackends | None = None,
) -> Plan:
    """The plan that makes ``env`` match ``commit`` of the repository (default ``settings.repo``)."""
    from tradai_release.engine.state import EngineBackends, load_desired, read_live
    from tradai_release.environments import environment

    target = environment(settings, env)  # an unknown env is one clear line before anything is read
    desired = load_desired(repo if repo is not None else settings.repo, target.name, commit)
    backends = backends or EngineBackends.from_settings(settings, target)
    return build_plan(desired, read_live(backends, desired))


def build_plan(desired: DesiredState, live: LiveState, *, now: datetime | None = None) -> Plan:
    """Compare desired and live state; pure. Raises InputError when a pinned version is missing."""
    from tradai_release.engine.state import AppliedState

    moment = now or utc_now()
    applied = live.applied
    mirror = applied.mirror_stages if applied is not None else True
    env = desired.env

    config_actions = _config_actions(desired, live)
    pins = [
        ProfilePin(m.profile, pin.model.name, pin.model.production, pin.model.staging)
        for m in desired.manifests
        for pin in m.strategies.values()
    ]
    history = {name: list(live.versions.get(name, ())) for name in live.versions}
    # promote --no-archive records the replaced version in keep_production: it stays Production.
    keep = {
        (pin.model.name, version)
        for m in desired.manifests
        for pin in m.strategies.values()
        for version in pin.model.keep_production
    }
    lifecycle = derive_lifecycle(pins, history, keep=keep, now=moment, mirror_stages=mirror)
    _refuse_missing(desired, lifecycle)
    tracked = set(desired.model_names) | set(applied.models if applied is not None else ())
    undeclared = _Undeclared.find(desired, lifecycle, history, tracked)
    promote, demote = _lifecycle_actions(lifecycle, history, applied)
    demote, retire_versions = undeclared.split_versions(demote, env)
    alias_actions, retire_aliases = undeclared.split_aliases(_alias_actions(lifecycle, applied), env)
    pointer_actions = _pointer_actions(desired, live)

    touched = {int(a.details["profile"]) for a in pointer_actions}
    touched |= {int(a.details["profile"]) for a in alias_actions}
    verify_actions = _verify_actions(desired, touched)

    bot_actions, bots = _bot_actions(desired, live)
    stopped, retire_bots = _retire_bots(desired, live)
    actions = [
        *verify_actions, *config_actions, *promote, *alias_actions, *demote, *pointer_actions, *bot_actions,
        *stopped,
    ]
    retire = [
        *retire_bots,
        *retire_aliases,
        *retire_versions,
        *_retire_pointers(desired, live),
        *_retire_configs(desired, live),
    ]
    if desired.prune:
        actions += retire
    # Without prune the record keeps what it left alone as it is (no false drift), and never takes in a
    # model only found through its live aliases (it stays outside this env's record until retired).
    kept = {(a.details["model"], int(a.details["version"])) for a in retire_versions if not desired.prune}
    untracked = set() if desired.prune else set(history) - tracked
    target = AppliedState(
        commit=desired.commit,
        deployment_id="",
        applied_at="",
        configs={name: config.config_hash for name, config in desired.configs.items()},
        aliases={name: dict(mapping) for name, mapping in lifecycle.aliases.items()},
        lifecycle=_target_lifecycle(lifecycle, kept, untracked),
        pointers={m.profile: (m.artifacts.tag, m.artifacts.sha256) for m in desired.manifests},
        mirror_stages=mirror,
        bots=bots,
        config_tags=_config_tags(lifecycle.aliases, history),
    )
    unrecorded = not _same_live_values(applied, target)
    if actions or unrecorded:
        reason = f"record {desired.commit[:12]} as the last applied commit of {env}"
        if not actions and retire and not desired.prune:
            reason += f" (what it declares is live; {len(retire)} orphan(s) left as they are: prune is off)"
        elif not actions:
            reason += " (the last apply stopped before recording what it made live)"
        actions.append(
            Action(
                RECORD_DEPLOYMENT,
                env,
                reason,
                {"commit": desired.commit, "previous": applied.commit if applied else None},
            )
        )
    return Plan(
        env=env,
        commit=desired.commit,
        actions=tuple(actions),
        drift=tuple(find_drift(live)),
        model_changes=tuple(_model_changes(lifecycle, history, applied)),
        orphans=() if desired.prune else tuple(retire),
        prune=desired.prune,
        applied_commit=applied.commit if applied else None,
        created_at=stamp(moment),
        target=target,
        desired=desired,
    )


def _config_tags(
    aliases: Mapping[str, Mapping[str, int]], history: Mapping[str, Sequence[ModelVersionInfo]]
) -> dict[str, dict[str, dict[str, str]]]:
    """The ``config.*`` tags of every aliased version, recorded with the apply for the bots."""
    snapshot: dict[str, dict[str, dict[str, str]]] = {}
    for name, mapping in aliases.items():
        versions = {info.version: info for info in history.get(name, ())}
        for version in sorted(set(mapping.values())):
            info = versions.get(version)
            if info is not None:
                tags = {k: v for k, v in info.tags.items() if k.startswith(CONFIG_TAG_PREFIX)}
                snapshot.setdefault(name, {})[str(version)] = tags
    return snapshot


def _same_live_values(applied: AppliedState | None, target: AppliedState) -> bool:
    """True when the record of the last apply already describes ``target`` (the commit may differ).

    The config tags snapshot is not compared: it is recorded with the apply that moves an alias.
    """
    if applied is None:
        return not (target.configs or target.aliases or target.lifecycle or target.pointers)
    return (
        dict(applied.configs) == dict(target.configs)
        and {k: dict(v) for k, v in applied.aliases.items()}
        == {k: dict(v) for k, v in target.aliases.items()}
        and {k: dict(v) for k, v in applied.lifecycle.items()}
        == {k: dict(v) for k, v in target.lifecycle.items()}
        and dict(applied.pointers) == dict(target.pointers)
        and {name: value[0] for name, value in applied.bots.items()}
        == {name: value[0] for name, value in target.bots.items()}
    )


def _config_actions(desired: DesiredState, live: LiveState) -> list[Action]:
    applied = live.applied
    uploads: list[Action] = []
    creates: list[Action] = []
    activations: list[Action] = []
    for name, config in desired.configs.items():
        digest = config.config_hash
        current = live.active.get(name)
        if current is not None and current.config_hash == digest:
            continue
        if current is None:
            reason = f"{name} has no ACTIVE config in {desired.env} yet"
        elif applied is not None and applied.configs.get(name) == digest:
            reason = f"drift: {current.config_id} was activated outside git; restore the committed config"
        else:
            reason = f"tradai.yaml of {name} changed: {current.config_hash[:12]} -> {digest[:12]}"
        stored = live.by_hash.get(name)
        base = {"strategy": name, "config_hash": digest}
        if stored is None:
            uploads.append(
                Action(
                    UPLOAD_CONFIG,
                    f"configs/{name}/{digest[:12]}",
                    f"no stored body of config {digest[:12]}",
                    {**base, "key": f"configs/{name}/{digest}.json"},
                )
            )
            creates.append(
                Action(CREATE_VERSION, f"{name}", f"no version of {name} has hash {digest[:12]}", base)
            )
        activations.append(
            Action(
                ACTIVATE_CONFIG,
                name,
                reason,
                {
                    **base,
                    "config_id": stored.config_id if stored is not None else None,
                    "previous": current.config_id if current is not None else None,
                },
            )
        )
    return uploads + creates + activations


def _refuse_missing(desired: DesiredState, lifecycle: DesiredLifecycle) -> None:
    problems = []
    for model, version in lifecycle.missing:
        found = desired.manifest_pinning(model, version)
        if found is None:
            continue
        manifest, strategy, which = found
        problems.append(
            InputError(
                manifest.path,
                f"strategies.{strategy}.model.{which}",
                f"version {version} of registered model {model!r} is not in the {desired.env} registry",
            )
        )
    if problems:
        raise ValidationFailed(problems)


def _lifecycle_actions(
    lifecycle: DesiredLifecycle,
    history: Mapping[str, Sequence[ModelVersionInfo]],
    applied: AppliedState | None,
) -> tuple[list[Action], list[Action]]:
    """Tag and stage writes grouped per version: entering versions first, leaving ones last."""
    tags: dict[tuple[str, int], dict[str, str | None]] = {}
    stages: dict[tuple[str, int], str] = {}
    for change in lifecycle.tag_changes:
        tags.setdefault((change.name, change.version), {})[change.key] = change.value
    for stage in lifecycle.stage_changes:
        stages[(stage.name, stage.version)] = stage.desired
    promote: list[Action] = []
    demote: list[Action] = []
    for entry in lifecycle.versions:
        key = (entry.name, entry.version)
        if key not in tags and key not in stages:
            continue
        info = _find(history, entry.name, entry.version)
        recorded = (
            applied.lifecycle.get(entry.name, {}).get(str(entry.version), NONE)
            if applied is not None
            else None
        )
        if entry.current != entry.desired:
            reason = f"{entry.current} -> {entry.desired} (derived from the {_pins_word(entry.desired)})"
            if recorded == entry.desired:
                reason = f"drift: lifecycle was changed by hand to {entry.current}; restore {entry.desired}"
        elif key in stages and info is not None:
            reason = f"mirror lifecycle {entry.desired} to the legacy stage (now {info.stage})"
        else:
            reason = f"lifecycle tags of a {entry.desired} version"
        details: dict[str, Any] = {
            "model": entry.name,
            "version": entry.version,
            "from": entry.current,
            "to": entry.desired,
            "tags": tags.get(key, {}),
            "stage": stages.get(key),
        }
        kind = ARCHIVE_VERSION if entry.desired == ARCHIVED else SET_LIFECYCLE
        action = Action(kind, f"{entry.name}/v{entry.version}", reason, details)
        (promote if entry.desired in (PRODUCTION, STAGING) else demote).append(action)
    return promote, demote


def _pins_word(stage: str) -> str:
    if stage == PRODUCTION:
        return "production pin"
    if stage == STAGING:
        return "staging pin"
    if stage == ARCHIVED:
        return "pins: no profile runs it any more"
    return "pins"


def _find(
    history: Mapping[str, Sequence[ModelVersionInfo]], name: str, version: int
) -> ModelVersionInfo | None:
    for info in history.get(name, ()):
        if info.version == version:
            return info
    return None


def _alias_profile(alias: str) -> int:
    return int(alias[1:].split("-", 1)[0])


def _alias_actions(lifecycle: DesiredLifecycle, applied: AppliedState | None) -> list[Action]:
    actions = []
    for change in lifecycle.alias_changes:
        profile = _alias_profile(change.alias)
        recorded = applied.aliases.get(change.name, {}).get(change.alias) if applied is not None else None
        which = "staging" if change.alias.endswith("-staging") else "production"
        if change.version is None:
            reason = f"profile {profile} no longer pins a {which} version of {change.name}"
        elif applied is not None and recorded == change.version and change.previous != recorded:
            moved = f"v{change.previous}" if change.previous is not None else "nothing"
            reason = f"drift: alias was moved by hand to {moved}; restore v{change.version}"
        else:
            was = f"v{change.previous}" if change.previous is not None else "unset"
            reason = f"profile {profile} pins {which} v{change.version} (live: {was})"
        details = {
            "model": change.name,
            "alias": change.alias,
            "profile": profile,
            "version": change.version,
            "previous": change.previous,
        }
        kind = DELETE_ALIAS if change.version is None else SET_ALIAS
        actions.append(Action(kind, f"{change.name}@{change.alias}", reason, details))
    return actions


def _pointer_actions(desired: DesiredState, live: LiveState) -> list[Action]:
    actions = []
    applied = live.applied
    for manifest in desired.manifests:
        tag, sha = manifest.artifacts.tag, manifest.artifacts.sha256
        pointer = live.pointers.get(manifest.profile)
        current = (pointer.tag, pointer.sha256) if pointer is not None else None
        if current == (tag, sha):
            continue
        if current is None:
            reason = f"profile {manifest.profile} has no approved revision yet"
        elif applied is not None and applied.pointers.get(manifest.profile) == (tag, sha):
            reason = f"drift: pointer was rewritten to {current[0]}; restore {tag}"
        else:
            reason = f"profile {manifest.profile} moves to tag {tag} (live: {current[0]})"
        actions.append(
            Action(
                WRITE_POINTER,
                f"{desired.env}/profile-{manifest.profile}",
                reason,
                {
                    "profile": manifest.profile,
                    "tag": tag,
                    "sha256": sha,
                    "previous": list(current) if current is not None else None,
                },
            )
        )
    return actions


def _verify_actions(desired: DesiredState, profiles: set[int]) -> list[Action]:
    by_tag: dict[tuple[str, str], list[int]] = {}
    for manifest in desired.manifests:
        if manifest.profile in profiles:
            key = (manifest.artifacts.tag, manifest.artifacts.sha256)
            by_tag.setdefault(key, []).append(manifest.profile)
    return [
        Action(
            VERIFY_ARTIFACTS,
            f"hub/{tag}",
            f"check tag {tag} (sha256 and every file's content) "
            f"before profiles {', '.join(map(str, found))} move",
            {"tag": tag, "sha256": sha, "profiles": found},
        )
        for (tag, sha), found in sorted(by_tag.items())
    ]


def _bot_actions(desired: DesiredState, live: LiveState) -> tuple[list[Action], dict[str, tuple[str, str]]]:
    """A deploy per bot whose target does not run its pins, then one wait for the rollouts started.

    Returns the actions and the bots' target record (name -> (content hash, revision)); a bot that
    is deployed by this apply has its revision (and, while its config is not stored yet, its content
    hash) left empty for apply to fill in.
    """
    bots = live.bots
    if bots.target == "none":
        return [], {}
    applied = live.applied
    recorded = applied.bots if applied is not None else {}
    actions: list[Action] = []
    record: dict[str, tuple[str, str]] = {}
    for spec in desired.bots:
        key = spec.key
        config_id = _stored_config_id(live, key.strategy, spec.pins.config_hash)
        spec = replace(spec, pins=replace(spec.pins, config_id=config_id))
        digest = bots.definition_hash(spec) if config_id is not None else ""
        running = bots.running.get(key)
        if running is not None and not running.retired and digest and running.content_hash == digest:
            record[key.name] = (digest, running.revision)
            continue
        record[key.name] = (digest, "")
        if running is None:
            reason = f"{key.name} is not deployed to {bots.target} yet"
        elif running.retired:
            reason = f"{running.where or key.name} is scaled to zero (retired); run it again"
        elif digest and recorded.get(key.name, ("", ""))[0] == digest:
            reason = f"drift: {running.where} runs {running.revision[-40:]}, not what the last apply set"
        else:
            reason = _pins_change(spec, running)
        pins = spec.pins
        details = {
            "bot": key.name,
            "profile": key.profile,
            "strategy": key.strategy,
            "target": bots.target,
            "content_sha256": digest or None,
            "config_hash": pins.config_hash,
            "config_id": pins.config_id,
            "model": pins.model_name,
            "version": pins.model_version,
            "tag": pins.hub_tag,
            "sha256": pins.hub_sha256,
            "image": pins.image,
            "previous": running.revision if running is not None else None,
        }
        actions.append(Action(DEPLOY_BOT, f"{desired.env}/{key.name}", reason, details))
    if actions and bots.waits:
        names = [str(a.details["bot"]) for a in actions]
        actions.append(
            Action(
                WAIT_ROLLOUT,
                f"{desired.env}/{bots.target}",
                f"wait until {len(names)} rollout(s) are stable (a failed one is rolled back, apply fails)",
                {"bots": names},
            )
        )
    return actions, record


def _stored_config_id(live: LiveState, strategy: str, digest: str) -> str | None:
    """The id of the stored config version with ``digest`` (None until apply creates it)."""
    active = live.active.get(strategy)
    if active is not None and active.config_hash == digest:
        return active.config_id
    stored = live.by_hash.get(strategy)
    return stored.config_id if stored is not None else None


def _pins_change(spec: BotSpec, running: RunningBot) -> str:
    """What moves for a deployed bot, named by variable where the target's variables were read."""
    before = running.variables or {}
    after = spec.pins.variables()
    changed = [
        f"{name.removeprefix('TRADAI_').lower()} {_brief(before.get(name)) or '-'} -> "
        f"{_brief(after[name]) or '(new)'}"
        for name in after
        if before and before.get(name) != after[name]
    ]
    if changed:
        return f"{spec.key.name}: " + ", ".join(changed)
    pins = spec.pins
    return (f"{spec.key.name} moves to {pins.model_name} v{pins.model_version}, tag {pins.hub_tag}, "
            f"config {pins.config_hash[:12]}")


def _brief(value: str | None) -> str:
    """A hash shortened to 12 characters (a reason stays one readable line)."""
    text = value or ""
    return text[:12] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def _target_lifecycle(
    lifecycle: DesiredLifecycle, kept: set[tuple[str, int]], untracked: set[str]
) -> dict[str, dict[str, str]]:
    """Each version's lifecycle after apply: the derived one, or for ``kept`` versions (orphans that
    prune leaves alone) the current one; ``untracked`` models are left out."""
    result: dict[str, dict[str, str]] = {}
    for entry in lifecycle.versions:
        if entry.name in untracked:
            continue
        value = entry.current if (entry.name, entry.version) in kept else entry.desired
        if value != NONE:
            result.setdefault(entry.name, {})[str(entry.version)] = value
    return result


# --- prune: what the backends hold for the env that no manifest declares ---------------------------------


@dataclass(frozen=True)
class _Undeclared:
    """The registry's part of prune: live aliases no manifest declares, and the versions they hold.

    An alias is undeclared when its profile has no manifest in the env, or when its model is pinned
    by no manifest and either the strategy it was registered for (version tag ``strategy_name``) is
    run by no profile or no apply of this env recorded the model (found only through its aliases). A
    model that an apply recorded and that a strategy still in the env stopped pinning (the strategy
    moved to another model) is an ordinary pin change, not prune.
    """

    profiles: frozenset[int]
    models: frozenset[str]  # models of strategies no profile runs, or found only through their aliases
    found: frozenset[str]  # those found only through their aliases (no apply of the env recorded them)
    aliases: frozenset[tuple[str, str]]  # (model, alias)
    held: frozenset[tuple[str, int]]  # versions of those models, or at those aliases

    @classmethod
    def find(
        cls,
        desired: DesiredState,
        lifecycle: DesiredLifecycle,
        history: Mapping[str, Sequence[ModelVersionInfo]],
        tracked: set[str],
    ) -> _Undeclared:
        profiles = frozenset(m.profile for m in desired.manifests)
        pinned = set(desired.model_names)
        models = frozenset(
            name
            for name, listed in history.items()
            if name not in pinned and (name not in tracked or _registered_for(listed) not in desired.configs)
        )
        aliases: set[tuple[str, str]] = set()
        held = {(name, info.version) for name in models for info in history[name]}
        for change in lifecycle.alias_changes:
            gone = _alias_profile(change.alias) not in profiles or change.name in models
            if change.version is None and gone:
                aliases.add((change.name, change.alias))
                if change.previous is not None:
                    held.add((change.name, change.previous))
        return cls(profiles, models, frozenset(models - tracked), frozenset(aliases), frozenset(held))

    def split_aliases(self, actions: list[Action], env: str) -> tuple[list[Action], list[Action]]:
        """(ordinary alias actions, retire_alias actions)."""
        ordinary, retire = [], []
        for action in actions:
            model, alias = action.details["model"], action.details["alias"]
            if (model, alias) not in self.aliases:
                ordinary.append(action)
                continue
            profile = int(action.details["profile"])
            if profile not in self.profiles:
                reason = f"profile {profile} has no manifest in {env} any more"
            else:
                reason = self._why(model, env)
            retire.append(replace(action, kind=RETIRE_ALIAS, reason=reason))
        return ordinary, retire

    def split_versions(self, actions: list[Action], env: str) -> tuple[list[Action], list[Action]]:
        """(ordinary lifecycle actions, retire_version actions): a version leaving its lifecycle because
        only undeclared aliases or strategies still held it. A model found only through its aliases
        gets no other write (its tags are not this environment's to tidy)."""
        ordinary, retire = [], []
        for action in actions:
            d = action.details
            if d["model"] in self.found and d["from"] == d["to"]:
                continue
            if (d["model"], int(d["version"])) not in self.held or d["from"] == d["to"]:
                ordinary.append(action)
                continue
            if d["model"] in self.models:
                why = self._why(d["model"], env)
            else:
                why = "only aliases of profiles without a manifest held it"
            retire.append(replace(action, kind=RETIRE_VERSION, reason=f"{d['from']} -> {d['to']}: {why}"))
        return ordinary, retire


    def _why(self, model: str, env: str) -> str:
        if model in self.found:
            return f"no manifest of {env} pins {model} (found through its live aliases)"
        return f"no profile of {env} runs the strategy of {model} any more"


def _registered_for(listed: Sequence[ModelVersionInfo]) -> str | None:
    """The strategy a model's newest version was registered for (tag ``strategy_name``), if any."""
    for info in sorted(listed, key=lambda info: info.version, reverse=True):
        if info.tags.get("strategy_name"):
            return info.tags["strategy_name"]
    return None


def _retire_bots(desired: DesiredState, live: LiveState) -> tuple[list[Action], list[Action]]:
    """Scale to zero each bot the target runs that no manifest declares: (stopped, prune).

    A bot whose strategy left a profile that still has a manifest, while other profiles of the env
    still run the strategy, was stopped by that manifest's change: it goes in the same apply, like
    the profile's alias (``stopped``). A bot of a deleted profile or of a strategy no profile runs any
    more is prune's (``prune``), like that profile's or strategy's aliases.
    """
    profiles = {m.profile for m in desired.manifests}
    stopped: list[Action] = []
    prune: list[Action] = []
    for key, running in sorted(live.bots.undeclared.items(), key=lambda item: item[0].name):
        if key.profile not in profiles:
            reason = f"profile {key.profile} has no manifest in {desired.env} any more"
        elif key.strategy not in desired.configs:
            reason = f"no profile of {desired.env} runs {key.strategy} any more"
        else:
            reason = f"profile {key.profile} no longer runs {key.strategy}"
        details = {
            "bot": key.name,
            "profile": key.profile,
            "strategy": key.strategy,
            "deployed_on": live.bots.target,  # not "target": that key is the action's own
            "revision": running.revision,
            "where": running.where,
        }
        action = Action(RETIRE_BOT, f"{desired.env}/{key.name}", reason, details)
        (stopped if key.profile in profiles and key.strategy in desired.configs else prune).append(action)
    return stopped, prune


def _retire_pointers(desired: DesiredState, live: LiveState) -> list[Action]:
    """Delete the hub pointer of each profile that has no manifest any more."""
    profiles = {m.profile for m in desired.manifests}
    return [
        Action(
            RETIRE_POINTER,
            f"{desired.env}/profile-{profile}",
            f"profile {profile} has no manifest in {desired.env} any more",
            {"profile": profile, "tag": pointer.tag, "sha256": pointer.sha256},
        )
        for profile, pointer in sorted(live.pointers.items())
        if pointer is not None and profile not in profiles
    ]


def _retire_configs(desired: DesiredState, live: LiveState) -> list[Action]:
    """Deprecate (with its TTL) the ACTIVE config of each strategy no profile runs any more."""
    return [
        Action(
            RETIRE_CONFIG,
            name,
            f"no profile of {desired.env} runs {name} any more",
            {"strategy": name, "config_id": active.config_id, "config_hash": active.config_hash},
        )
        for name, active in sorted(live.active.items())
        if name not in desired.configs
    ]


def _model_changes(
    lifecycle: DesiredLifecycle,
    history: Mapping[str, Sequence[ModelVersionInfo]],
    applied: AppliedState | None,
) -> list[ModelChange]:
    """Pins that move because git changed (a drift repair restores what was applied: no comparison).

    The champion is the gate's: the version live for the profile; a staging (dry-run) challenger is
    judged against the profile's production pin.
    """
    from tradai_release.equity import from_tags
    from tradai_release.gate import by_version, champion, compare
    from tradai_release.registry.comparator import ModelComparator

    comparator = ModelComparator()
    changes = []
    for change in lifecycle.alias_changes:
        if change.version is None:
            continue
        if applied is not None and applied.aliases.get(change.name, {}).get(change.alias) == change.version:
            continue
        profile = _alias_profile(change.alias)
        versions = by_version(history.get(change.name, ()))
        if change.alias.endswith("-staging"):
            pinned = lifecycle.aliases.get(change.name, {}).get(f"p{profile}")
            current = versions.get(pinned) if pinned is not None else None
        else:
            current = champion(profile, versions)
        challenger = versions.get(change.version)
        changes.append(
            ModelChange(
                profile=profile,
                model=change.name,
                alias=change.alias,
                champion=current.version if current is not None else None,
                challenger=change.version,
                champion_metrics=dict(current.metrics) if current is not None else {},
                challenger_metrics=dict(challenger.metrics) if challenger is not None else {},
                rollback=challenger is not None and was_production(challenger),
                comparison=compare(challenger, current, comparator),
                champion_equity=from_tags(current.tags) if current is not None else None,
                challenger_equity=from_tags(challenger.tags) if challenger is not None else None,
            )
        )
    return changes


def find_drift(live: LiveState) -> list[Drift]:
    """Live values that differ from what the last apply left (empty before the first apply)."""
    applied = live.applied
    if applied is None:
        return []
    drift: list[Drift] = []
    for name, digest in sorted(applied.configs.items()):
        current = live.active.get(name)
        if current is None or current.config_hash != digest:
            actual = current.config_id if current is not None else None
            drift.append(
                Drift(
                    "config",
                    name,
                    digest,
                    current.config_hash if current else None,
                    f"ACTIVE config of {name} is {actual or 'none'}, applied {digest[:12]}",
                )
            )
    for name in applied.models:
        listed = live.versions.get(name, ())
        live_aliases = {alias: info.version for info in listed for alias in info.aliases}
        for alias, version in sorted(applied.aliases.get(name, {}).items()):
            if live_aliases.get(alias) != version:
                now = live_aliases.get(alias)
                where = f"v{now}" if now else "nothing"
                drift.append(
                    Drift(
                        "alias",
                        f"{name}@{alias}",
                        version,
                        now,
                        f"alias {alias} of {name} points at {where}, applied v{version}",
                    )
                )
        recorded = applied.lifecycle.get(name, {})
        for info in listed:
            expected = recorded.get(str(info.version), NONE)
            actual = current_lifecycle(info)
            if actual != expected:
                drift.append(
                    Drift(
                        "lifecycle",
                        f"{name}/v{info.version}",
                        expected,
                        actual,
                        f"{name} v{info.version} is {actual}, applied {expected}",
                    )
                )
            elif applied.mirror_stages and (info.stage or NONE) != expected:
                drift.append(
                    Drift(
                        "stage",
                        f"{name}/v{info.version}",
                        expected,
                        info.stage,
                        f"{name} v{info.version} has stage {info.stage}, applied {expected}",
                    )
                )
    running_by_name = {key.name: bot for key, bot in live.bots.running.items()}
    for name, (content, revision) in sorted(applied.bots.items()):
        if name not in live.bots.read:
            continue  # not a bot of the commit planned (prune is another matter)
        running = running_by_name.get(name)
        if running is None or running.retired or running.content_hash != content:
            runs = running.revision if running is not None and not running.retired else None
            detail = f"{name} runs {runs or 'nothing'}, applied {revision}"
            drift.append(Drift("deployment", name, revision, runs, detail))
    for profile, (tag, sha) in sorted(applied.pointers.items()):
        pointer = live.pointers.get(profile)
        seen = (pointer.tag, pointer.sha256) if pointer is not None else None
        if seen != (tag, sha):
            shown = seen[0] if seen else "missing"
            drift.append(
                Drift(
                    "pointer",
                    f"profile-{profile}",
                    [tag, sha],
                    list(seen) if seen else None,
                    f"profile {profile} pointer is {shown}, applied {tag}",
                )
            )
    return drift
