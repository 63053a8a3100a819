"""A bot's start-up: make its models, config and model version the pinned ones, then say what it runs.

See docs/architecture.md §14. A bot's main calls :func:`start_bot` before it trades;
``python -m tradai_release.runtime`` does the same from a shell or a container's entry point.

What the bot must run comes from its deployment's pinned variables (``bots.BotPins``: the process
environment or an env file) and, without them, from the live state apply left (the profile's hub
pointer, the model alias ``p<N>``, the ACTIVE config as the applied state recorded it). The local
models of the strategy are compared with the pinned tag by content and pulled (that strategy
only, verified) when they differ; their model_compat.json must match the strategy's features;
the ACTIVE config must be the pinned one. Only JSON files are read here: no model file is loaded.

The package: ``ready`` (the record), ``pinning`` (which bot, which pins), ``config`` and ``models`` (what
start-up makes the pinned ones); here the start-up itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.errors import ConfigError, InputError, PinMismatch
from tradai_release.repository import bots
from tradai_release.runtime.config import load_config
from tradai_release.runtime.models import sync_models
from tradai_release.runtime.pinning import Choice, active_subject, check_config, choose, live_pins
from tradai_release.runtime.ready import DEPLOYMENT, LATEST, LIVE, Ready

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.engine.release_table import AppliedState, ReleaseTable
    from tradai_release.engine.state import EngineBackends
    from tradai_release.hub import TransferProgress


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
    from tradai_release.core.settings import Settings
    from tradai_release.engine.release_table import ReleaseTable
    from tradai_release.engine.state import EngineBackends, strategy_digest
    from tradai_release.repository.environments import environment

    settings = settings or Settings()
    variables = os.environ if variables is None else variables
    pins = bots.BotPins.from_variables(variables, where=source) if bots.has_pins(variables) else None
    choice = choose(env, profile, strategy, model_name, variables, pins, source)
    target = environment(settings, choice.env)
    features = strategy_features(settings, choice.strategy, ml_config)
    models = Path(os.path.abspath(models_dir if models_dir is not None else settings.models_path()))
    role = pins.role if pins is not None else bots.PRODUCTION_ROLE
    if role != bots.PRODUCTION_ROLE and models_dir is None:  # beside the champion on the same host: apart
        models = models.with_name(f"{models.name}-{role}")
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
        pinned = live_pins(backends, choice, applied, active, where=where, pinned_by=pinned_by)
    check_config(backends, active, pinned, where=where, pinned_by=pinned_by)
    manifest = backends.hub.read_tag(pinned.hub_tag, expected_sha256=pinned.hub_sha256)
    if pinned.files_sha256:  # the deployment pins the strategy's own files: the tag must hold exactly them
        held = strategy_digest(manifest, pinned.strategy)
        if held != pinned.files_sha256:
            raise PinMismatch(
                where,
                bots.FILES_SHA256,
                f"{pinned.strategy}'s files in hub tag {pinned.hub_tag}",
                (held or "none")[:12],
                pinned.files_sha256[:12],
                pinned_by=pinned_by,
            )
    config = load_config(backends, pinned.strategy, pinned.model_name, pinned.model_version, applied)
    if config.config_id != active.config_id:  # activated between the check and the load
        raise PinMismatch(
            where,
            bots.CONFIG_ID,
            active_subject(pinned),
            config.config_id,
            pinned.config_id or "",
            pinned_by=pinned_by,
        )
    moved = sync_models(backends, manifest, pinned, models, features, progress)
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
        role=role,
        files_sha256=pinned.files_sha256,
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
    from tradai_release.core.errors import ValidationFailed
    from tradai_release.core.yamlio import load_json
    from tradai_release.repository.strategy import check_ml_config
    from tradai_release.repository.tree import ReleaseTree

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


def _start_from_latest(
    backends: EngineBackends, choice: Choice, models: Path, features: Sequence[str]
) -> Ready:
    """The seed's start-up: pull the latest tag when the strategy's models are missing; the ACTIVE config."""
    from tradai_release.domain.bundles import ensure_models_present

    pulled = ensure_models_present(models, backends.hub, features={choice.strategy: list(features)})
    config = load_config(backends, choice.strategy, None, None, None)
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


__all__ = ["read_variables", "start_bot", "strategy_features"]
