"""The model registry interface and its MLflow implementation (SQLite or an ``mlflow server`` over HTTP)."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from tradai_release.errors import ModelVersionNotFound, RegistryError

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel
    from mlflow.tracking import MlflowClient

    from tradai_release.environments import Environment
    from tradai_release.settings import Settings

T = TypeVar("T")

# The legacy stage names MLflow accepts; our lifecycle uses the same words.
STAGES: tuple[str, ...] = ("None", "Staging", "Production", "Archived")

# Names per ``name IN (...)`` filter and run ids per ``run_id IN (...)`` filter: short enough for any
# server's URL/SQL limits, long enough that a whole release repository is read in a handful of calls.
_NAMES_PER_SEARCH = 50
_RUNS_PER_SEARCH = 100
_PARAMS_PER_BATCH = 100  # MLflow's limit for one log_batch


@dataclass(frozen=True)
class ModelVersionInfo:
    """One version of a registered model as the registry holds it now.

    ``version`` is always an int (MLflow returns a str over HTTP). ``metrics`` are the metrics of the
    run that produced the version (empty when the version has no run). ``stage`` is the legacy field.
    """

    name: str
    version: int
    status: str
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    run_id: str | None = None
    created_at: datetime | None = None
    stage: str = "None"
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def lifecycle(self) -> str:
        """The lifecycle recorded on the version: the ``lifecycle`` tag, else the legacy stage."""
        return self.tags.get("lifecycle") or self.stage or "None"


@runtime_checkable
class ModelRegistry(Protocol):
    """What plan/apply, the registrar and the read views need from a model registry."""

    @property
    def calls(self) -> int:
        """How many registry API calls this object has made so far."""
        ...

    def versions(self, names: Iterable[str]) -> dict[str, list[ModelVersionInfo]]:
        """Every version of each named model (oldest first); unknown names map to an empty list."""
        ...

    def get_version(self, name: str, version: int) -> ModelVersionInfo:
        """One version; raises ModelVersionNotFound."""
        ...

    def set_alias(self, name: str, alias: str, version: int) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None: ...

    def delete_version_tag(self, name: str, version: int, key: str) -> None: ...

    def set_stage(self, name: str, version: int, stage: str) -> bool:
        """Mirror ``stage`` to the legacy field; False when the server no longer accepts stages."""
        ...

    def create_registered_model_if_missing(self, name: str) -> None: ...


@dataclass(frozen=True)
class LoggedRun:
    """A run created in the registry's tracking store: its id and where its artifacts are kept."""

    run_id: str
    artifact_uri: str


@dataclass(frozen=True)
class ModelFiles:
    """How to log a directory of files as an MLflow model, without MLflow inferring anything.

    ``inputs`` and ``outputs`` map column names to MLflow column types (``double``, ``long``...)
    and become the MLmodel signature; ``flavor`` names the flavor whose attributes are
    ``flavor_attributes``; ``pip_requirements`` is written as the model's requirements.txt.
    """

    artifact_path: str
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    flavor: str
    flavor_attributes: Mapping[str, Any] = field(default_factory=dict)
    pip_requirements: tuple[str, ...] = ()


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _timestamp(millis: int | None) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, tz=UTC) if millis else None


def _artifact_location(root: str) -> str:
    """The artifact root as a URI MLflow accepts (plain paths become ``file://`` URIs)."""
    if "://" in root or root.startswith("mlflow-artifacts:"):
        return root
    return Path(root).expanduser().resolve().as_uri()


class MlflowRegistry:
    """ModelRegistry on an MLflow tracking server; the client is created on first use.

    ``artifact_root`` is where experiments created by this object keep their artifacts when the
    tracking URI is a database (so nothing lands in ``./mlruns``); an HTTP server keeps its own.
    """

    def __init__(
        self,
        tracking_uri: str,
        artifact_root: str | None = None,
        *,
        timeout_seconds: float | None = None,
        retries: int | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self._client: MlflowClient | None = None
        self._calls = 0
        self._stages_supported = True

    @classmethod
    def for_env(cls, env: str | Environment, settings: Settings | None = None) -> MlflowRegistry:
        """The registry of ``env`` (each environment has its own tracking URI)."""
        from tradai_release.environments import environment
        from tradai_release.settings import Settings

        settings = settings or Settings()
        backends = environment(settings, env).backends
        return cls(
            backends.mlflow_tracking_uri,
            backends.mlflow_artifact_root,
            timeout_seconds=settings.backend_timeout_seconds,
            retries=settings.backend_retries,
        )

    def __repr__(self) -> str:
        return f"MlflowRegistry({self.tracking_uri!r})"

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def is_remote(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://", "databricks"))

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            import logging

            from mlflow.tracking import MlflowClient

            # MLflow and alembic log schema set-up at INFO on every new SQLite store: noise in a CLI.
            for name in ("mlflow", "alembic"):
                logging.getLogger(name).setLevel(logging.WARNING)

            if self.tracking_uri.startswith("sqlite:///"):
                Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            if self.is_remote:
                _bound_http_requests(self.timeout_seconds, self.retries)
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    @contextmanager
    def _translate(self, target: str, version: tuple[str, int] | None = None) -> Iterator[None]:
        """Turn MlflowException into a project error naming ``target``."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as err:
            if version is not None and err.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ModelVersionNotFound(*version) from err
            self._raise_if_unreachable(err)
            message = str(err.message).splitlines()[0] if err.message else err.error_code
            raise RegistryError(target, message) from err

    def _raise_if_unreachable(self, err: Exception) -> None:
        """A request the server never answered is the server's failure, named by its URL, not the target's."""
        if self.is_remote and _unreachable(err):
            attempts = f" after {self.retries + 1} attempts" if self.retries is not None else ""
            cause = _root_cause(err)
            raise RegistryError(self.tracking_uri, f"cannot reach the server{attempts} ({cause})") from err

    def call(self, target: str, fn: Callable[..., T], *args: Any, version: tuple[str, int] | None = None,
             **kwargs: Any) -> T:
        """Call ``fn`` on the client, counted, with MlflowException translated (naming ``target``)."""
        self._calls += 1
        with self._translate(target, version):
            return fn(*args, **kwargs)

    # --- reads ---------------------------------------------------------------------------------------

    def versions(self, names: Iterable[str]) -> dict[str, list[ModelVersionInfo]]:
        wanted = sorted(set(names))
        if self.tracking_uri.startswith("sqlite:///") and not Path(self.tracking_uri[10:]).exists():
            return {name: [] for name in wanted}  # an environment nothing was registered in yet: no database
        found: dict[str, list[ModelVersion]] = {name: [] for name in wanted}
        aliases: dict[tuple[str, int], list[str]] = {}
        for chunk in _chunks(wanted, _NAMES_PER_SEARCH):
            filter_string = f"name IN ({', '.join(_quote(name) for name in chunk)})"
            # Model-version search leaves aliases empty on some stores; the registered models carry them.
            for model in self._search_models(filter_string, ", ".join(chunk)):
                for alias, version in (model.aliases or {}).items():
                    aliases.setdefault((model.name, int(version)), []).append(alias)
            for model_version in self._search_versions(filter_string, ", ".join(chunk)):
                found.setdefault(model_version.name, []).append(model_version)
        run_ids = sorted({mv.run_id for listed in found.values() for mv in listed if mv.run_id})
        metrics = self._run_metrics(run_ids)
        return {
            name: sorted(
                (self._info(mv, metrics, aliases.get((name, int(mv.version)))) for mv in listed),
                key=lambda info: info.version,
            )
            for name, listed in found.items()
        }

    def find_versions(self, name: str, tag: str, value: str) -> list[ModelVersionInfo]:
        """The versions of model ``name`` whose tag ``tag`` is ``value``, oldest first (one search, run
        metrics not read). ``tag`` is a plain identifier (letters, digits, ``_``)."""
        if self.tracking_uri.startswith("sqlite:///") and not Path(self.tracking_uri[10:]).exists():
            return []
        filter_string = f"name = {_quote(name)} AND tags.{tag} = {_quote(value)}"
        found = self._search_versions(filter_string, name)
        return sorted((self._info(mv, {}) for mv in found), key=lambda info: info.version)

    def _search_models(self, filter_string: str, target: str) -> list[RegisteredModel]:
        return self._all_pages(target, self.client.search_registered_models, filter_string=filter_string)

    def _search_versions(self, filter_string: str, target: str) -> list[ModelVersion]:
        return self._all_pages(target, self.client.search_model_versions, filter_string=filter_string)

    def _all_pages(self, target: str, search: Callable[..., Any], **arguments: Any) -> list[Any]:
        """Every result of a paged MLflow search (one counted call per page)."""
        results: list[Any] = []
        token: str | None = None
        while True:
            page = self.call(target, search, page_token=token, **arguments)
            results.extend(page)
            token = page.token
            if not token:
                return results

    def _run_metrics(self, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Latest metrics of each run, read in batches with search_runs (never one call per run)."""
        if not run_ids:
            return {}
        from mlflow.entities import ViewType

        experiments = self._all_pages("experiments", self.client.search_experiments, view_type=ViewType.ALL)
        experiment_ids = [experiment.experiment_id for experiment in experiments]
        metrics: dict[str, dict[str, float]] = {}
        for chunk in _chunks(run_ids, _RUNS_PER_SEARCH):
            filter_string = f"attributes.run_id IN ({', '.join(_quote(run_id) for run_id in chunk)})"
            runs = self._all_pages("runs", self.client.search_runs, experiment_ids=experiment_ids,
                                   filter_string=filter_string, run_view_type=ViewType.ALL)
            for run in runs:
                metrics[run.info.run_id] = dict(run.data.metrics)
        return metrics

    @staticmethod
    def _info(mv: ModelVersion, metrics: Mapping[str, Mapping[str, float]],
              aliases: Iterable[str] | None = None) -> ModelVersionInfo:
        return ModelVersionInfo(
            name=mv.name,
            version=int(mv.version),
            status=str(mv.status),
            tags=dict(mv.tags or {}),
            aliases=tuple(sorted(set(getattr(mv, "aliases", None) or ()) | set(aliases or ()))),
            run_id=mv.run_id or None,
            created_at=_timestamp(mv.creation_timestamp),
            stage=str(mv.current_stage or "None"),
            metrics=dict(metrics.get(mv.run_id or "", {})),
        )

    def get_version(self, name: str, version: int) -> ModelVersionInfo:
        target = f"{name} version {version}"
        mv = self.call(target, self.client.get_model_version, name, str(version), version=(name, version))
        metrics: dict[str, dict[str, float]] = {}
        if mv.run_id:
            from mlflow.exceptions import MlflowException

            try:
                self._calls += 1
                metrics[mv.run_id] = dict(self.client.get_run(mv.run_id).data.metrics)
            except MlflowException:
                pass  # the run was deleted: the version still exists, only without metrics
        return self._info(mv, metrics)

    # --- writes --------------------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.call(f"{name} alias {alias}", self.client.set_registered_model_alias, name, alias, str(version),
                   version=(name, version))

    def delete_alias(self, name: str, alias: str) -> None:
        self.call(f"{name} alias {alias}", self.client.delete_registered_model_alias, name, alias)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.call(f"{name} version {version}", self.client.set_model_version_tag, name, str(version), key,
                   value, version=(name, version))

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        self.call(f"{name} version {version}", self.client.delete_model_version_tag, name, str(version), key,
                   version=(name, version))

    def set_stage(self, name: str, version: int, stage: str) -> bool:
        if stage not in STAGES:
            raise RegistryError(f"{name} version {version}", f"unknown stage {stage!r}")
        if not self._stages_supported:
            return False
        from mlflow.exceptions import MlflowException

        self._calls += 1
        try:
            with warnings.catch_warnings():
                # Stages are deprecated in MLflow 3; the lifecycle lives in aliases and tags, the stage is
                # only a mirror for older readers, so the deprecation is ours to handle, not the user's.
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                self.client.transition_model_version_stage(name, str(version), stage,
                                                           archive_existing_versions=False)
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ModelVersionNotFound(name, version) from err
            self._raise_if_unreachable(err)
            if err.error_code in ("ENDPOINT_NOT_FOUND", "FEATURE_DISABLED", "NOT_IMPLEMENTED"):
                self._stages_supported = False
                return False
            raise RegistryError(f"{name} version {version}", str(err.message).splitlines()[0]) from err
        return True

    def create_registered_model_if_missing(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        self._calls += 1
        try:
            self.client.create_registered_model(name)
        except MlflowException as err:
            self._raise_if_unreachable(err)
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise RegistryError(name, str(err.message).splitlines()[0]) from err

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


    # --- runs and new versions (the registrar's writes) -------------------------------------------------

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
        return self._info(created, {})


# MLflow's HTTP client reads its retry budget and timeout from these variables on every request; its
# defaults (7 retries, back-off doubling from 4 s to 120 s, 120 s timeout) keep a dead server's caller
# waiting over 4 minutes. Values we set are ours to replace; a value the user exported is left alone.
_HTTP_VARIABLES = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_POOL_MAXSIZE",
)
_SET_BY_US: dict[str, str] = {}


def _bound_http_requests(timeout_seconds: float | None, retries: int | None) -> None:
    """Set MLflow's HTTP timeout and retries from settings, unless the user exported their own.

    Back-off factor 1: urllib3 waits 0, 2, 4, 8... s (plus up to 1 s jitter) between attempts,
    so 3 retries ride out about 6 s of a restarting server. The connection pool holds as many
    connections as apply runs writes at once.
    """
    import math
    import os

    wanted = {"MLFLOW_HTTP_POOL_MAXSIZE": "32"}
    if timeout_seconds is not None:
        wanted["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, math.ceil(timeout_seconds)))
    if retries is not None:
        wanted["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(retries)
        wanted["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    for name, value in wanted.items():
        current = os.environ.get(name)
        if current is None or current == _SET_BY_US.get(name):
            os.environ[name] = value
            _SET_BY_US[name] = value


def _unreachable(err: BaseException) -> bool:
    """True when an MLflow HTTP call failed because the server did not answer (refused, timed out)."""
    import requests

    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return True
        current = current.__cause__ or current.__context__
    return False


def _root_cause(err: BaseException) -> str:
    """The innermost reason of a failed request, in one line (``[Errno 111] Connection refused``)."""
    import re

    text = str(err)
    found = re.findall(r"\[Errno -?\d+\][^'\")\]]*|Read timed out|timed out", text)
    return found[-1].strip() if found else text.splitlines()[0][:200]


class MlflowTagSource:
    """The MLflow model-version-tags layer of the runtime config merge (docs/architecture.md §3)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    @classmethod
    def for_env(cls, env: str | Environment, settings: Settings | None = None) -> MlflowTagSource:
        return cls(MlflowRegistry.for_env(env, settings))

    def model_version_tags(self, model_name: str, version: int) -> dict[str, str]:
        """The tags of ``model_name`` version ``version``; raises ModelVersionNotFound."""
        return dict(self.registry.get_version(model_name, version).tags)
