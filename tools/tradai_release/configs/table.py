"""The config_versions table's layout: its keys, and the head and hash-pointer items a strategy's writes put.

One partition per strategy (partition key ``strategy_name``, sort key ``config_id``):

* ``v{n}-{hash[:8]}``  one item per version (the ConfigVersion fields, TTL attribute ``expires_at``);
* ``#HEAD``            the strategy's head: ``active`` config_id, ``next_version``, ``revision``;
* ``#HASH#<hash>``     ``target`` = the config_id holding that hash (dedupe with a consistent get).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradai_release.stores import Condition

TABLE_NAME = "config_versions"
"""Table name inside a SQLite file (a ``dynamodb://`` URI names the table itself)."""
PARTITION_KEY = "strategy_name"
SORT_KEY = "config_id"
TTL_ATTRIBUTE = "expires_at"
HEAD = "#HEAD"
HASH_PREFIX = "#HASH#"
VERSION_PREFIX = "v"


def head_item(
    strategy_name: str,
    head: Mapping[str, Any] | None,
    *,
    next_version: int | None = None,
    active: str | None = None,
) -> dict[str, Any]:
    """The head of ``strategy_name`` after a write: ``head`` (None: a new strategy) with ``next_version``
    and ``active`` set where given, and its revision one up."""
    current: dict[str, Any] = dict(head) if head else {"active": None, "next_version": 1, "revision": 0}
    return {
        PARTITION_KEY: strategy_name,
        SORT_KEY: HEAD,
        "active": active if active is not None else current.get("active"),
        "next_version": next_version if next_version is not None else int(current["next_version"]),
        "revision": int(current.get("revision", 0)) + 1,
    }


def head_condition(head: Mapping[str, Any] | None) -> Condition:
    """What every write of a strategy requires of its head: unchanged since it was read (or still absent)."""
    if head is None:
        return Condition(exists=False)
    return Condition(equals={"revision": int(head["revision"])})


def hash_pointer_item(
    strategy_name: str, digest: str, target: str, expires_at: int | None
) -> dict[str, Any]:
    """The pointer from config hash ``digest`` to the version ``target`` holding it, expiring with it."""
    return {
        PARTITION_KEY: strategy_name,
        SORT_KEY: HASH_PREFIX + digest,
        "target": target,
        TTL_ATTRIBUTE: expires_at,
    }
