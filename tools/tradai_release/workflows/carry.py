"""Carrying a model version from one environment to the next (``promote --from``): the artifact itself.

The source version's hub files are checked (its ``r2_tag`` lists the strategy's files; their content
digest must be the version's ``content_sha256``; each blob must be in the hub with that content), then
pulled (verified again while streaming) and registered in the target environment with the source's
metrics and lineage tags and ``promoted_from``. Nothing is uploaded to the hub. A target version with
the same files is reused. See docs/architecture.md §19.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError, ModelVersionNotFound

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.hub import ModelHub
    from tradai_release.registry.adapter import ModelRegistry, ModelVersionInfo
    from tradai_release.repository.environments import Environment


@dataclass(frozen=True)
class Carried:
    """The target environment's version of a source version: registered now, or found (``created`` False)."""

    model: str
    source_env: str
    source_version: int
    env: str
    version: int
    created: bool
    r2_tag: str
    content_sha256: str

    @property
    def promoted_from(self) -> str:
        return promoted_from(self.source_env, self.source_version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "from": {"env": self.source_env, "version": self.source_version},
            "env": self.env,
            "version": self.version,
            "created": self.created,
            "r2_tag": self.r2_tag,
            "content_sha256": self.content_sha256,
        }


def promoted_from(env: str, version: int) -> str:
    """The ``promoted_from`` tag's value: ``<env>:v<N>``."""
    return f"{env}:v{version}"


def check_order(source: Environment, target: Environment) -> None:
    """``--from`` must name an environment before ``--env`` in the promotion order."""
    if target.order.index(source.name) >= target.order.index(target.name):
        order = " -> ".join(target.order)
        raise InputError("promote", "--from",
                         f"{source.name} is not before {target.name} in the promotion order ({order})")


def source_version(
    registry: ModelRegistry, source: Environment, model: str, version: int
) -> ModelVersionInfo:
    """The version the source registry holds, READY and with hub files (one ``error:`` line otherwise)."""
    try:
        found = registry.get_version(model, version)
    except ModelVersionNotFound:
        raise InputError("promote", "--version",
                         f"version {version} of registered model {model!r} is not in the {source.name} "
                         "registry") from None
    if found.status != "READY":
        raise InputError("promote", "--version",
                         f"{source.name} {model} v{version} is {found.status}, not READY")
    if not found.tags.get("r2_tag"):
        raise InputError("promote", "--from",
                         f"{source.name} {model} v{version} has no r2_tag: its files are not in the hub")
    return found


def verified_files(hub: ModelHub, info: ModelVersionInfo, strategy: str) -> str:
    """The content digest of the strategy's files of the version's hub tag, checked in place: it is the
    version's ``content_sha256`` and each blob is in the hub with its content."""
    from tradai_release.hub.verification import check_blob
    from tradai_release.registry.registrar import CONTENT_TAG, content_sha256

    tag = info.tags["r2_tag"]
    where = f"hub tag {tag}"
    files = hub.read_tag(tag).files_of([strategy])
    if not files:
        raise InputError(where, f"{strategy}/", f"the tag holds no files of {strategy}")
    relative = {path.split("/", 1)[1]: entry.sha256 for path, entry in files.items()}
    digest = content_sha256(relative)
    recorded = info.tags.get(CONTENT_TAG)
    if recorded and recorded != digest:
        raise InputError(where, f"{strategy}/",
                         f"its files hash to {digest[:12]}, {info.name} v{info.version} records "
                         f"{CONTENT_TAG} {recorded[:12]}")
    for path, entry in sorted(files.items()):
        problem = check_blob(hub.store, entry, deep=True).problem
        if problem is not None:
            raise InputError(where, path, problem)
    return digest


def carry(
    settings: Settings,
    source: Environment,
    target: Environment,
    model: str,
    strategy: str,
    version: int,
    *,
    hub: ModelHub | None = None,
    source_registry: ModelRegistry | None = None,
) -> Carried:
    """The target's version of ``source``'s ``model`` v``version``: found by its files, else registered."""
    from tradai_release.core.fsutil import read_json_object
    from tradai_release.hub import ModelHub
    from tradai_release.hub.compat import COMPAT_FILE
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.registry.registrar import ModelRegistrar

    check_order(source, target)
    source_registry = source_registry or MlflowRegistry.for_env(source, settings)
    info = source_version(source_registry, source, model, version)
    hub = hub or ModelHub.from_settings(settings)
    digest = verified_files(hub, info, strategy)
    registrar = ModelRegistrar.for_env(target, settings)
    tag = info.tags["r2_tag"]
    found = registrar.find(model, digest)
    if found is not None:
        return Carried(model, source.name, version, target.name, found.version, False, tag, digest)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="carry-", dir=settings.state_dir) as scratch:
        models = Path(scratch) / "models"
        hub.pull(models, tag=tag, strategies=[strategy])  # every blob verified while streaming
        compat = read_json_object(models / strategy / COMPAT_FILE, f"{strategy}/{COMPAT_FILE}")
        features = [str(name) for name in compat.get("features") or []]
        registered = registrar.carry(info, models / strategy, features,
                                     promoted_from=promoted_from(source.name, version))
    return Carried(model, source.name, version, target.name, registered.version, registered.created, tag,
                   digest)
