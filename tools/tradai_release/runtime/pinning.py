"""Which bot this is and what it must run: the flags agreed with the deployment's variables, the pins the
last apply made live, and the ACTIVE config checked against them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError, PinMismatch, RegistryError
from tradai_release.repository import bots

if TYPE_CHECKING:
    from tradai_release.configs.entities import ConfigVersion
    from tradai_release.engine.release_table import AppliedState
    from tradai_release.engine.state import EngineBackends


@dataclass(frozen=True)
class Choice:
    """Which bot this is: the flags, defaulted from and checked against the deployment's variables."""

    env: str
    profile: int | None
    strategy: str
    model_name: str


def choose(
    env: str | None,
    profile: int | None,
    strategy: str | None,
    model_name: str | None,
    variables: Mapping[str, str],
    pins: bots.BotPins | None,
    where: str,
) -> Choice:
    """The flags, each defaulted from its variable and refused when both are given and differ."""
    from tradai_release.repository.manifest import parse_profile

    pinned_profile = variables.get(bots.PROFILE) or None
    chosen_env = _agree(where, bots.ENV, "--env", env, variables.get(bots.ENV) or None)
    chosen_profile = _agree(
        where,
        bots.PROFILE,
        "--profile",
        None if profile is None else parse_profile(profile),
        None if pinned_profile is None else parse_profile(pinned_profile),
    )
    chosen_strategy = _agree(
        where, bots.STRATEGY, "--strategy", strategy, variables.get(bots.STRATEGY) or None
    )
    if not chosen_env:
        raise InputError("start-up", "--env", f"required (or {bots.ENV})")
    if not chosen_strategy:
        raise InputError("start-up", "--strategy", f"required (or {bots.STRATEGY})")
    from tradai_release.hub.names import check_strategy_dir

    check_strategy_dir(chosen_strategy, where="--strategy")
    chosen_model = _agree(
        where, bots.MODEL_NAME, "--model", model_name, pins.model_name if pins is not None else None
    )
    return Choice(chosen_env, chosen_profile, chosen_strategy, chosen_model or chosen_strategy)


def _agree(where: str, variable: str, flag: str, given: Any, pinned: Any) -> Any:
    if given is not None and pinned is not None and given != pinned:
        raise PinMismatch(where, variable, flag, given, pinned)
    return given if given is not None else pinned


def live_pins(
    backends: EngineBackends,
    choice: Choice,
    applied: AppliedState | None,
    active: ConfigVersion,
    *,
    where: str,
    pinned_by: str,
) -> bots.BotPins:
    """What the last apply made live for the bot: the profile's hub pointer, the model's alias ``p<N>``,
    and the config hash the applied state recorded (the ACTIVE one before any apply).

    A pointer or alias that moved since the last apply (drift) is refused: only reads already
    needed are compared.
    """
    from tradai_release.engine.drift import alias_drift, pointer_drift

    assert choice.profile is not None
    tag, sha256 = backends.hub.resolve(env=choice.env, profile=choice.profile)
    assert sha256 is not None  # a profile pointer always records its tag's hash
    moved = pointer_drift(applied, choice.profile, (tag, sha256)) if applied is not None else None
    if moved is not None:
        recorded_tag, recorded_sha = moved.expected
        raise PinMismatch(
            where,
            bots.HUB_TAG,
            f"the hub pointer of {choice.env} profile {choice.profile}",
            f"{tag} ({sha256[:12]})",
            f"{recorded_tag} ({recorded_sha[:12]})",
            pinned_by=pinned_by,
        )
    alias = f"p{choice.profile}"
    listed = backends.registry.versions([choice.model_name]).get(choice.model_name, [])
    holders = [info.version for info in listed if alias in info.aliases]
    if not holders:
        raise RegistryError(f"{choice.model_name} alias {alias}", "no version holds it (nothing applied?)")
    moved = alias_drift(applied, choice.model_name, alias, holders[0]) if applied is not None else None
    if moved is not None:
        raise PinMismatch(
            where,
            bots.MODEL_VERSION,
            f"{choice.model_name}@{alias}",
            f"version {holders[0]}",
            f"version {moved.expected}",
            pinned_by=pinned_by,
        )
    config_hash = applied.configs.get(choice.strategy) if applied is not None else None
    return bots.BotPins(
        env=choice.env,
        profile=choice.profile,
        strategy=choice.strategy,
        config_id=active.config_id if config_hash in (None, active.config_hash) else None,
        config_hash=config_hash or active.config_hash,
        model_name=choice.model_name,
        model_version=holders[0],
        hub_tag=tag,
        hub_sha256=sha256,
        image="",
    )


def active_subject(pins: bots.BotPins) -> str:
    return f"ACTIVE config of {pins.strategy} in {pins.env}"


def check_config(
    backends: EngineBackends, active: ConfigVersion, pins: bots.BotPins, *, where: str, pinned_by: str
) -> None:
    """The ACTIVE config must be the pinned one, by id and by hash."""
    if pins.config_id is not None and active.config_id != pins.config_id:
        raise PinMismatch(
            where,
            bots.CONFIG_ID,
            active_subject(pins),
            active.config_id,
            pins.config_id,
            pinned_by=pinned_by,
        )
    if active.config_hash != pins.config_hash:
        if pins.config_id is None:  # live: name the version holding the pinned hash, when there is one
            holder = backends.configs.find_by_hash(pins.strategy, pins.config_hash)
            pinned = holder.config_id if holder is not None else f"hash {pins.config_hash[:12]}"
            raise PinMismatch(
                where, bots.CONFIG_ID, active_subject(pins), active.config_id, pinned, pinned_by=pinned_by
            )
        raise PinMismatch(
            where,
            bots.CONFIG_HASH,
            f"the hash of {active_subject(pins)} ({active.config_id})",
            active.config_hash,
            pins.config_hash,
            pinned_by=pinned_by,
        )
