"""One MLflow tracking server's client: created on first use with bounded HTTP requests, every call
counted, and MLflow's errors and model versions translated into the project's own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tradai_release.core.errors import ModelVersionNotFound, RegistryError
from tradai_release.registry.adapter.interface import ModelVersionInfo

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

T = TypeVar("T")


class MlflowConnection:
    """The client of one tracking URI (the base of MlflowRegistry): lazy, counted, errors translated."""

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

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def is_remote(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://", "databricks"))

    @property
    def _database(self) -> Path | None:
        """The file of a ``sqlite:///`` tracking URI (None for a server)."""
        if not self.tracking_uri.startswith("sqlite:///"):
            return None
        return Path(self.tracking_uri.removeprefix("sqlite:///"))

    @property
    def _unborn(self) -> bool:
        """A SQLite registry nothing was registered in yet: no database file, so nothing to read (and a
        read must not create one)."""
        return self._database is not None and not self._database.exists()

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            import logging

            from mlflow.tracking import MlflowClient

            # MLflow and alembic log schema set-up at INFO on every new SQLite store: noise in a CLI.
            for name in ("mlflow", "alembic"):
                logging.getLogger(name).setLevel(logging.WARNING)

            if self._database is not None:
                from tradai_release.registry.adapter.sqlite_store import create_from_template

                self._database.parent.mkdir(parents=True, exist_ok=True)
                if not self._database.exists():
                    create_from_template(self._database)
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


def version_info(
    mv: ModelVersion, metrics: Mapping[str, Mapping[str, float]], aliases: Iterable[str] | None = None
) -> ModelVersionInfo:
    """``mv`` as the project sees it; ``metrics`` by run id, ``aliases`` found on its registered model."""
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


def _timestamp(millis: int | None) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, tz=UTC) if millis else None


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
