"""Release manifests ``releases/<env>/profile-<N>.yaml`` as typed values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tradai_release.core.errors import InputError
from tradai_release.core.yamlio import Document

RELEASES_DIR = "releases"
_MANIFEST_NAME = re.compile(r"^profile-([1-9][0-9]*)\.yaml$")


def manifest_path(environment: str, profile: int) -> str:
    """``releases/<environment>/profile-<profile>.yaml``"""
    return f"{RELEASES_DIR}/{environment}/profile-{profile}.yaml"


def parse_manifest_name(name: str) -> int | None:
    """The profile number of a file name ``profile-<N>.yaml``, or None for any other name."""
    match = _MANIFEST_NAME.match(name)
    return int(match.group(1)) if match else None


def parse_profile(value: str | int) -> int:
    """A profile number as ``--profile`` gives it (1, 2, ...); which profiles exist is the environment's."""
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise InputError("--profile", "profile", f"{text!r} is not a profile number (1, 2, ...)")
    return int(text)


@dataclass(frozen=True)
class Override:
    """An explicit approval of a production pin the comparator did not approve: who and why."""

    approved_by: str
    reason: str


@dataclass(frozen=True)
class ModelPin:
    """Which MLflow versions of a registered model a profile runs (production) and dry-runs (staging)."""

    name: str
    production: int
    staging: int | None = None
    override: Override | None = None
    keep_production: tuple[int, ...] = ()  # left the pins but stay Production (promote --no-archive)


@dataclass(frozen=True)
class StrategyPin:
    """A strategy's entry in a manifest: its config hash and its model versions."""

    config: str
    model: ModelPin
    image: str | None = None  # tag or sha256:<digest> of the bot's image; None = the strategy's version


@dataclass(frozen=True)
class Artifacts:
    """The model-hub tag of a profile and the SHA-256 of that tag's stored manifest."""

    tag: str
    sha256: str


@dataclass(frozen=True)
class ReleaseManifest:
    """What is live for one profile of one environment."""

    environment: str
    profile: int
    description: str
    artifacts: Artifacts
    strategies: dict[str, StrategyPin] = field(default_factory=dict)
    path: str = ""
    policy_override: Override | None = None  # lets this profile's change through a policy rule (soak, freeze)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "") -> ReleaseManifest:
        """Build from a dict that already passed the release schema."""
        pins: dict[str, StrategyPin] = {}
        for name, entry in data["strategies"].items():
            model = entry["model"]
            override = model.get("override")
            pins[name] = StrategyPin(
                config=entry["config"],
                model=ModelPin(
                    name=model.get("name", name),
                    production=int(model["production"]),
                    staging=int(model["staging"]) if model.get("staging") is not None else None,
                    override=Override(override["approved_by"], override["reason"]) if override else None,
                    keep_production=tuple(int(v) for v in model.get("keep_production") or ()),
                ),
                image=entry.get("image"),
            )
        policy_override = data.get("policy_override")
        return cls(
            policy_override=Override(policy_override["approved_by"], policy_override["reason"])
            if policy_override
            else None,
            environment=data["environment"],
            profile=int(data["profile"]),
            description=data.get("description", ""),
            artifacts=Artifacts(tag=data["artifacts"]["tag"], sha256=data["artifacts"]["sha256"]),
            strategies=pins,
            path=path,
        )

    def to_dict(self) -> dict[str, Any]:
        """The manifest's content as written in YAML (``path`` is not part of it)."""
        strategies: dict[str, Any] = {}
        for name, pin in self.strategies.items():
            model: dict[str, Any] = {"name": pin.model.name, "production": pin.model.production}
            if pin.model.staging is not None:
                model["staging"] = pin.model.staging
            if pin.model.keep_production:
                model["keep_production"] = list(pin.model.keep_production)
            if pin.model.override is not None:
                model["override"] = {
                    "approved_by": pin.model.override.approved_by,
                    "reason": pin.model.override.reason,
                }
            strategies[name] = {"config": pin.config, "model": model}
            if pin.image is not None:
                strategies[name]["image"] = pin.image
        data: dict[str, Any] = {
            "profile": self.profile,
            "environment": self.environment,
            "description": self.description,
            "artifacts": {"tag": self.artifacts.tag, "sha256": self.artifacts.sha256},
            "strategies": strategies,
        }
        if self.policy_override is not None:
            data["policy_override"] = {
                "approved_by": self.policy_override.approved_by,
                "reason": self.policy_override.reason,
            }
        return data


def check_manifest(environment: str, profile: int, document: Document) -> list[InputError]:
    """Schema of a manifest, plus ``environment`` / ``profile`` agreeing with the file's path."""
    from tradai_release.core.schema import check

    problems = check("release", document)
    data = document.data
    if not isinstance(data, dict):
        return problems
    if any(problem.field in ("environment", "profile") for problem in problems):
        return problems
    if "environment" in data and data["environment"] != environment:
        problems.append(
            document.error(
                ["environment"],
                f"{data['environment']!r} disagrees with the file's directory {environment!r}",
            )
        )
    if "profile" in data and data["profile"] != profile:
        problems.append(
            document.error(
                ["profile"], f"{data['profile']!r} disagrees with the file name profile-{profile}.yaml"
            )
        )
    return problems
