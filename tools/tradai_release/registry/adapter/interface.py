"""What the project asks of a model registry: the ModelRegistry protocol and the values it trades in.

No MLflow here: plan/apply, the lifecycle and the read views work with these types, and tests pass a
fake that implements the protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

# The legacy stage names MLflow accepts; our lifecycle uses the same words.
STAGES: tuple[str, ...] = ("None", "Staging", "Production", "Archived")


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

    def aliased_models(self) -> dict[str, list[str]]:
        """Every registered model that has aliases, with them (plan finds models no manifest pins
        any more but whose aliases are still live)."""
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
