"""The items of the release-state table as values: what the last apply made live, the lease, a deployment,
one journaled action, one recorded PSI check. Their keys are :mod:`tradai_release.engine.release_table`'s
alone; ``to_item`` gives an item's attributes without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tradai_release.core.clock import stamp
from tradai_release.domain.monitor.scores import STABLE, PsiRow, Thresholds
from tradai_release.engine.actions import Action

RELEASE_TTL_ATTRIBUTE = "expires_at"
"""Epoch seconds after which DynamoDB may drop an item (an expired lock lease)."""


@dataclass(frozen=True)
class AppliedState:
    """What the last successful apply made live; a live value that differs from it is drift.

    ``lifecycle`` maps model -> version (as str) -> lifecycle for versions not in lifecycle None.
    ``pointers`` maps profile -> (tag, sha256). ``mirror_stages`` is False once the registry
    refused legacy stages, so plans stop asking for them.
    """

    commit: str
    deployment_id: str
    applied_at: str
    configs: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    lifecycle: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    pointers: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    mirror_stages: bool = True
    bots: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # bot name -> (content, revision)
    config_tags: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    """model -> version (str) -> its ``config.*`` tags, for every version an alias pins: the
    registry layer of the bots' config, so a bot starts without an MLflow client (§14)."""

    @property
    def models(self) -> list[str]:
        return sorted(set(self.aliases) | set(self.lifecycle))

    def to_item(self) -> dict[str, Any]:
        """The release-table item (JSON values only)."""
        return {
            "commit": self.commit,
            "deployment_id": self.deployment_id,
            "applied_at": self.applied_at,
            "configs": dict(self.configs),
            "aliases": {name: dict(mapping) for name, mapping in self.aliases.items()},
            "lifecycle": {name: dict(mapping) for name, mapping in self.lifecycle.items()},
            "pointers": {str(profile): list(value) for profile, value in self.pointers.items()},
            "mirror_stages": self.mirror_stages,
            "bots": {name: list(value) for name, value in self.bots.items()},
            "config_tags": {
                name: {version: dict(tags) for version, tags in versions.items()}
                for name, versions in self.config_tags.items()
            },
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> AppliedState:
        return cls(
            commit=str(item["commit"]),
            deployment_id=str(item.get("deployment_id") or ""),
            applied_at=str(item.get("applied_at") or ""),
            configs={str(k): str(v) for k, v in dict(item.get("configs") or {}).items()},
            aliases={
                str(name): {str(a): int(v) for a, v in dict(mapping).items()}
                for name, mapping in dict(item.get("aliases") or {}).items()
            },
            lifecycle={
                str(name): {str(v): str(stage) for v, stage in dict(mapping).items()}
                for name, mapping in dict(item.get("lifecycle") or {}).items()
            },
            pointers={
                int(profile): (str(value[0]), str(value[1]))
                for profile, value in dict(item.get("pointers") or {}).items()
            },
            mirror_stages=bool(item.get("mirror_stages", True)),
            bots={str(name): (str(v[0]), str(v[1])) for name, v in dict(item.get("bots") or {}).items()},
            config_tags={
                str(name): {
                    str(version): {str(k): str(v) for k, v in dict(tags).items()}
                    for version, tags in dict(versions).items()
                }
                for name, versions in dict(item.get("config_tags") or {}).items()
            },
        )


@dataclass(frozen=True)
class LeaseRecord:
    """The env's lease lock as stored: who holds it, for which deployment, until when (epoch seconds).

    ``lease_id`` is None only on an item written by hand without one (it can then never be taken over).
    """

    lease_id: str | None
    holder: str
    deployment_id: str
    commit: str | None
    acquired_at: str
    expires_at: float
    renewed_at: str = ""  # the holder's last heartbeat ("" before the first)

    def to_dict(self) -> dict[str, Any]:
        """What plan shows of a held lease."""
        from datetime import UTC, datetime

        return {
            "lease_id": self.lease_id,
            "holder": self.holder,
            "deployment_id": self.deployment_id,
            "commit": self.commit,
            "acquired_at": self.acquired_at,
            "renewed_at": self.renewed_at or None,
            "expires_at": stamp(datetime.fromtimestamp(self.expires_at, UTC)),
        }

    def to_item(self) -> dict[str, Any]:
        return {
            "lease_id": self.lease_id,
            "holder": self.holder,
            "deployment_id": self.deployment_id,
            "commit": self.commit,
            "acquired_at": self.acquired_at,
            "renewed_at": self.renewed_at,
            RELEASE_TTL_ATTRIBUTE: int(self.expires_at),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> LeaseRecord:
        return cls(
            lease_id=str(item["lease_id"]) if item.get("lease_id") is not None else None,
            holder=str(item.get("holder") or ""),
            deployment_id=str(item.get("deployment_id") or ""),
            commit=item.get("commit") or None,
            acquired_at=str(item.get("acquired_at") or ""),
            expires_at=float(item.get(RELEASE_TTL_ATTRIBUTE) or 0),
            renewed_at=str(item.get("renewed_at") or ""),
        )


@dataclass(frozen=True)
class Deployment:
    """One apply of one commit to one environment.

    ``actions`` are the plan's actions (as in ``Plan.to_dict``) each with a ``status``
    (done / failed / pending); ``plan`` is the whole plan as JSON. A no-op apply has no
    deployment_id and is not recorded.

    ``pins`` (what history answers from) holds one entry per profile x strategy of the commit:
    ``{"profile", "strategy", "model", "version", "staging", "tag", "sha256", "config_hash",
    "config_id"}``; the config ids are those ACTIVE once the apply succeeded (None before).
    Records written before pins were recorded have ``pins`` None: history reads the manifests
    of their commit from git objects instead. ``pull_request`` is the number the commit's
    message names (a merge or squash of a pull request); ``overrides`` the policy overrides that
    let this apply through a blocked rule (who, why, which rule).
    """

    env: str
    commit: str
    deployment_id: str | None
    outcome: str
    actor: str
    trace_id: str
    started_at: str
    finished_at: str | None = None
    plan: Mapping[str, Any] = field(default_factory=dict)
    actions: tuple[Mapping[str, Any], ...] = ()
    error: str | None = None
    pins: tuple[Mapping[str, Any], ...] | None = None
    pull_request: int | None = None
    overrides: tuple[Mapping[str, Any], ...] = ()
    unlocked: Mapping[str, Any] | None = None  # who broke this apply's lease with ``invoke unlock``, and why

    def to_dict(self) -> dict[str, Any]:
        """``{"env", "commit", "deployment_id", "outcome", "actions": [...]}`` (docs/architecture.md §10)."""
        return {
            "env": self.env,
            "commit": self.commit,
            "deployment_id": self.deployment_id,
            "outcome": self.outcome,
            "actions": [dict(action) for action in self.actions],
        }

    def to_record(self) -> dict[str, Any]:
        """What is stored about the deployment (the release-table item without its key).

        Compact, so a large first apply stays far below DynamoDB's 400 KB item limit: each
        action as kind/target/status, the plan without its action list (every action's
        details are in the journal, one item per action).
        """
        return {
            "env": self.env,
            "commit": self.commit,
            "deployment_id": self.deployment_id,
            "outcome": self.outcome,
            "actions": [
                {"kind": a.get("kind"), "target": a.get("target"), "status": a.get("status")}
                for a in self.actions
            ],
            "actor": self.actor,
            "trace_id": self.trace_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "plan": {key: value for key, value in self.plan.items() if key != "actions"}
            | {"action_count": len(self.plan.get("actions") or ())},
            "error": self.error,
            "pins": [dict(pin) for pin in self.pins] if self.pins is not None else None,
            "pull_request": self.pull_request,
            "overrides": [dict(entry) for entry in self.overrides],
        } | ({"unlocked": dict(self.unlocked)} if self.unlocked is not None else {})

    def steps(self) -> list[tuple[Action, str]]:
        """The plan's actions, typed, each with its status (pending / done / failed)."""
        return [(Action.from_dict(action), str(action.get("status") or "")) for action in self.actions]

    def with_outcome(
        self, outcome: str, actions: Sequence[Mapping[str, Any]], error: str | None = None
    ) -> Deployment:
        return replace(self, outcome=outcome, actions=tuple(actions), finished_at=stamp(), error=error)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Deployment:
        return cls(
            env=str(item["env"]),
            commit=str(item["commit"]),
            deployment_id=str(item["deployment_id"]),
            outcome=str(item["outcome"]),
            actor=str(item.get("actor") or ""),
            trace_id=str(item.get("trace_id") or ""),
            started_at=str(item.get("started_at") or ""),
            finished_at=item.get("finished_at") or None,
            plan=dict(item.get("plan") or {}),
            actions=tuple(dict(a) for a in item.get("actions") or ()),
            error=item.get("error") or None,
            pins=tuple(dict(pin) for pin in item["pins"]) if item.get("pins") is not None else None,
            pull_request=int(item["pull_request"]) if item.get("pull_request") is not None else None,
            overrides=tuple(dict(entry) for entry in item.get("overrides") or ()),
            unlocked=dict(item["unlocked"]) if item.get("unlocked") else None,
        )


@dataclass(frozen=True)
class JournalEntry:
    """Action ``index`` of a deployment reached ``status`` at ``at`` (the item holds ``Action.to_dict``)."""

    deployment_id: str
    index: int
    status: str
    at: str
    action: Action

    def to_item(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "index": self.index,
            "status": self.status,
            "at": self.at,
            "action": self.action.to_dict(),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> JournalEntry:
        return cls(
            deployment_id=str(item.get("deployment_id")),
            index=int(item.get("index") or 0),
            status=str(item.get("status") or ""),
            at=str(item.get("at") or ""),
            action=Action.from_dict(item.get("action") or {}),
        )


@dataclass(frozen=True)
class RecordedCheck:
    """One strategy's PSI from an earlier ``invoke drift --record``, as the release state keeps it."""

    strategy: str
    version: int
    checked_at: str
    level: str
    max_psi: float
    psi: tuple[PsiRow, ...]
    thresholds: Thresholds
    window: str = ""
    model: str = ""
    profiles: tuple[int, ...] = ()

    def to_item(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "model": self.model,
            "version": self.version,
            "profiles": list(self.profiles),
            "checked_at": self.checked_at,
            "level": self.level,
            "max_psi": round(self.max_psi, 6),
            "psi": [row.to_dict() for row in self.psi],
            "thresholds": {
                "moderate": self.thresholds.moderate,
                "significant": self.thresholds.significant,
            },
            "window": self.window,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> RecordedCheck:
        limits = dict(item.get("thresholds") or {})
        return cls(
            strategy=str(item["strategy"]),
            version=int(item.get("version") or 0),
            checked_at=str(item.get("checked_at") or ""),
            level=str(item.get("level") or STABLE),
            max_psi=float(item.get("max_psi") or 0.0),
            psi=tuple(
                PsiRow(str(row["kind"]), str(row["name"]), float(row["psi"]), str(row["level"]))
                for row in item.get("psi") or ()
            ),
            thresholds=Thresholds(
                float(limits.get("moderate", Thresholds.moderate)),
                float(limits.get("significant", Thresholds.significant)),
            ),
            window=str(item.get("window") or ""),
            model=str(item.get("model") or ""),
            profiles=tuple(int(profile) for profile in item.get("profiles") or ()),
        )
