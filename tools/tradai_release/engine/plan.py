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
    RECORD_DEPLOYMENT,
)


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
    bodies apply uploads. Neither is part of ``to_dict``.
    """

    env: str
    commit: str
    actions: tuple[Action, ...]
    drift: tuple[Drift, ...]
    model_changes: tuple[ModelChange, ...] = ()
    applied_commit: str | None = None
    created_at: str = ""
    target: AppliedState | None = field(default=None, repr=False, compare=False)
    desired: DesiredState | None = field(default=None, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        """True when live already matches the commit (no drift either)."""
        return not self.actions

    def to_dict(self) -> dict[str, Any]:
        """``{"env", "commit", "actions": [...], "drift": [...]}`` (docs/architecture.md §10)."""
        return {
            "env": self.env,
            "commit": self.commit,
            "actions": [action.to_dict() for action in self.actions],
            "drift": [entry.to_dict() for entry in self.drift],
        }

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
    promote, demote = _lifecycle_actions(lifecycle, history, applied)
    alias_actions = _alias_actions(lifecycle, applied)
    pointer_actions = _pointer_actions(desired, live)

    touched = {int(a.details["profile"]) for a in pointer_actions}
    touched |= {int(a.details["profile"]) for a in alias_actions}
    verify_actions = _verify_actions(desired, touched)

    bot_actions, bots = _bot_actions(desired, live)
    actions = [
        *verify_actions, *config_actions, *promote, *alias_actions, *demote, *pointer_actions, *bot_actions
    ]
    target = AppliedState(
        commit=desired.commit,
        deployment_id="",
        applied_at="",
        configs={name: config.config_hash for name, config in desired.configs.items()},
        aliases={name: dict(mapping) for name, mapping in lifecycle.aliases.items()},
        lifecycle=_target_lifecycle(lifecycle),
        pointers={m.profile: (m.artifacts.tag, m.artifacts.sha256) for m in desired.manifests},
        mirror_stages=mirror,
        bots=bots,
    )
    unrecorded = not _same_live_values(applied, target)
    if actions or unrecorded:
        reason = f"record {desired.commit[:12]} as the last applied commit of {env}"
        if not actions:
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
        applied_commit=applied.commit if applied else None,
        created_at=stamp(moment),
        target=target,
        desired=desired,
    )


def _same_live_values(applied: AppliedState | None, target: AppliedState) -> bool:
    """True when the record of the last apply already describes ``target`` (the commit may differ)."""
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
        if running is not None and digest and running.content_hash == digest:
            record[key.name] = (digest, running.revision)
            continue
        record[key.name] = (digest, "")
        if running is None:
            reason = f"{key.name} is not deployed to {bots.target} yet"
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


def _target_lifecycle(lifecycle: DesiredLifecycle) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {}
    for entry in lifecycle.versions:
        if entry.desired != NONE:
            result.setdefault(entry.name, {})[str(entry.version)] = entry.desired
    return result


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
        if running is None or running.content_hash != content:
            runs = running.revision if running is not None else None
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
