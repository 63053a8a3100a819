"""Per backend, the actions that make what is live match what a commit declares; pure.

See docs/architecture.md §7. Each differ compares one backend's part of the desired and live state
and says why each action is needed (a new pin, or a drift repair when live moved away from what
the last apply left).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from tradai_release.core.errors import InputError, ValidationFailed
from tradai_release.engine.actions import (
    ActivateConfig,
    ArchiveVersion,
    CreateConfigVersion,
    DeleteAlias,
    DeployBot,
    LifecycleWrite,
    SetAlias,
    SetLifecycle,
    UploadConfig,
    VerifyArtifacts,
    WaitRollout,
    WriteProfilePointer,
)
from tradai_release.registry.lifecycle import (
    ARCHIVED,
    NONE,
    PRODUCTION,
    STAGING,
    DesiredLifecycle,
    alias_profile,
)
from tradai_release.repository.bots import HUB_TAG, differences

if TYPE_CHECKING:
    from tradai_release.engine.actions import Action
    from tradai_release.engine.state import AppliedState, DesiredState, LiveState
    from tradai_release.registry.adapter import ModelVersionInfo
    from tradai_release.repository.bots import BotSpec
    from tradai_release.targets import RunningBot


def config_actions(desired: DesiredState, live: LiveState) -> list[Action]:
    """Uploads, then version creations, then activations of the committed configs not ACTIVE yet."""
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
        if stored is None:
            uploads.append(
                UploadConfig(
                    target=f"configs/{name}/{digest[:12]}",
                    reason=f"no stored body of config {digest[:12]}",
                    strategy=name,
                    config_hash=digest,
                    object_key=f"configs/{name}/{digest}.json",
                )
            )
            creates.append(
                CreateConfigVersion(
                    target=name,
                    reason=f"no version of {name} has hash {digest[:12]}",
                    strategy=name,
                    config_hash=digest,
                )
            )
        activations.append(
            ActivateConfig(
                target=name,
                reason=reason,
                strategy=name,
                config_hash=digest,
                config_id=stored.config_id if stored is not None else None,
                previous=current.config_id if current is not None else None,
            )
        )
    return uploads + creates + activations


def refuse_missing(desired: DesiredState, lifecycle: DesiredLifecycle) -> None:
    """Raise ValidationFailed naming each manifest line that pins a version the registry lacks."""
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


def lifecycle_actions(
    lifecycle: DesiredLifecycle,
    history: Mapping[str, Sequence[ModelVersionInfo]],
    applied: AppliedState | None,
) -> tuple[list[LifecycleWrite], list[LifecycleWrite]]:
    """Tag and stage writes grouped per version: (entering versions, leaving ones)."""
    tags: dict[tuple[str, int], dict[str, str | None]] = {}
    stages: dict[tuple[str, int], str] = {}
    for change in lifecycle.tag_changes:
        tags.setdefault((change.name, change.version), {})[change.key] = change.value
    for stage in lifecycle.stage_changes:
        stages[(stage.name, stage.version)] = stage.desired
    promote: list[LifecycleWrite] = []
    demote: list[LifecycleWrite] = []
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
        kind: type[LifecycleWrite] = ArchiveVersion if entry.desired == ARCHIVED else SetLifecycle
        action = kind(
            target=f"{entry.name}/v{entry.version}",
            reason=reason,
            model=entry.name,
            version=entry.version,
            from_=entry.current,
            to=entry.desired,
            tags=tags.get(key, {}),
            stage=stages.get(key),
        )
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


def alias_actions(lifecycle: DesiredLifecycle, applied: AppliedState | None) -> list[SetAlias | DeleteAlias]:
    """One set or delete per managed alias that does not point where the pins say."""
    actions: list[SetAlias | DeleteAlias] = []
    for change in lifecycle.alias_changes:
        profile = alias_profile(change.alias)
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
        kind: type[SetAlias | DeleteAlias] = DeleteAlias if change.version is None else SetAlias
        actions.append(
            kind(
                target=f"{change.name}@{change.alias}",
                reason=reason,
                model=change.name,
                alias=change.alias,
                profile=profile,
                version=change.version,
                previous=change.previous,
            )
        )
    return actions


def pointer_actions(desired: DesiredState, live: LiveState) -> list[WriteProfilePointer]:
    """One write per profile whose hub pointer is not at its manifest's tag and sha256."""
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
            WriteProfilePointer(
                target=f"{desired.env}/profile-{manifest.profile}",
                reason=reason,
                profile=manifest.profile,
                tag=tag,
                sha256=sha,
                previous=current,
            )
        )
    return actions


def verify_actions(desired: DesiredState, profiles: set[int]) -> list[Action]:
    """One deep check per hub tag that a moving profile pins (before anything is written)."""
    by_tag: dict[tuple[str, str], list[int]] = {}
    for manifest in desired.manifests:
        if manifest.profile in profiles:
            key = (manifest.artifacts.tag, manifest.artifacts.sha256)
            by_tag.setdefault(key, []).append(manifest.profile)
    return [
        VerifyArtifacts(
            target=f"hub/{tag}",
            reason=f"check tag {tag} (sha256 and every file's content) "
            f"before profiles {', '.join(map(str, found))} move",
            tag=tag,
            sha256=sha,
            profile_list=tuple(found),
        )
        for (tag, sha), found in sorted(by_tag.items())
    ]


def bot_actions(desired: DesiredState, live: LiveState) -> tuple[list[Action], dict[str, tuple[str, str]]]:
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
    deploys: list[DeployBot] = []
    unsettled: list[str] = []  # bots that run their pins but whose rollout is still in progress
    record: dict[str, tuple[str, str]] = {}
    for spec in map(bots.resolved, desired.bots):
        key = spec.key
        config_id = _stored_config_id(live, key.strategy, spec.pins.config_hash)
        files = bots.files.get(key, "")
        spec = replace(spec, pins=replace(spec.pins, config_id=config_id, files_sha256=files))
        digest = bots.definition_hash(spec) if config_id is not None else ""
        running = bots.running.get(key)
        runs_pins = running is not None and not running.retired and digest and running.content_hash == digest
        pulls_other = bots.pulled.get(key, files) != files  # its tag does not hold its pinned files
        if running is not None and runs_pins and not running.rollout_failed and not pulls_other:
            record[key.name] = (digest, running.revision)
            if running.rolling_out:
                unsettled.append(key.name)
            continue
        record[key.name] = (digest, "")
        if running is None:
            reason = f"{key.name} is not deployed to {bots.target} yet"
        elif running.retired:
            reason = f"{running.where or key.name} is scaled to zero (retired); run it again"
        elif runs_pins and pulls_other:
            pulled = (running.variables or {}).get(HUB_TAG, "")
            reason = (f"drift: {running.where} pulls tag {pulled}, "
                      f"which does not hold {key.strategy}'s pinned files")
        elif runs_pins:
            reason = f"the last rollout of {running.where} failed ({running.rollout_detail}); deploy it again"
        elif digest and recorded.get(key.name, ("", ""))[0] == digest:
            reason = f"drift: {running.where} runs {running.revision[-40:]}, not what the last apply set"
        else:
            reason = _pins_change(spec, running)
        pins = spec.pins
        deploys.append(
            DeployBot(
                target=f"{desired.env}/{key.name}",
                reason=reason,
                bot=key.name,
                profile=key.profile,
                strategy=key.strategy,
                deployed_on=bots.target,
                content_sha256=digest or None,
                config_hash=pins.config_hash,
                config_id=pins.config_id,
                model=pins.model_name,
                version=pins.model_version,
                tag=pins.hub_tag,
                sha256=pins.hub_sha256,
                image=pins.image,
                previous=running.revision if running is not None else None,
                files_sha256=pins.files_sha256 or None,
            )
        )
    actions: list[Action] = list(deploys)
    waited = [deploy.bot for deploy in deploys] + unsettled
    if waited and bots.waits:
        # A rollout an earlier apply started (and did not see through: its wait timed out, or it
        # crashed between deploy and wait) is live state git does not want yet: wait for it again.
        still = f"; {', '.join(unsettled)} still rolling out" if unsettled else ""
        actions.append(
            WaitRollout(
                target=f"{desired.env}/{bots.target}",
                reason=f"wait until {len(waited)} rollout(s) are stable "
                f"(a failed one is rolled back, apply fails){still}",
                bots=tuple(waited),
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
        for name in differences(after, before)
    ] if before else []
    if changed:
        return f"{spec.key.name}: " + ", ".join(changed)
    pins = spec.pins
    return (f"{spec.key.name} moves to {pins.model_name} v{pins.model_version}, tag {pins.hub_tag}, "
            f"config {pins.config_hash[:12]}")


def _brief(value: str | None) -> str:
    """A hash shortened to 12 characters (a reason stays one readable line)."""
    text = value or ""
    return text[:12] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text
