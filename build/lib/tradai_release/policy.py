"""``releases/policy.yaml``: the environments of a release repository, in promotion order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradai_release.errors import InputError
from tradai_release.yamlio import Document

POLICY_PATH = "releases/policy.yaml"
DEFAULT_ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
"""The environments of a repository whose policy.yaml (or its ``environments:`` key) is absent."""


@dataclass(frozen=True)
class Policy:
    """What ``releases/policy.yaml`` declares; every key absent from the file keeps today's behaviour."""

    environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        """Build from a mapping that passed the policy schema."""
        declared = data.get("environments")
        return cls(environments=tuple(declared) if declared else DEFAULT_ENVIRONMENTS)

    def gated(self, environment: str) -> bool:
        """True for the last environment of the promotion order (production): forward moves of its
        production pins need the comparator's approval or a recorded override."""
        return environment == self.environments[-1]


def check_policy(document: Document) -> list[InputError]:
    """Every problem of a parsed policy.yaml (its schema)."""
    from tradai_release.schema import check

    return check("policy", document)
