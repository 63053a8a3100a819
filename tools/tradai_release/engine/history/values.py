"""What history answers with: live pins, the changes a deployment made, and the rows and instants shown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tradai_release.engine.release_table import Deployment

Key = tuple[int, str]  # (profile, strategy)


@dataclass(frozen=True)
class LivePin:
    """What one strategy of one profile runs: model version, hub tag and config."""

    profile: int
    strategy: str
    model: str
    version: int
    staging: int | None
    tag: str
    sha256: str
    config_hash: str
    config_id: str | None

    @property
    def key(self) -> Key:
        return (self.profile, self.strategy)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> LivePin:
        """From an entry of ``Deployment.pins``."""
        staging = data.get("staging")
        return cls(
            profile=int(data["profile"]),
            strategy=str(data["strategy"]),
            model=str(data["model"]),
            version=int(data["version"]),
            staging=int(staging) if staging is not None else None,
            tag=str(data["tag"]),
            sha256=str(data["sha256"]),
            config_hash=str(data["config_hash"]),
            config_id=str(data["config_id"]) if data.get("config_id") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "strategy": self.strategy,
            "model": self.model,
            "version": self.version,
            "staging": self.staging,
            "tag": self.tag,
            "sha256": self.sha256,
            "config_hash": self.config_hash,
            "config_id": self.config_id,
        }


@dataclass(frozen=True)
class Held:
    """A live pin and the deployment that made it so (when that deployment finished, or its action ran)."""

    pin: LivePin
    deployment_id: str
    since: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.pin.to_dict(), "deployment_id": self.deployment_id, "since": self.since}


State = dict[Key, Held]


@dataclass(frozen=True)
class Change:
    """A profile x strategy whose pin a deployment moved (``before`` None: added; ``after`` None: gone)."""

    profile: int
    strategy: str
    before: LivePin | None
    after: LivePin | None

    def to_dict(self) -> dict[str, Any]:
        def pair(name: str) -> list[Any]:
            return [getattr(self.before, name, None), getattr(self.after, name, None)]

        either = self.after or self.before
        return {
            "profile": self.profile,
            "strategy": self.strategy,
            "model": either.model if either is not None else None,
            "version": pair("version"),
            "staging": pair("staging"),
            "tag": pair("tag"),
            "sha256": pair("sha256"),
            "config_hash": pair("config_hash"),
            "config_id": pair("config_id"),
        }


@dataclass(frozen=True)
class Partial:
    """An apply that had not (or never) finished at the instant asked about: what of it was applied."""

    deployment_id: str
    state: str  # in progress | failed | interrupted
    outcome: str  # as recorded now
    started_at: str
    finished_at: str | None
    done: tuple[str, ...]  # "<kind> <target>" of each action done by the instant
    total: int
    error: str | None

    def describe(self) -> str:
        applied = f"{len(self.done)} of {self.total} actions applied"
        if self.state == "in progress":
            return f"inside apply {self.deployment_id} (in progress: {applied})"
        if self.state == "failed":
            return f"after failed apply {self.deployment_id} ({applied}; {self.error or 'no error recorded'})"
        return f"after interrupted apply {self.deployment_id} (never finished: {applied})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "state": self.state,
            "outcome": self.outcome,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "done": list(self.done),
            "total": self.total,
            "error": self.error,
        }


@dataclass(frozen=True)
class LiveAt:
    """What was live in ``env`` at ``at``: every profile x strategy, and the last apply begun by then."""

    env: str
    at: str
    pins: tuple[Held, ...]
    deployment: Deployment | None
    partial: Partial | None

    def to_dict(self) -> dict[str, Any]:
        last = self.deployment
        return {
            "env": self.env,
            "at": self.at,
            "deployment_id": last.deployment_id if last is not None else None,
            "commit": last.commit if last is not None else None,
            "partial": self.partial.to_dict() if self.partial is not None else None,
            "pins": [held.to_dict() for held in self.pins],
        }


@dataclass(frozen=True)
class HistoryRow:
    """One change a deployment made (or, when it moved no pin, the deployment alone with a note)."""

    deployment: Deployment
    at: str
    pull_request: int | None
    change: Change | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        d = self.deployment
        return {
            "at": self.at,
            "deployment_id": d.deployment_id,
            "outcome": d.outcome,
            "commit": d.commit,
            "pull_request": self.pull_request,
            "actor": d.actor,
            "trace_id": d.trace_id,
            "change": self.change.to_dict() if self.change is not None else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class History:
    """An environment's rows, newest first, and the filters that selected them."""

    env: str
    rows: tuple[HistoryRow, ...]
    filters: Mapping[str, Any]
    decisions: tuple[Mapping[str, Any], ...] = ()  # progress's recorded decisions, newest first

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "filters": dict(self.filters), "rows": [row.to_dict() for row in self.rows],
                "decisions": [dict(decision) for decision in self.decisions]}
