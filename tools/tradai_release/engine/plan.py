"""The Plan: ordered, reasoned actions that make an environment's live state match a commit.

See docs/architecture.md §7.

``build_plan`` is pure (desired + live -> Plan); ``plan_env`` reads both and calls it. Only
``apply`` executes a plan's actions; showing a plan writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradai_release.configs.loader import TAG_PREFIX as CONFIG_TAG_PREFIX
from tradai_release.core.clock import stamp, utc_now
from tradai_release.domain.gate import ModelChange, pin_moves
from tradai_release.engine.actions import RecordDeployment
from tradai_release.engine.differs import (
    alias_actions,
    bot_actions,
    config_actions,
    lifecycle_actions,
    pointer_actions,
    refuse_missing,
    verify_actions,
)
from tradai_release.engine.drift import Drift, find_drift
from tradai_release.engine.prune import Undeclared, retire_bots, retire_configs, retire_pointers
from tradai_release.registry.lifecycle import NONE, DesiredLifecycle, ProfilePin, derive_lifecycle

if TYPE_CHECKING:
    from tradai_release.engine.actions import Action
    from tradai_release.engine.context import ReleaseContext
    from tradai_release.engine.release_table import LeaseRecord
    from tradai_release.engine.state import AppliedState, DesiredState, LiveState
    from tradai_release.registry.adapter import ModelVersionInfo
    from tradai_release.repository.policy import PolicyVerdict


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
    lease: LeaseRecord | None = field(default=None, compare=False)  # an apply holding the lock now

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
        if self.lease is not None:
            data["lease"] = self.lease.to_dict()
        return data

    @property
    def blocked(self) -> bool:
        """True when a policy verdict blocks applying the plan now."""
        return any(verdict.blocked for verdict in self.verdicts)

    def profiles(self) -> list[int]:
        """Profiles some action concerns (for per-profile rendering)."""
        return sorted({profile for action in self.actions for profile in action.profiles})


# --- planning ------------------------------------------------------------------------------------------


def plan_env(context: ReleaseContext) -> Plan:
    """The plan that makes the context's environment match its commit."""
    from tradai_release.engine.state import read_live

    return build_plan(context.desired, read_live(context.backends, context.desired))


def build_plan(desired: DesiredState, live: LiveState, *, now: datetime | None = None) -> Plan:
    """Compare desired and live state; pure. Raises InputError when a pinned version is missing."""
    from tradai_release.engine.state import AppliedState

    moment = now or utc_now()
    applied = live.applied
    mirror = applied.mirror_stages if applied is not None else True
    env = desired.env

    configs = config_actions(desired, live)
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
    refuse_missing(desired, lifecycle)
    tracked = set(desired.model_names) | set(applied.models if applied is not None else ())
    undeclared = Undeclared.find(desired, lifecycle, history, tracked)
    promote, leaving = lifecycle_actions(lifecycle, history, applied)
    demote, retire_versions = undeclared.split_versions(leaving, env)
    aliases, retire_aliases = undeclared.split_aliases(alias_actions(lifecycle, applied), env)
    pointers = pointer_actions(desired, live)
    verify = verify_actions(desired, {p for action in [*pointers, *aliases] for p in action.profiles})
    deploys, bots = bot_actions(desired, live)
    stopped, pruned_bots = retire_bots(desired, live)
    actions: list[Action] = [*verify, *configs, *promote, *aliases, *demote, *pointers, *deploys, *stopped]
    retire = [
        *pruned_bots,
        *retire_aliases,
        *retire_versions,
        *retire_pointers(desired, live),
        *retire_configs(desired, live),
    ]
    if desired.prune:
        actions += retire
    # Without prune the record keeps what it left alone as it is (no false drift), and never takes in a
    # model only found through its live aliases (it stays outside this env's record until retired).
    kept = {(a.model, a.version) for a in retire_versions if not desired.prune}
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
        previous = applied.commit if applied else None
        actions.append(RecordDeployment(target=env, reason=reason, commit=desired.commit, previous=previous))
    return Plan(
        env=env,
        commit=desired.commit,
        actions=tuple(actions),
        drift=tuple(find_drift(live)),
        model_changes=tuple(pin_moves(lifecycle, history, applied.aliases if applied is not None else {})),
        orphans=() if desired.prune else tuple(retire),
        prune=desired.prune,
        applied_commit=applied.commit if applied else None,
        created_at=stamp(moment),
        target=target,
        desired=desired,
        lease=live.lease,
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
