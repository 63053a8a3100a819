"""Deployment records and the per-action journal of applies, kept in the release-state table."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tradai_release.clock import stamp, utc_now
from tradai_release.engine.state import EngineBackends, release_key

if TYPE_CHECKING:
    from tradai_release.environments import Environment
    from tradai_release.settings import Settings
    from tradai_release.stores import KeyValueTable

DEPLOYMENT_PREFIX = "deploy#"
JOURNAL_PREFIX = "journal#"

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
NOOP = "noop"


def new_deployment_id() -> str:
    """Time-ordered (to the microsecond, so two applies in one second sort right) and unique.

    ``d20261123T122501123456Z-3f9a1c``
    """
    return utc_now().strftime("d%Y%m%dT%H%M%S%fZ-") + secrets.token_hex(3)


@dataclass(frozen=True)
class Deployment:
    """One apply of one commit to one environment.

    ``actions`` are the plan's actions (as in ``Plan.to_dict``) each with a ``status``
    (done / failed / pending); ``plan`` is the whole plan as JSON. A no-op apply has no
    deployment_id and is not recorded.
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
        }

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
        )


def save_deployment(table: KeyValueTable, deployment: Deployment) -> None:
    """Write (or overwrite) the deployment's record."""
    assert deployment.deployment_id is not None
    table.put(
        {
            **release_key(deployment.env, DEPLOYMENT_PREFIX + deployment.deployment_id),
            **deployment.to_record(),
        }
    )


def journal(
    table: KeyValueTable, env: str, deployment_id: str, index: int, action: Mapping[str, Any], status: str
) -> None:
    """Record that action ``index`` of a deployment reached ``status`` (done / failed)."""
    table.put(
        {
            **release_key(env, f"{JOURNAL_PREFIX}{deployment_id}#{index:04d}"),
            "deployment_id": deployment_id,
            "index": index,
            "status": status,
            "at": stamp(),
            "action": dict(action),
        }
    )


def read_journal(table: KeyValueTable, env: str, deployment_id: str) -> list[dict[str, Any]]:
    """The journal entries of one deployment, in action order."""
    return table.query(env, prefix=f"{JOURNAL_PREFIX}{deployment_id}#")


def deployments_in(table: KeyValueTable, env: str) -> list[Deployment]:
    """Every recorded deployment of ``env``, newest first (one query)."""
    items = table.query(env, prefix=DEPLOYMENT_PREFIX, descending=True)
    return [Deployment.from_item(item) for item in items]


def list_deployments(settings: Settings, env: str | Environment) -> list[Deployment]:
    """Every recorded deployment of ``env`` from settings' release-state table, newest first."""
    backends = EngineBackends.from_settings(settings, env)
    return deployments_in(backends.releases, backends.env)
