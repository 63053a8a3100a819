"""Registration after training: one run, one new version of the strategy's registered model.

A bundle whose files equal an existing version's (same ``content_sha256`` tag) is not registered
again: that version is returned, marked duplicate. See docs/architecture.md §5.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.equity import EQUITY_TAG
from tradai_release.core.errors import RegistryError
from tradai_release.core.fsutil import file_sha256
from tradai_release.registry.adapter import MlflowRegistry, ModelFiles
from tradai_release.registry.lifecycle import LIFECYCLE_TAG, NONE

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.repository.environments import Environment
    from tradai_release.training.result import TrainingResult

EXPERIMENT_PREFIX = "tradai/"
MODEL_ARTIFACT_PATH = "model"
# What a consumer of the bundle needs installed; explicit so MLflow never infers (slow, networked).
PIP_REQUIREMENTS: tuple[str, ...] = ("onnxruntime", "numpy", "scikit-learn")
_MAX_PARAM_LENGTH = 6000
_READY_TIMEOUT_SECONDS = 60.0
# The version tag holding the bundle's content digest (``content_sha256``): what makes two bundles equal.
CONTENT_TAG = "content_sha256"
BACKTEST_ENGINE_TAG = "backtest_engine"  # the engine (and version) that computed the held-out metrics


@dataclass(frozen=True)
class RegisteredVersion:
    """The version a registration stands for: the model's name, the version number and the run that
    logged it. ``duplicate`` is True (``created`` False) when a version with the same files already
    existed and was returned instead of a new one; it is not stored, and not part of equality."""

    name: str
    version: int
    run_id: str
    duplicate: bool = field(default=False, compare=False)

    @property
    def created(self) -> bool:
        """True when this registration minted the version."""
        return not self.duplicate


def content_sha256(files: Mapping[str, str]) -> str:
    """A bundle's content digest: SHA-256 over its sorted ``(path, file sha256)`` pairs.

    ``files`` maps each path relative to the strategy's directory (``signal/ensemble_xgb.onnx``, no
    ``<Strategy>/`` prefix) to the SHA-256 of its bytes, so the digest of a local bundle and of the
    ``<Strategy>/`` files of a hub tag manifest are the same when the files are.
    """
    digest = hashlib.sha256()
    for path, sha256 in sorted(files.items()):
        digest.update(f"{path}\0{sha256}\n".encode())
    return digest.hexdigest()


def bundle_digests(model_dir: Path) -> dict[str, str]:
    """Relative POSIX path -> SHA-256 of every file under ``model_dir`` (read in chunks)."""
    digests: dict[str, str] = {}
    for path in sorted(model_dir.rglob("*")):
        if path.is_file():
            digests[path.relative_to(model_dir).as_posix()] = file_sha256(path)
    return digests


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            flat[name] = text[:_MAX_PARAM_LENGTH]
    return flat


class ModelRegistrar:
    """Registers trained bundles in one environment's MLflow registry."""

    def __init__(self, registry: MlflowRegistry) -> None:
        self.registry = registry

    @classmethod
    def for_env(cls, env: Environment, settings: Settings | None = None) -> ModelRegistrar:
        return cls(MlflowRegistry.for_env(env, settings))

    def register(self, result: TrainingResult, *, r2_tag: str | None = None,
                 config: Mapping[str, Any] | None = None) -> RegisteredVersion:
        """Log the run, register a new version of model ``result.strategy_name`` and wait until READY.

        ``config`` is the strategy's tradai.yaml (logged as ``config.*`` params next to the
        training params). The bundle files are logged as the model's artifacts with an MLmodel
        carrying the feature signature and explicit pip requirements, so no inference runs.
        The version is tagged with the bundle's ``content_sha256``; when a READY version with the same
        digest exists, nothing is written and the oldest such version is returned, marked duplicate
        (its run, metrics, tags and r2_tag stay as they are). Versions registered before the tag
        existed carry none and are never found: at worst they get one more version.
        """
        if not result.model_dir.is_dir():
            raise RegistryError(result.strategy_name, f"model directory {result.model_dir} does not exist")
        registry = self.registry
        name = result.strategy_name
        content = content_sha256(bundle_digests(result.model_dir))
        existing = self.find(name, content)
        if existing is not None:
            return existing
        run_tags = {"strategy_name": name, "trace_id": result.trace_id}
        if result.git_commit:
            run_tags["mlflow.source.git.commit"] = result.git_commit
        run = registry.start_run(name, experiment=EXPERIMENT_PREFIX + name, run_name=result.trace_id,
                                 tags=run_tags)
        params = _flatten(result.params)
        params.update(_flatten(config or {}, "config."))
        params["feature_count"] = str(result.feature_count)
        params["data_rows"] = str(result.data_rows)
        registry.log_run_data(name, run.run_id, params=params, metrics=result.metrics,
                              tags={"feature_count": str(result.feature_count)})
        source = registry.log_model(name, run, result.model_dir, _model_files(result))
        registry.end_run(name, run.run_id)

        tags = {
            "strategy_name": name,
            "feature_count": str(result.feature_count),
            "trace_id": result.trace_id,
            LIFECYCLE_TAG: NONE,
            CONTENT_TAG: content,
        }
        if result.git_commit:
            tags["git_commit"] = result.git_commit
        if r2_tag:
            tags["r2_tag"] = r2_tag
        if result.equity is not None:  # with the version, not as an artifact: read with it, no download
            tags[EQUITY_TAG] = result.equity.to_tag()
        if result.backtest_engine:
            tags[BACKTEST_ENGINE_TAG] = result.backtest_engine
        registry.create_registered_model_if_missing(name)
        created = registry.create_version(name, source, run_id=run.run_id, tags=tags)
        self._wait_ready(name, created.version, created.status)
        return RegisteredVersion(name=name, version=created.version, run_id=run.run_id)

    def find(self, name: str, content: str) -> RegisteredVersion | None:
        """The oldest READY version of ``name`` tagged ``content`` (one registry search), as a duplicate."""
        found = self.registry.find_versions(name, CONTENT_TAG, content)
        ready = next((info for info in found if info.status == "READY"), None)
        if ready is None:
            return None
        return RegisteredVersion(name, ready.version, ready.run_id or "", duplicate=True)

    def _wait_ready(self, name: str, version: int, status: str) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        delay = 0.05
        while status != "READY":
            if status == "FAILED_REGISTRATION":
                raise RegistryError(f"{name} version {version}", "registration failed")
            if time.monotonic() > deadline:
                detail = f"still {status} after {_READY_TIMEOUT_SECONDS:g}s"
                raise RegistryError(f"{name} version {version}", detail)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            status = self.registry.get_version(name, version).status


def _model_files(result: TrainingResult) -> ModelFiles:
    """The bundle as an MLflow model: the features in, the signal out, the file list as its flavor."""
    files = sorted(path.relative_to(result.model_dir).as_posix()
                   for path in result.model_dir.rglob("*") if path.is_file())
    return ModelFiles(
        artifact_path=MODEL_ARTIFACT_PATH,
        inputs={feature: "double" for feature in result.features},
        outputs={"signal": "long"},
        flavor="tradai_bundle",
        flavor_attributes={"files": files, "strategy_name": result.strategy_name},
        pip_requirements=PIP_REQUIREMENTS,
    )


def register_training(settings: Settings, result: TrainingResult, r2_tag: str | None = None,
                      envs: Iterable[Environment] | None = None,
                      config: Mapping[str, Any] | None = None) -> dict[str, RegisteredVersion]:
    """Register ``result`` in each of ``envs`` (default: every declared environment); env name -> version.

    Each environment has its own registry, so a version pinned in an env must be registered there. In
    an environment that already has a version with the same files, that version comes back (duplicate).
    """
    from tradai_release.repository.environments import environments

    return {
        env.name: ModelRegistrar.for_env(env, settings).register(result, r2_tag=r2_tag, config=config)
        for env in (environments(settings) if envs is None else envs)
    }
