"""MlflowRegistry: the ModelRegistry over MLflow (its reads and lifecycle writes), and the config-merge
layer that reads model-version tags from it."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tradai_release.core.errors import ModelVersionNotFound, RegistryError
from tradai_release.registry.adapter.connection import version_info
from tradai_release.registry.adapter.interface import STAGES, ModelRegistry, ModelVersionInfo
from tradai_release.registry.adapter.runs import MlflowRuns

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

    from tradai_release.core.settings import Settings
    from tradai_release.repository.environments import Environment

T = TypeVar("T")

# Names per ``name IN (...)`` filter and run ids per ``run_id IN (...)`` filter: short enough for any
# server's URL/SQL limits, long enough that a whole release repository is read in a handful of calls.
_NAMES_PER_SEARCH = 50
_MODELS_PER_PAGE = 1000  # the most one registered-model search page may hold
_RUNS_PER_SEARCH = 100


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MlflowRegistry(MlflowRuns):
    """ModelRegistry on an MLflow tracking server; the client is created on first use.

    ``artifact_root`` is where experiments created by this object keep their artifacts when the
    tracking URI is a database (so nothing lands in ``./mlruns``); an HTTP server keeps its own.
    """

    @classmethod
    def for_env(cls, env: Environment, settings: Settings | None = None) -> MlflowRegistry:
        """The registry of ``env`` (each environment has its own tracking URI)."""
        from tradai_release.core.settings import Settings

        settings = settings or Settings()
        backends = env.backends
        return cls(
            backends.mlflow_tracking_uri,
            backends.mlflow_artifact_root,
            timeout_seconds=settings.backend_timeout_seconds,
            retries=settings.backend_retries,
        )

    def __repr__(self) -> str:
        from tradai_release.core.redact import scrub_text

        return f"MlflowRegistry({scrub_text(self.tracking_uri)!r})"

    # --- reads ---------------------------------------------------------------------------------------

    def versions(self, names: Iterable[str]) -> dict[str, list[ModelVersionInfo]]:
        wanted = sorted(set(names))
        if self._unborn:
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
                (version_info(mv, metrics, aliases.get((name, int(mv.version)))) for mv in listed),
                key=lambda info: info.version,
            )
            for name, listed in found.items()
        }

    def aliased_models(self) -> dict[str, list[str]]:
        """Every registered model that has aliases, with them (one search, one call per 1000 models)."""
        if self._unborn:
            return {}
        models = self._all_pages(
            "registered models", self.client.search_registered_models, max_results=_MODELS_PER_PAGE
        )
        return {model.name: sorted(model.aliases) for model in models if model.aliases}

    def find_versions(self, name: str, tag: str, value: str) -> list[ModelVersionInfo]:
        """The versions of model ``name`` whose tag ``tag`` is ``value``, oldest first (one search, run
        metrics not read). ``tag`` is a plain identifier (letters, digits, ``_``)."""
        if self._unborn:
            return []
        filter_string = f"name = {_quote(name)} AND tags.{tag} = {_quote(value)}"
        found = self._search_versions(filter_string, name)
        return sorted((version_info(mv, {}) for mv in found), key=lambda info: info.version)

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
        return version_info(mv, metrics)

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


class MlflowTagSource:
    """The MLflow model-version-tags layer of the runtime config merge (docs/architecture.md §3)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    @classmethod
    def for_env(cls, env: Environment, settings: Settings | None = None) -> MlflowTagSource:
        return cls(MlflowRegistry.for_env(env, settings))

    def model_version_tags(self, model_name: str, version: int) -> dict[str, str]:
        """The tags of ``model_name`` version ``version``; raises ModelVersionNotFound."""
        return dict(self.registry.get_version(model_name, version).tags)
