"""The registrar's writes to MLflow: experiments, runs with their data, logged models and new versions."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tradai_release.core.errors import RegistryError
from tradai_release.registry.adapter.connection import MlflowConnection, version_info
from tradai_release.registry.adapter.interface import LoggedRun, ModelFiles, ModelVersionInfo

_PARAMS_PER_BATCH = 100  # MLflow's limit for one log_batch


def _artifact_location(root: str) -> str:
    """The artifact root as a URI MLflow accepts (plain paths become ``file://`` URIs)."""
    if "://" in root or root.startswith("mlflow-artifacts:"):
        return root
    return Path(root).expanduser().resolve().as_uri()


class MlflowRuns(MlflowConnection):
    """Runs and new model versions on an MLflow tracking server (the base of MlflowRegistry)."""

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, created with this registry's artifact root when missing."""
        from mlflow.exceptions import MlflowException

        experiment = self.call(name, self.client.get_experiment_by_name, name)
        if experiment is not None:
            return str(experiment.experiment_id)
        local = not self.is_remote and self.artifact_root
        location = _artifact_location(self.artifact_root) if local and self.artifact_root else None
        self._calls += 1
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException as err:
            raced = self.call(name, self.client.get_experiment_by_name, name)
            if err.error_code == "RESOURCE_ALREADY_EXISTS" and raced is not None:  # created concurrently
                return str(raced.experiment_id)
            raise RegistryError(name, str(err.message).splitlines()[0]) from err

    def start_run(self, name: str, *, experiment: str, run_name: str, tags: Mapping[str, str]) -> LoggedRun:
        """A new run for model ``name`` in ``experiment`` (created when missing)."""
        experiment_id = self.experiment_id(experiment)
        run = self.call(name, self.client.create_run, experiment_id, tags=dict(tags), run_name=run_name)
        return LoggedRun(run_id=str(run.info.run_id), artifact_uri=str(run.info.artifact_uri))

    def log_run_data(self, name: str, run_id: str, *, params: Mapping[str, str], metrics: Mapping[str, float],
                     tags: Mapping[str, str]) -> None:
        """Log params, metrics (stamped now) and run tags, in as few batches as MLflow allows."""
        from mlflow.entities import Metric, Param, RunTag

        millis = int(time.time() * 1000)
        metric_list = [Metric(key, float(value), millis, 0) for key, value in sorted(metrics.items())]
        tag_list = [RunTag(key, value) for key, value in sorted(tags.items())]
        items = sorted(params.items())
        for start in range(0, max(len(items), 1), _PARAMS_PER_BATCH):
            batch = [Param(key, value) for key, value in items[start : start + _PARAMS_PER_BATCH]]
            first = start == 0
            self.call(name, self.client.log_batch, run_id, metrics=metric_list if first else [],
                      params=batch, tags=tag_list if first else [])

    def log_model(self, name: str, run: LoggedRun, source: Path, files: ModelFiles) -> str:
        """Log the files under ``source`` as ``run``'s model, with an MLmodel as ``files`` describes.

        Returns the model's artifact URI (what a new model version takes as its source).
        """
        from mlflow.models import Model, ModelSignature
        from mlflow.types import ColSpec, Schema

        with tempfile.TemporaryDirectory(prefix="tradai-model-") as scratch:
            target = Path(scratch) / files.artifact_path
            shutil.copytree(source, target)
            with self._translate(name):
                signature = ModelSignature(
                    inputs=Schema([ColSpec(kind, column) for column, kind in files.inputs.items()]),
                    outputs=Schema([ColSpec(kind, column) for column, kind in files.outputs.items()]),
                )
                model = Model(artifact_path=files.artifact_path, run_id=run.run_id, signature=signature)
                model.add_flavor(files.flavor, **files.flavor_attributes)
                model.save(str(target / "MLmodel"))
            # Explicit requirements, so MLflow never infers them (slow, and it reaches the network).
            (target / "requirements.txt").write_text(
                "".join(f"{requirement}\n" for requirement in files.pip_requirements), encoding="utf-8"
            )
            self.call(name, self.client.log_artifacts, run.run_id, str(target), files.artifact_path)
        return f"{run.artifact_uri.rstrip('/')}/{files.artifact_path}"

    def end_run(self, name: str, run_id: str) -> None:
        """Mark the run FINISHED."""
        with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints run URLs; keep --json output clean
            self.call(name, self.client.set_terminated, run_id)

    def create_version(self, name: str, source: str, *, run_id: str,
                       tags: Mapping[str, str]) -> ModelVersionInfo:
        """A new version of model ``name`` from ``source``; its status may still be PENDING_REGISTRATION."""
        created = self.call(name, self.client.create_model_version, name, source, run_id=run_id,
                            tags=dict(tags))
        return version_info(created, {})
