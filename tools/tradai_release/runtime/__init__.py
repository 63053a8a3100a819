"""A bot's start-up: make its models, config and model version the pinned ones, then say what it runs.

See docs/architecture.md §14. A bot's main calls :func:`start_bot` before it trades;
``python -m tradai_release.runtime`` does the same from a shell or a container's entry point.

What the bot must run comes from its deployment's pinned variables (``bots.BotPins``: the process
environment or an env file) and, without them, from the live state apply left (the profile's hub
pointer, the model alias ``p<N>``, the ACTIVE config as the applied state recorded it). The local
models of the strategy are compared with the pinned tag by content and pulled (that strategy
only, verified) when they differ; their model_compat.json must match the strategy's features;
the ACTIVE config must be the pinned one. Only JSON files are read here: no model file is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release import bots
from tradai_release.errors import ConfigError, HubError, InputError, PinMismatch, RegistryError

if TYPE_CHECKING:
    from tradai_release.configs.entities import ConfigVersion
    from tradai_release.configs.loader import StrategyConfig
    from tradai_release.engine.release_table import AppliedState, ReleaseTable
    from tradai_release.engine.state import EngineBackends
    from tradai_release.hub import TagManifest, TransferProgress
    from tradai_release.settings import Settings

DEPLOYMENT = "deployment"
"""``pins_from`` of a bot whose deployment's variables pin what it runs."""
LIVE = "live"
"""``pins_from`` of a bot that read what it runs from the live state the last apply left."""
LATEST = "latest"
"""``pins_from`` of a bot with no pins and no profile: the seed's start-up (latest models when missing)."""

RECORD_FIELDS: tuple[str, ...] = (
    "env",
    "profile",
    "strategy",
    "config_id",
    "config_hash",
    "model_name",
    "model_version",
    "hub_tag",
    "hub_sha256",
    "image",
    "git_commit",
    "trace_id",
    "deployment_id",
    "pins_from",
    "models_dir",
    "downloaded_bytes",
    "downloaded_files",
    "reused_files",
)
"""The fields of the ready record, in the order ``--json`` documents them."""


@dataclass(frozen=True)
class Ready:
    """What a bot starts with: the values it runs, where they came from, and what start-up moved.

    ``config`` is the merged, validated runtime config (not part of the record). ``profile``,
    ``model_*``, ``config_hash`` and ``hub_*`` are None only for a ``latest`` start-up (no pins, no
    profile) that found its models present. ``git_commit``, ``trace_id`` and ``deployment_id`` name
    the last apply of the environment (None before the first).
    """

    env: str
    profile: int | None
    strategy: str
    config_id: str | None
    config_hash: str | None
    model_name: str | None
    model_version: int | None
    hub_tag: str | None
    hub_sha256: str | None
    image: str | None
    git_commit: str | None
    trace_id: str | None
    deployment_id: str | None
    pins_from: str
    models_dir: Path
    downloaded_bytes: int
    downloaded_files: int
    reused_files: int
    config: StrategyConfig = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The ready record (``RECORD_FIELDS``; JSON values only)."""
        record = {name: getattr(self, name) for name in RECORD_FIELDS}
        record["models_dir"] = str(self.models_dir)
        return record


@dataclass(frozen=True)
class _Choice:
    """Which bot this is: the flags, defaulted from and checked against the deployment's variables."""

    env: str
    profile: int | None
    strategy: str
    model_name: str


@dataclass(frozen=True)
class _Moved:
    downloaded_bytes: int
    downloaded_files: int
    reused_files: int


def start_bot(
    settings: Settings | None = None,
    *,
    env: str | None = None,
    profile: int | None = None,
    strategy: str | None = None,
    model_name: str | None = None,
    variables: Mapping[str, str] | None = None,
    source: str = DEPLOYMENT,
    models_dir: Path | None = None,
    ml_config: Path | None = None,
    backends: EngineBackends | None = None,
    progress: TransferProgress | None = None,
) -> Ready:
    """Prepare one bot to trade and return what it runs; any problem is a TradaiError naming it.

    ``variables`` are the deployment's (default: the process environment); ``source`` names
    them in errors (an env file's path, else ``deployment``). ``env``, ``profile``, ``strategy``
    and ``model_name`` default to the pinned ones and must agree with them. Without pins the
    values come from the live state of ``env`` for ``profile``; with neither pins nor a profile
    the seed's start-up runs (the latest tag, pulled only when the models are missing).
    ``models_dir`` defaults to the settings' models dir; the features the models must match
    come from ``ml_config`` (a strategy's ml_config.json), else the release repository at
    ``settings.repo``. ``backends`` defaults to the environment's, from settings.
    """
    from tradai_release.engine.release_table import ReleaseTable
    from tradai_release.engine.state import EngineBackends
    from tradai_release.environments import environment
    from tradai_release.settings import Settings

    settings = settings or Settings()
    variables = os.environ if variables is None else variables
    pins = bots.BotPins.from_variables(variables, where=source) if bots.has_pins(variables) else None
    choice = _choose(env, profile, strategy, model_name, variables, pins, source)
    target = environment(settings, choice.env)
    features = strategy_features(settings, choice.strategy, ml_config)
    models = Path(os.path.abspath(models_dir if models_dir is not None else settings.models_path()))
    backends = backends or EngineBackends.from_settings(settings, target)

    if pins is None and choice.profile is None:
        return _start_from_latest(backends, choice, models, features)

    releases = ReleaseTable(backends.releases, target.name)
    applied = releases.applied()
    active = backends.configs.get_active(choice.strategy)
    if active is None:
        raise ConfigError(
            f"{choice.strategy} in {target.name}", "no ACTIVE config (apply the environment first)"
        )
    if pins is not None:
        pinned, where, pinned_by, origin = pins, source, "the deployment pins", DEPLOYMENT
    else:
        where, pinned_by, origin = f"live state of {target.name}", "the last apply made live", LIVE
        pinned = _live_pins(backends, choice, applied, active, where=where, pinned_by=pinned_by)
    _check_config(backends, active, pinned, where=where, pinned_by=pinned_by)
    manifest = backends.hub.read_tag(pinned.hub_tag, expected_sha256=pinned.hub_sha256)
    config = _load_config(backends, pinned.strategy, pinned.model_name, pinned.model_version, applied)
    if config.config_id != active.config_id:  # activated between the check and the load
        raise PinMismatch(
            where,
            bots.CONFIG_ID,
            _active_subject(pinned),
            config.config_id,
            pinned.config_id or "",
            pinned_by=pinned_by,
        )
    moved = _sync_models(backends, manifest, pinned, models, features, progress)
    git_commit, trace_id, deployment_id = _provenance(releases, applied)
    return Ready(
        env=pinned.env,
        profile=pinned.profile,
        strategy=pinned.strategy,
        config_id=active.config_id,
        config_hash=active.config_hash,
        model_name=pinned.model_name,
        model_version=pinned.model_version,
        hub_tag=pinned.hub_tag,
        hub_sha256=pinned.hub_sha256,
        image=pinned.image or None,
        git_commit=git_commit,
        trace_id=trace_id,
        deployment_id=deployment_id,
        pins_from=origin,
        models_dir=models,
        downloaded_bytes=moved.downloaded_bytes,
        downloaded_files=moved.downloaded_files,
        reused_files=moved.reused_files,
        config=config,
    )


def read_variables(env_file: Path | None) -> tuple[dict[str, str], str]:
    """The deployment's variables and the name errors give them: ``env_file``'s lines, else the process
    environment (``deployment``)."""
    if env_file is None:
        return dict(os.environ), DEPLOYMENT
    where = str(env_file)
    try:
        text = env_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise InputError(where, "--env-file", f"cannot read: {reason}") from None
    return bots.parse_env_file(text, where=where), where


def strategy_features(settings: Settings, strategy: str, ml_config: Path | None) -> list[str]:
    """The features the strategy's models must have been trained on: ``ml_config`` (an ml_config.json),
    else the release repository's ``strategies/<strategy>/ml_config.json``; one of them must exist."""
    from tradai_release.errors import ValidationFailed
    from tradai_release.repo import ReleaseTree
    from tradai_release.strategy import check_ml_config
    from tradai_release.yamlio import load_json

    if ml_config is not None:
        try:
            raw = ml_config.read_bytes()
        except OSError as err:
            raise InputError(str(ml_config), "--ml-config", f"cannot read: {err.strerror or err}") from None
        document = load_json(raw, str(ml_config))
        problems = check_ml_config(document)
        if problems:
            raise ValidationFailed(problems)
        return list(document.data["features"])
    found = ReleaseTree.work(settings.repo).features([strategy])
    if strategy in found:
        return found[strategy]
    raise InputError(
        "start-up",
        "--ml-config",
        f"no ml_config.json of {strategy}: pass --ml-config F, or set TRADAI_REPO to a release repository "
        "that has it (a bot must prove its models match its features)",
    )


# --- which bot, which pins -----------------------------------------------------------------------------


def _choose(
    env: str | None,
    profile: int | None,
    strategy: str | None,
    model_name: str | None,
    variables: Mapping[str, str],
    pins: bots.BotPins | None,
    where: str,
) -> _Choice:
    """The flags, each defaulted from its variable and refused when both are given and differ."""
    from tradai_release.manifest import parse_profile

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
    return _Choice(chosen_env, chosen_profile, chosen_strategy, chosen_model or chosen_strategy)


def _agree(where: str, variable: str, flag: str, given: Any, pinned: Any) -> Any:
    if given is not None and pinned is not None and given != pinned:
        raise PinMismatch(where, variable, flag, given, pinned)
    return given if given is not None else pinned


def _live_pins(
    backends: EngineBackends,
    choice: _Choice,
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
    assert choice.profile is not None
    tag, sha256 = backends.hub.resolve(env=choice.env, profile=choice.profile)
    assert sha256 is not None  # a profile pointer always records its tag's hash
    recorded = applied.pointers.get(choice.profile) if applied is not None else None
    if recorded is not None and recorded != (tag, sha256):
        raise PinMismatch(
            where,
            bots.HUB_TAG,
            f"the hub pointer of {choice.env} profile {choice.profile}",
            f"{tag} ({sha256[:12]})",
            f"{recorded[0]} ({recorded[1][:12]})",
            pinned_by=pinned_by,
        )
    alias = f"p{choice.profile}"
    listed = backends.registry.versions([choice.model_name]).get(choice.model_name, [])
    holders = [info.version for info in listed if alias in info.aliases]
    if not holders:
        raise RegistryError(f"{choice.model_name} alias {alias}", "no version holds it (nothing applied?)")
    recorded_version = applied.aliases.get(choice.model_name, {}).get(alias) if applied is not None else None
    if recorded_version is not None and recorded_version != holders[0]:
        raise PinMismatch(
            where,
            bots.MODEL_VERSION,
            f"{choice.model_name}@{alias}",
            f"version {holders[0]}",
            f"version {recorded_version}",
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


def _active_subject(pins: bots.BotPins) -> str:
    return f"ACTIVE config of {pins.strategy} in {pins.env}"


def _check_config(
    backends: EngineBackends, active: ConfigVersion, pins: bots.BotPins, *, where: str, pinned_by: str
) -> None:
    """The ACTIVE config must be the pinned one, by id and by hash."""
    if pins.config_id is not None and active.config_id != pins.config_id:
        raise PinMismatch(
            where,
            bots.CONFIG_ID,
            _active_subject(pins),
            active.config_id,
            pins.config_id,
            pinned_by=pinned_by,
        )
    if active.config_hash != pins.config_hash:
        if pins.config_id is None:  # live: name the version holding the pinned hash, when there is one
            holder = backends.configs.find_by_hash(pins.strategy, pins.config_hash)
            pinned = holder.config_id if holder is not None else f"hash {pins.config_hash[:12]}"
            raise PinMismatch(
                where, bots.CONFIG_ID, _active_subject(pins), active.config_id, pinned, pinned_by=pinned_by
            )
        raise PinMismatch(
            where,
            bots.CONFIG_HASH,
            f"the hash of {_active_subject(pins)} ({active.config_id})",
            active.config_hash,
            pins.config_hash,
            pinned_by=pinned_by,
        )


def _load_config(
    backends: EngineBackends,
    strategy: str,
    model_name: str | None,
    model_version: int | None,
    applied: AppliedState | None,
) -> StrategyConfig:
    """The merged runtime config (``StrategyConfigLoader.for_env``'s sources, on these backends).

    The model version's ``config.*`` tags come from the snapshot the apply that aliased it
    recorded, so a bot needs no MLflow client; only a version the record lacks (an apply by an
    older release, or the seed's start-up) reads them from the registry.
    """
    from tradai_release.configs.loader import ModelTagSource, StrategyConfigLoader

    recorded = applied.config_tags.get(model_name or "", {}) if applied is not None else {}
    tags: ModelTagSource
    if model_version is not None and str(model_version) in recorded:
        tags = _RecordedTags({(model_name or "", model_version): recorded[str(model_version)]})
    else:
        from tradai_release.registry.adapter import MlflowTagSource

        tags = MlflowTagSource(backends.registry)
    loader = StrategyConfigLoader(versions=backends.configs, tags=tags)
    return loader.load(strategy, model_name=model_name, model_version=model_version)


@dataclass(frozen=True)
class _RecordedTags:
    """Model version tags as the last apply recorded them."""

    tags: Mapping[tuple[str, int], Mapping[str, str]]

    def model_version_tags(self, model_name: str, version: int) -> dict[str, str]:
        return dict(self.tags[(model_name, version)])


# --- models -------------------------------------------------------------------------------------------


def _sync_models(
    backends: EngineBackends,
    manifest: TagManifest,
    pins: bots.BotPins,
    models: Path,
    features: Sequence[str],
    progress: TransferProgress | None,
) -> _Moved:
    """The strategy's local files made the pinned tag's (compared by content; only that strategy
    pulled, verified), then its model_compat.json checked against ``features``."""
    from tradai_release.hub import check_compat, local_differences

    strategy = pins.strategy
    files = manifest.files_of([strategy])
    if not files:
        raise HubError(f"{backends.hub.store.name}: tag {pins.hub_tag}", f"holds no files for {strategy}")
    wanted = {strategy: list(features)}
    if local_differences(models, manifest.files, [strategy], workers=backends.hub.workers):
        pulled = backends.hub.pull_manifest(  # the manifest read with the pinned sha256: not read again
            manifest,
            pins.hub_sha256,
            models,
            strategies=[strategy],
            features=wanted,
            progress=progress,
        )
        moved = _Moved(pulled.downloaded_bytes, pulled.downloaded_files, pulled.reused_files)
    else:
        moved = _Moved(0, 0, len(files))
    check_compat(models, [strategy], wanted, where=str(models))
    return moved


def _start_from_latest(
    backends: EngineBackends, choice: _Choice, models: Path, features: Sequence[str]
) -> Ready:
    """The seed's start-up: pull the latest tag when the strategy's models are missing; the ACTIVE config."""
    from tradai_release.bundles import ensure_models_present

    pulled = ensure_models_present(models, backends.hub, features={choice.strategy: list(features)})
    config = _load_config(backends, choice.strategy, None, None, None)
    return Ready(
        env=choice.env,
        profile=None,
        strategy=choice.strategy,
        config_id=config.config_id,
        config_hash=None,
        model_name=None,
        model_version=None,
        hub_tag=pulled.tag if pulled is not None else None,
        hub_sha256=pulled.manifest_sha256 if pulled is not None else None,
        image=None,
        git_commit=None,
        trace_id=None,
        deployment_id=None,
        pins_from=LATEST,
        models_dir=models,
        downloaded_bytes=pulled.downloaded_bytes if pulled is not None else 0,
        downloaded_files=pulled.downloaded_files if pulled is not None else 0,
        reused_files=pulled.reused_files if pulled is not None else 0,
        config=config,
    )


def _provenance(
    releases: ReleaseTable, applied: AppliedState | None
) -> tuple[str | None, str | None, str | None]:
    """The commit, trace id and deployment id of the last apply (Nones before the first)."""
    if applied is None:
        return None, None, None
    if not applied.deployment_id:
        return applied.commit, None, None
    deployment = releases.deployment(applied.deployment_id)
    trace_id = (deployment.trace_id or None) if deployment is not None else None
    return applied.commit, trace_id, applied.deployment_id


__all__ = [
    "DEPLOYMENT",
    "LATEST",
    "LIVE",
    "RECORD_FIELDS",
    "Ready",
    "read_variables",
    "start_bot",
    "strategy_features",
]
