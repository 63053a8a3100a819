"""The config version entity of the registry (docs/architecture.md §3) and its table-item form."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class ConfigStatus(enum.StrEnum):
    """Lifecycle of a config version: DRAFT -> ACTIVE -> DEPRECATED (and back to ACTIVE on rollback)."""

    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    DEPRECATED = "DEPRECATED"


@dataclass(frozen=True)
class ConfigVersion:
    """One stored version of a strategy's config (the seed's ConfigVersion entity).

    ``expires_at`` (epoch seconds) is the DynamoDB TTL attribute: set when the
    version becomes DEPRECATED (90 days ahead), cleared when it is activated again.
    ``duplicate`` is not stored: ``create_version`` sets it on the version it
    returns when a version with the same config hash already existed.
    """

    strategy_name: str
    config_id: str
    config_hash: str
    config_data: dict[str, Any]
    status: ConfigStatus
    version_number: int
    created_at: datetime
    deployed_at: datetime | None = None
    superseded_by: str | None = None
    description: str = ""
    git_commit: str | None = None
    trace_id: str | None = None
    expires_at: int | None = None
    duplicate: bool = field(default=False, compare=False)

    @property
    def created(self) -> bool:
        """True when ``create_version`` wrote this version (False when it found an identical one)."""
        return not self.duplicate

    def is_expired(self, now: datetime) -> bool:
        """True for a DEPRECATED version whose TTL is past (DynamoDB may not have purged it yet)."""
        return self.expires_at is not None and self.expires_at <= int(now.timestamp())

    def to_item(self) -> dict[str, Any]:
        """The table item (JSON values; datetimes as ISO-8601 UTC strings)."""
        return {
            "strategy_name": self.strategy_name,
            "config_id": self.config_id,
            "config_hash": self.config_hash,
            "config_data": self.config_data,
            "status": self.status.value,
            "version_number": self.version_number,
            "created_at": _iso(self.created_at),
            "deployed_at": _iso(self.deployed_at) if self.deployed_at else None,
            "superseded_by": self.superseded_by,
            "description": self.description,
            "git_commit": self.git_commit,
            "trace_id": self.trace_id,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ConfigVersion:
        """Build from a table item written by :meth:`to_item`."""
        deployed = item.get("deployed_at")
        expires = item.get("expires_at")
        return cls(
            strategy_name=str(item["strategy_name"]),
            config_id=str(item["config_id"]),
            config_hash=str(item["config_hash"]),
            config_data=dict(item["config_data"]),
            status=ConfigStatus(item["status"]),
            version_number=int(item["version_number"]),
            created_at=_parse(str(item["created_at"])),
            deployed_at=_parse(str(deployed)) if deployed else None,
            superseded_by=item.get("superseded_by") or None,
            description=str(item.get("description") or ""),
            git_commit=item.get("git_commit") or None,
            trace_id=item.get("trace_id") or None,
            expires_at=int(expires) if expires is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form for ``--json`` output (the item plus ``duplicate``)."""
        return {**self.to_item(), "duplicate": self.duplicate}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
