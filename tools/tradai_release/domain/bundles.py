"""A bot's model bundle: which hub tag it pulls (latest, a tag, or its profile's approved revision) and
the verified pull, checked against the features its strategies' ml_config.json lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.errors import InputError
from tradai_release.hub.compat import COMPAT_FILE, check_compat
from tradai_release.hub.names import check_strategy_dir
from tradai_release.repository.bundle_metadata import SIGNAL_ONNX
from tradai_release.repository.manifest import parse_profile

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.hub import ModelHub, PullResult, TransferProgress


def check_profile(settings: Settings, env: str, profile: int) -> str:
    """``--env`` / ``--profile`` of a pull: the env must be declared; when the repository at hand has the
    env's manifests, the profile must be one of them (a bot host without the repository skips that)."""
    from tradai_release.repository.environments import environment
    from tradai_release.repository.tree import ReleaseTree

    target = environment(settings, env)
    tree = ReleaseTree.work(settings.repo)
    if tree.profiles(target.name):
        tree.profile(target.name, profile)
    else:
        parse_profile(profile)
    return target.name


def pull_models(
    settings: Settings,
    hub: ModelHub,
    dest: Path,
    *,
    tag: str | None = None,
    env: str | None = None,
    profile: int | None = None,
    strategies: Sequence[str] | None = None,
    progress: TransferProgress | None = None,
) -> PullResult:
    """Pull into ``dest``: ``tag``, else ``env``'s ``profile`` pointer, else latest; every file verified and
    each strategy's model_compat.json checked against its ml_config.json features (when the repository
    has the strategy). With ``strategies``, only their files, each ``dest/<S>`` replaced on its own."""
    from tradai_release.repository.tree import ReleaseTree

    if profile is not None:
        if env is None:
            raise InputError("--pull", "env", "a profile pointer needs an environment")
        env = check_profile(settings, env, profile)
    name, expected = hub.resolve(tag=tag, env=env, profile=profile)
    manifest = hub.read_tag(name, expected_sha256=expected)
    for strategy in strategies or ():
        check_strategy_dir(strategy, where="--strategy")
    features = ReleaseTree.work(settings.repo).features(strategies or manifest.strategies)
    return hub.pull(dest, tag=name, expected_sha256=expected or hub.tag_sha256(name), features=features,
                    strategies=strategies, progress=progress)


def ensure_models_present(
    models_dir: Path,
    hub: ModelHub,
    *,
    env: str | None = None,
    profile: int | None = None,
    features: Mapping[str, Sequence[str]] | None = None,
) -> PullResult | None:
    """A bot's start-up: pull (the profile's approved revision, else latest) when models are missing.

    Models count as present when every strategy of ``features`` (or, without features, at
    least one strategy) has its model_compat.json and its signal model's ONNX (``SIGNAL_ONNX``). Returns the
    pull's result, or None when nothing had to be pulled.
    """
    strategies = list(features) if features else _strategy_dirs(models_dir)
    if strategies and all(
        (models_dir / s / COMPAT_FILE).is_file()
        and (models_dir / s / SIGNAL_ONNX).is_file()
        for s in strategies
    ):
        check_compat(models_dir, strategies, features, where=str(models_dir))
        return None
    if profile is not None:
        if env is None:
            raise InputError("--pull", "env", "a profile pointer needs an environment")
        return hub.pull(models_dir, env=env, profile=profile, features=features)
    return hub.pull(models_dir, features=features)


def _strategy_dirs(models_dir: Path) -> list[str]:
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
