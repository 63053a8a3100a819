"""Registration after training: one run, one new version of the strategy's registered model (§5)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.errors import RegistryError
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.registry.lifecycle import LIFECYCLE_TAG, NONE

if TYPE_CHECKING:
    from tradai_release.environments import Environment
    from tradai_release.settings import Settings
    from tradai_release.training.result import TrainingResult

EXPERIMENT_PREFIX = "tradai/"
MODEL_ARTIFACT_PATH = "model"
# What a consumer of the bundle needs installed; explicit so MLflow never infers (slow, networked).
PIP_REQUIREMENTS: tuple[str, ...] = ("onnxruntime", "numpy", "scikit-learn")
_MAX_PARAM_LENGTH = 6000
_READY_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: int
    run_id: str


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
    def for_env(cls, env: str | Environment, settings: Settings | None = None) -> ModelRegistrar:
        return cls(MlflowRegistry.for_env(env, settings))

    def register(self, result: TrainingResult, *, r2_tag: str | None = None,
                 config: Mapping[str, Any] | None = None) -> RegisteredVersion:
        """Log the run, register a new version of model ``result.strategy_name`` and wait until READY.

        ``config`` is the strategy's tradai.yaml (logged as ``config.*`` params next to the
        training params). The bundle files are logged as the model's artifacts with an MLmodel
        carrying the feature signature and explicit pip requirements, so no inference runs.
        """
        if not result.model_dir.is_dir():
            raise RegistryError(result.strategy_name, f"model directory {result.model_dir} does not exist")
        from mlflow.entities import Metric, Param, RunTag

        registry = self.registry
        client = registry.client
        name = result.strategy_name
        experiment_id = registry.experiment_id(EXPERIMENT_PREFIX + name)
        run_tags = {"strategy_name": name, "trace_id": result.trace_id}
        if result.git_commit:
            run_tags["mlflow.source.git.commit"] = result.git_commit
        run = registry.call(name, client.create_run, experiment_id, tags=run_tags, run_name=result.trace_id)
        run_id = run.info.run_id
        params = _flatten(result.params)
        params.update(_flatten(config or {}, "config."))
        params["feature_count"] = str(result.feature_count)
        params["data_rows"] = str(result.data_rows)
        millis = int(time.time() * 1000)
        metrics = [Metric(key, float(value), millis, 0) for key, value in sorted(result.metrics.items())]
        items = sorted(params.items())
        for start in range(0, max(len(items), 1), 100):  # MLflow takes at most 100 params per batch
            batch = [Param(key, value) for key, value in items[start : start + 100]]
            registry.call(name, client.log_batch, run_id, metrics=metrics if start == 0 else [],
                           params=batch, tags=[RunTag("feature_count", str(result.feature_count))])
        with tempfile.TemporaryDirectory(prefix="tradai-model-") as scratch:
            model_dir = Path(scratch) / MODEL_ARTIFACT_PATH
            self._write_model(result, model_dir, run_id)
            registry.call(name, client.log_artifacts, run_id, str(model_dir), MODEL_ARTIFACT_PATH)
        with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints run URLs; keep --json output clean
            registry.call(name, client.set_terminated, run_id)

        tags = {
            "strategy_name": name,
            "feature_count": str(result.feature_count),
            "trace_id": result.trace_id,
            LIFECYCLE_TAG: NONE,
        }
        if result.git_commit:
            tags["git_commit"] = result.git_commit
        if r2_tag:
            tags["r2_tag"] = r2_tag
        registry.create_registered_model_if_missing(name)
        source = f"{run.info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT_PATH}"
        created = registry.call(name, client.create_model_version, name, source, run_id=run_id, tags=tags)
        version = int(created.version)
        self._wait_ready(name, version, str(created.status))
        return RegisteredVersion(name=name, version=version, run_id=run_id)

    @staticmethod
    def _write_model(result: TrainingResult, target: Path, run_id: str) -> None:
        """The bundle's files plus an MLmodel (signature) and requirements.txt, in ``target``."""
        from mlflow.models import Model, ModelSignature
        from mlflow.types import ColSpec, Schema

        shutil.copytree(result.model_dir, target)
        signature = ModelSignature(
            inputs=Schema([ColSpec("double", feature) for feature in result.features]),
            outputs=Schema([ColSpec("long", "signal")]),
        )
        model = Model(artifact_path=MODEL_ARTIFACT_PATH, run_id=run_id, signature=signature)
        files = sorted(path.relative_to(result.model_dir).as_posix()
                       for path in result.model_dir.rglob("*") if path.is_file())
        model.add_flavor("tradai_bundle", files=files, strategy_name=result.strategy_name)
        model.save(str(target / "MLmodel"))
        (target / "requirements.txt").write_text("\n".join(PIP_REQUIREMENTS) + "\n", encoding="utf-8")

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


def register_training(settings: Settings, result: TrainingResult, r2_tag: str | None = None,
                      envs: Iterable[str | Environment] | None = None,
                      config: Mapping[str, Any] | None = None) -> dict[str, RegisteredVersion]:
    """Register ``result`` in each of ``envs`` (default: every declared environment); env name -> version.

    Each environment has its own registry, so a version pinned in an env must be registered there.
    """
    from tradai_release.environments import environments

    return {
        env.name: ModelRegistrar.for_env(env, settings).register(result, r2_tag=r2_tag, config=config)
        for env in environments(settings, envs)
    }
