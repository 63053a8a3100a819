"""Registration after training: one run, one new version of the strategy's registered model.

A bundle whose files equal an existing version's (same ``content_sha256`` tag) is not registered
again: that version is returned, marked duplicate. A version is trained once: its lineage tags
(``LINEAGE_TAGS``) are written at its first registration and copied unchanged when another
environment takes the same artifact (``carry``). See docs/architecture.md §5 and §19.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.equity import EQUITY_TAG
from tradai_release.core.errors import RegistryError
from tradai_release.core.fsutil import file_sha256
from tradai_release.registry.adapter import MlflowRegistry, ModelFiles, ModelVersionInfo
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
TRAINING_RUN_TAG = "training_run"  # "<env>/<run id>": the run that trained the files, in its first registry
DATA_WINDOW_TAG = "data_window"  # "<first candle>/<last candle>" of the data the model was trained on
DATA_SHA256_TAG = "data_sha256"  # SHA-256 of that data file
PROMOTED_FROM_TAG = "promoted_from"  # "<env>:v<N>": the version of an earlier environment this one carries
# What makes a version the artifact it is, wherever it is registered: written once, carried unchanged.
LINEAGE_TAGS: tuple[str, ...] = (
    "strategy_name", "feature_count", "trace_id", "git_commit", "r2_tag", CONTENT_TAG, EQUITY_TAG,
    BACKTEST_ENGINE_TAG, TRAINING_RUN_TAG, DATA_WINDOW_TAG, DATA_SHA256_TAG,
)


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

    def __init__(self, registry: MlflowRegistry, env: str = "") -> None:
        self.registry = registry
        self.env = env  # the environment whose registry this is (names the training run in lineage)

    @classmethod
    def for_env(cls, env: Environment, settings: Settings | None = None) -> ModelRegistrar:
        return cls(MlflowRegistry.for_env(env, settings), env.name)

    def register(self, result: TrainingResult, *, r2_tag: str | None = None,
                 config: Mapping[str, Any] | None = None,
                 training_run: str | None = None) -> RegisteredVersion:
        """Log the run, register a new version of model ``result.strategy_name`` and wait until READY.

        ``config`` is the strategy's tradai.yaml (logged as ``config.*`` params next to the
        training params). The bundle files are logged as the model's artifacts with an MLmodel
        carrying the feature signature and explicit pip requirements, so no inference runs.
        The version is tagged with the bundle's ``content_sha256``; when a READY version with the same
        digest exists, nothing is written and the oldest such version is returned, marked duplicate
        (its run, metrics, tags and r2_tag stay as they are). Versions registered before the tag
        existed carry none and are never found: at worst they get one more version. ``training_run``
        names the run of an earlier registration of the same training (else this one's run).
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
        source = registry.log_model(name, run, result.model_dir,
                                    _model_files(name, result.model_dir, result.features))
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
        tags[TRAINING_RUN_TAG] = training_run or self.run_name(run.run_id)
        start, end = result.params.get("data_start"), result.params.get("data_end")
        if start and end:
            tags[DATA_WINDOW_TAG] = f"{start}/{end}"
        if result.params.get("data_sha256"):
            tags[DATA_SHA256_TAG] = str(result.params["data_sha256"])
        return self._create(name, source, run.run_id, tags)

    def run_name(self, run_id: str) -> str:
        """How lineage names a run of this registry: ``<env>/<run id>``."""
        return f"{self.env}/{run_id}" if self.env else run_id

    def carry(self, source: ModelVersionInfo, model_dir: Path, features: Sequence[str], *,
              promoted_from: str) -> RegisteredVersion:
        """Register here the version another environment's registry holds (``source``): the same files
        (``model_dir``, pulled from the hub and verified), metrics and lineage tags, and
        ``promoted_from``. A READY version with the same files here is returned instead (duplicate)."""
        name = source.name
        content = content_sha256(bundle_digests(model_dir))
        existing = self.find(name, content)
        if existing is not None:
            return existing
        registry = self.registry
        trace = source.tags.get("trace_id") or f"{name}-v{source.version}"
        run_tags = {"strategy_name": name, "trace_id": trace, PROMOTED_FROM_TAG: promoted_from}
        if source.tags.get("git_commit"):
            run_tags["mlflow.source.git.commit"] = source.tags["git_commit"]
        run = registry.start_run(name, experiment=EXPERIMENT_PREFIX + name, run_name=trace, tags=run_tags)
        registry.log_run_data(name, run.run_id, params={PROMOTED_FROM_TAG: promoted_from},
                              metrics=source.metrics, tags={})
        uri = registry.log_model(name, run, model_dir, _model_files(name, model_dir, features))
        registry.end_run(name, run.run_id)
        tags = {key: source.tags[key] for key in LINEAGE_TAGS if key in source.tags}
        tags.update({CONTENT_TAG: content, LIFECYCLE_TAG: NONE, PROMOTED_FROM_TAG: promoted_from})
        return self._create(name, uri, run.run_id, tags)

    def _create(self, name: str, source: str, run_id: str, tags: Mapping[str, str]) -> RegisteredVersion:
        self.registry.create_registered_model_if_missing(name)
        created = self.registry.create_version(name, source, run_id=run_id, tags=tags)
        self._wait_ready(name, created.version, created.status)
        return RegisteredVersion(name=name, version=created.version, run_id=run_id)

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


def _model_files(name: str, model_dir: Path, features: Sequence[str]) -> ModelFiles:
    """The bundle as an MLflow model: the features in, the signal out, the file list as its flavor."""
    files = sorted(path.relative_to(model_dir).as_posix() for path in model_dir.rglob("*") if path.is_file())
    return ModelFiles(
        artifact_path=MODEL_ARTIFACT_PATH,
        inputs={feature: "double" for feature in features},
        outputs={"signal": "long"},
        flavor="tradai_bundle",
        flavor_attributes={"files": files, "strategy_name": name},
        pip_requirements=PIP_REQUIREMENTS,
    )


def register_training(settings: Settings, result: TrainingResult, r2_tag: str | None = None,
                      envs: Iterable[Environment] | None = None,
                      config: Mapping[str, Any] | None = None) -> dict[str, RegisteredVersion]:
    """Register ``result`` in each of ``envs`` (default: every declared environment); env name -> version.

    Each environment has its own registry, so a version pinned in an env must be registered there. In
    an environment that already has a version with the same files, that version comes back (duplicate).
    Every registration names the first one's run as the training run (one training, one lineage).
    """
    from tradai_release.repository.environments import environments

    registered: dict[str, RegisteredVersion] = {}
    training_run: str | None = None
    for env in environments(settings) if envs is None else envs:
        registrar = ModelRegistrar.for_env(env, settings)
        version = registrar.register(result, r2_tag=r2_tag, config=config, training_run=training_run)
        registered[env.name] = version
        if training_run is None and version.created:
            training_run = registrar.run_name(version.run_id)
        elif training_run is None:  # an earlier registration of the same files: its lineage
            tags = registrar.registry.get_version(version.name, version.version).tags
            training_run = tags.get(TRAINING_RUN_TAG) or registrar.run_name(version.run_id)
    return registered
