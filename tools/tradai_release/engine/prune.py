"""Prune: what the backends hold for an environment that no manifest of it declares any more.

See docs/architecture.md §7. With policy.yaml's ``prune: true`` these retire actions run after
everything declared is live (bots first, so nothing running reads what is retired after them);
without it the plan shows them as orphans and apply leaves them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradai_release.engine.actions import (
    DeleteAlias,
    LifecycleWrite,
    RetireAlias,
    RetireBot,
    RetireConfig,
    RetirePointer,
    RetireVersion,
    SetAlias,
)
from tradai_release.registry.lifecycle import alias_profile

if TYPE_CHECKING:
    from tradai_release.engine.actions import Action
    from tradai_release.engine.state import DesiredState, LiveState
    from tradai_release.registry.adapter import ModelVersionInfo
    from tradai_release.registry.lifecycle import DesiredLifecycle


@dataclass(frozen=True)
class Undeclared:
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
    ) -> Undeclared:
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
            gone = alias_profile(change.alias) not in profiles or change.name in models
            if change.version is None and gone:
                aliases.add((change.name, change.alias))
                if change.previous is not None:
                    held.add((change.name, change.previous))
        return cls(profiles, models, frozenset(models - tracked), frozenset(aliases), frozenset(held))

    def split_aliases(
        self, actions: Sequence[SetAlias | DeleteAlias], env: str
    ) -> tuple[list[SetAlias | DeleteAlias], list[RetireAlias]]:
        """(ordinary alias actions, retire_alias actions)."""
        ordinary: list[SetAlias | DeleteAlias] = []
        retire: list[RetireAlias] = []
        for action in actions:
            if (action.model, action.alias) not in self.aliases:
                ordinary.append(action)
                continue
            if action.profile not in self.profiles:
                reason = f"profile {action.profile} has no manifest in {env} any more"
            else:
                reason = self._why(action.model, env)
            retire.append(
                RetireAlias(
                    target=action.target, reason=reason, model=action.model, alias=action.alias,
                    profile=action.profile, version=action.version, previous=action.previous,
                )
            )
        return ordinary, retire

    def split_versions(
        self, actions: Sequence[LifecycleWrite], env: str
    ) -> tuple[list[LifecycleWrite], list[RetireVersion]]:
        """(ordinary lifecycle actions, retire_version actions): a version leaving its lifecycle because
        only undeclared aliases or strategies still held it. A model found only through its aliases
        gets no other write (its tags are not this environment's to tidy)."""
        ordinary: list[LifecycleWrite] = []
        retire: list[RetireVersion] = []
        for action in actions:
            model, version, before, after = action.model, action.version, action.from_, action.to
            if model in self.found and before == after:
                continue
            if (model, version) not in self.held or before == after:
                ordinary.append(action)
                continue
            if model in self.models:
                why = self._why(model, env)
            else:
                why = "only aliases of profiles without a manifest held it"
            retire.append(
                RetireVersion(
                    target=action.target, reason=f"{before} -> {after}: {why}", model=model, version=version,
                    from_=before, to=after, tags=action.tags, stage=action.stage,
                )
            )
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


def retire_bots(desired: DesiredState, live: LiveState) -> tuple[list[Action], list[Action]]:
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
        elif key.challenger:
            reason = f"profile {key.profile} no longer stages a challenger of {key.strategy}"
        else:
            reason = f"profile {key.profile} no longer runs {key.strategy}"
        action = RetireBot(
            target=f"{desired.env}/{key.name}",
            reason=reason,
            bot=key.name,
            profile=key.profile,
            strategy=key.strategy,
            deployed_on=live.bots.target,
            revision=running.revision,
            where=running.where,
        )
        (stopped if key.profile in profiles and key.strategy in desired.configs else prune).append(action)
    return stopped, prune


def retire_pointers(desired: DesiredState, live: LiveState) -> list[Action]:
    """Delete the hub pointer of each profile that has no manifest any more."""
    profiles = {m.profile for m in desired.manifests}
    return [
        RetirePointer(
            target=f"{desired.env}/profile-{profile}",
            reason=f"profile {profile} has no manifest in {desired.env} any more",
            profile=profile,
            tag=pointer.tag,
            sha256=pointer.sha256,
        )
        for profile, pointer in sorted(live.pointers.items())
        if pointer is not None and profile not in profiles
    ]


def retire_configs(desired: DesiredState, live: LiveState) -> list[Action]:
    """Deprecate (with its TTL) the ACTIVE config of each strategy no profile runs any more."""
    return [
        RetireConfig(
            target=name,
            reason=f"no profile of {desired.env} runs {name} any more",
            strategy=name,
            config_id=active.config_id,
            config_hash=active.config_hash,
        )
        for name, active in sorted(live.active.items())
        if name not in desired.configs
    ]
