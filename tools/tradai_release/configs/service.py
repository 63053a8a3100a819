"""The config version registry (the seed's ConfigVersionService) over any KeyValueTable + ConfigRepository.

The table's layout is ``configs.table``'s. Every write that changes a strategy's versions is ONE
``transact()`` conditioned on the head's ``revision``, so concurrent creates get unique sequential
numbers and concurrent activations leave exactly one ACTIVE version; a writer that loses the race
re-reads and retries a bounded number of times (then ConfigConflict).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tradai_release.configs.entities import ConfigStatus, ConfigVersion
from tradai_release.configs.repository import ConfigRepository
from tradai_release.configs.table import (
    HASH_PREFIX,
    HEAD,
    PARTITION_KEY,
    SORT_KEY,
    TABLE_NAME,
    VERSION_PREFIX,
    hash_pointer_item,
    head_condition,
    head_item,
)
from tradai_release.core.clock import utc_now
from tradai_release.core.confighash import canonical_json, config_hash, config_id
from tradai_release.core.errors import ConditionFailed, ConfigConflict, ConfigVersionNotFound, InputError
from tradai_release.stores import Condition, KeyValueTable, Operation, Put

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.repository.environments import Environment

DEPRECATED_TTL = timedelta(days=90)
MAX_ATTEMPTS = 40
_Attempt = tuple[list[Operation], ConfigVersion]
"""One try of a write: the operations of its transaction, and the version it makes or found."""
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class StrategyState:
    """What the registry holds for one strategy: its ACTIVE version and how many versions are live."""

    strategy_name: str
    active: ConfigVersion | None
    versions: int


class ConfigVersionService:
    """Create, activate and read config versions of strategies (docs/architecture.md §3).

    ``clock`` returns the current UTC time (tests pass a fixed one to move past TTLs).
    """

    def __init__(
        self,
        table: KeyValueTable,
        repository: ConfigRepository,
        *,
        clock: Callable[[], datetime] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.table = table
        self.repository = repository
        self.clock = clock or utc_now
        self.max_attempts = max_attempts

    @classmethod
    def for_env(cls, env: Environment, settings: Settings | None = None) -> ConfigVersionService:
        """The registry of ``env`` from settings (SQLite + local directory unless configured otherwise)."""
        from tradai_release.core.settings import Settings
        from tradai_release.stores import open_object_store, open_table

        settings = settings or Settings()
        backends = env.backends
        aws = settings.aws()
        table = open_table(
            backends.config_table_uri,
            table=TABLE_NAME,
            partition_key=PARTITION_KEY,
            sort_key=SORT_KEY,
            aws=aws,
        )
        store = open_object_store(backends.config_store_uri, aws=aws)
        return cls(table, ConfigRepository(store))

    # --- writes -----------------------------------------------------------------------------------

    def create_version(
        self,
        *,
        strategy_name: str,
        config_data: Mapping[str, Any],
        description: str = "",
        git_commit: str | None = None,
        trace_id: str | None = None,
    ) -> ConfigVersion:
        """A new DRAFT version of ``config_data``; an identical config returns the existing version.

        The returned version's ``duplicate`` is True (``created`` False) when a live
        version with the same config hash already existed; nothing is written then.
        The body goes to the config bucket first, then the registry rows in one
        transaction, so a crash in between leaves no row pointing at a missing object.
        """
        check_strategy_name(strategy_name)
        data = _json_copy(strategy_name, config_data)
        digest = config_hash(data)
        existing = self.find_by_hash(strategy_name, digest)
        if existing is not None:
            return replace(existing, duplicate=True)
        self.repository.save(strategy_name, data)

        def attempt() -> _Attempt:
            head = self._get(strategy_name, HEAD)
            hash_item = self._get(strategy_name, HASH_PREFIX + digest)
            if hash_item is not None:
                found = self._live_target(strategy_name, hash_item)
                if found is not None:
                    return [], replace(found, duplicate=True)
            number = int(head["next_version"]) if head else 1
            version = ConfigVersion(
                strategy_name=strategy_name,
                config_id=config_id(number, digest),
                config_hash=digest,
                config_data=data,
                status=ConfigStatus.DRAFT,
                version_number=number,
                created_at=self.clock(),
                description=description,
                git_commit=git_commit,
                trace_id=trace_id,
            )
            new_head = head_item(strategy_name, head, next_version=number + 1)
            hash_condition = (
                Condition(exists=False)
                if hash_item is None
                else Condition(
                    equals={"target": hash_item["target"]}
                )  # a stale pointer to an expired version
            )
            operations: list[Operation] = [
                Put(new_head, condition=head_condition(head)),
                Put(version.to_item(), condition=Condition(exists=False)),
                Put(
                    hash_pointer_item(strategy_name, digest, version.config_id, None),
                    condition=hash_condition,
                ),
            ]
            return operations, version

        return self._until_won(strategy_name, "create_version", attempt)

    def activate(self, strategy_name: str, config_id: str) -> ConfigVersion:
        """Make ``config_id`` ACTIVE; the previous ACTIVE becomes DEPRECATED in the same transaction.

        The deprecated version gets ``superseded_by`` and a TTL 90 days ahead. A
        DEPRECATED version can be activated again (a rollback): its TTL is cleared.
        Activating the version that is already ACTIVE changes nothing.
        """
        check_strategy_name(strategy_name)

        def attempt() -> _Attempt:
            head = self._get(strategy_name, HEAD)
            item = self._get(strategy_name, config_id)
            now = self.clock()
            if item is None or config_id.startswith("#"):
                raise ConfigVersionNotFound(strategy_name, config_id)
            target = ConfigVersion.from_item(item)
            if target.is_expired(now):
                raise ConfigVersionNotFound(strategy_name, config_id)
            previous_id = head.get("active") if head else None
            if previous_id == config_id and target.status is ConfigStatus.ACTIVE:
                return [], target
            activated = replace(
                target, status=ConfigStatus.ACTIVE, deployed_at=now, superseded_by=None, expires_at=None
            )
            operations: list[Operation] = [
                Put(head_item(strategy_name, head, active=config_id), condition=head_condition(head)),
                Put(activated.to_item(), condition=Condition(equals={"status": target.status.value})),
            ]
            if target.expires_at is not None:
                operations += self._hash_ttl(target, None)
            if previous_id and previous_id != config_id:
                previous_item = self._get(strategy_name, previous_id)
                if previous_item is not None:
                    previous = ConfigVersion.from_item(previous_item)
                    expires = int((now + DEPRECATED_TTL).timestamp())
                    deprecated = replace(
                        previous, status=ConfigStatus.DEPRECATED, superseded_by=config_id, expires_at=expires
                    )
                    operations.append(
                        Put(
                            deprecated.to_item(),
                            condition=Condition(equals={"status": previous.status.value}),
                        )
                    )
                    operations += self._hash_ttl(previous, expires)
            return operations, activated

        return self._until_won(f"{strategy_name} {config_id}", "activate", attempt)

    def deprecate(self, strategy_name: str, config_id: str) -> ConfigVersion:
        """Retire the ACTIVE version ``config_id``: it becomes DEPRECATED with the 90-day TTL and the
        strategy has no ACTIVE version (a strategy no manifest pins any more, pruned by apply).

        One transaction conditioned on the head's revision and the version's status, like
        ``activate``. A version already DEPRECATED while nothing is ACTIVE is returned unchanged;
        one that is not the ACTIVE version (another was activated meanwhile) is a ConfigConflict.
        Activating it again (the strategy comes back) clears the TTL.
        """
        check_strategy_name(strategy_name)

        def attempt() -> _Attempt:
            head = self._get(strategy_name, HEAD)
            item = None if config_id.startswith("#") else self._get(strategy_name, config_id)
            if item is None:
                raise ConfigVersionNotFound(strategy_name, config_id)
            target = ConfigVersion.from_item(item)
            active = head.get("active") if head else None
            if active != config_id:
                if not active and target.status is ConfigStatus.DEPRECATED:
                    return [], target
                raise ConfigConflict(
                    f"{strategy_name} {config_id}",
                    f"not the ACTIVE version (ACTIVE: {active or 'none'}); nothing deprecated",
                )
            expires = int((self.clock() + DEPRECATED_TTL).timestamp())
            deprecated = replace(
                target, status=ConfigStatus.DEPRECATED, superseded_by=None, expires_at=expires
            )
            operations: list[Operation] = [
                Put({**head_item(strategy_name, head), "active": None}, condition=head_condition(head)),
                Put(deprecated.to_item(), condition=Condition(equals={"status": target.status.value})),
                *self._hash_ttl(target, expires),
            ]
            return operations, deprecated

        return self._until_won(f"{strategy_name} {config_id}", "deprecate", attempt)

    # --- reads ------------------------------------------------------------------------------------

    def list_versions(self, strategy_name: str) -> list[ConfigVersion]:
        """Every live version of a strategy, newest first (expired DEPRECATED versions are hidden)."""
        now = self.clock()
        versions = [
            ConfigVersion.from_item(item) for item in self.table.query(strategy_name, prefix=VERSION_PREFIX)
        ]
        live = [version for version in versions if not version.is_expired(now)]
        return sorted(live, key=lambda version: version.version_number, reverse=True)

    def get_version(self, strategy_name: str, config_id: str) -> ConfigVersion:
        """One live version; ConfigVersionNotFound when absent or expired."""
        item = None if config_id.startswith("#") else self._get(strategy_name, config_id)
        if item is not None:
            version = ConfigVersion.from_item(item)
            if not version.is_expired(self.clock()):
                return version
        raise ConfigVersionNotFound(strategy_name, config_id)

    def get_active(self, strategy_name: str) -> ConfigVersion | None:
        """The ACTIVE version of a strategy, or None when none was activated yet."""
        head = self._get(strategy_name, HEAD)
        active = head.get("active") if head else None
        if not active:
            return None
        item = self._get(strategy_name, str(active))
        return ConfigVersion.from_item(item) if item is not None else None

    def find_by_hash(self, strategy_name: str, config_hash: str) -> ConfigVersion | None:
        """The live version whose config hash is ``config_hash``, or None."""
        hash_item = self._get(strategy_name, HASH_PREFIX + config_hash)
        return self._live_target(strategy_name, hash_item) if hash_item is not None else None

    def states(self) -> dict[str, StrategyState]:
        """Every strategy in the registry with its ACTIVE version and live version count: ONE table scan."""
        now = self.clock()
        heads: dict[str, str | None] = {}
        versions: dict[str, dict[str, ConfigVersion]] = {}
        for item in self.table.scan():
            name, key = str(item[PARTITION_KEY]), str(item[SORT_KEY])
            if key == HEAD:
                heads[name] = item.get("active") or None
            elif key.startswith(VERSION_PREFIX):
                version = ConfigVersion.from_item(item)
                if not version.is_expired(now):
                    versions.setdefault(name, {})[key] = version
        states: dict[str, StrategyState] = {}
        for name in sorted(set(heads) | set(versions)):
            live = versions.get(name, {})
            active_id = heads.get(name)
            active = live.get(active_id) if active_id else None
            if active_id and active is None:  # the scan raced an activation: read the head's pick directly
                active = self.get_active(name)
            states[name] = StrategyState(strategy_name=name, active=active, versions=len(live))
        return states

    def active_by_strategy(self) -> dict[str, ConfigVersion]:
        """The ACTIVE version of every strategy that has one: one scan, whatever the strategy count."""
        return {name: state.active for name, state in self.states().items() if state.active is not None}

    # --- helpers ----------------------------------------------------------------------------------

    def _until_won(self, target: str, verb: str, attempt: Callable[[], _Attempt]) -> ConfigVersion:
        """Run ``attempt`` until its transaction wins the race for the strategy's head.

        ``attempt`` reads the strategy and returns the operations of one transaction with the version it
        makes (no operations: nothing to write, the version is the answer). A lost race backs off and
        reads again, at most ``max_attempts`` times; then ConfigConflict naming ``target``.
        """
        for n in range(self.max_attempts):
            operations, version = attempt()
            if not operations:
                return version
            try:
                self.table.transact(operations)
            except ConditionFailed:
                _backoff(n)
                continue
            return version
        raise ConfigConflict(target, f"{verb} gave up after {self.max_attempts} concurrent conflicts")

    def _get(self, strategy_name: str, sort_key: str) -> dict[str, Any] | None:
        return self.table.get({PARTITION_KEY: strategy_name, SORT_KEY: sort_key})

    def _live_target(self, strategy_name: str, hash_item: Mapping[str, Any]) -> ConfigVersion | None:
        target = hash_item.get("target")
        item = self._get(strategy_name, str(target)) if target else None
        if item is None:
            return None
        version = ConfigVersion.from_item(item)
        return None if version.is_expired(self.clock()) else version

    def _hash_ttl(self, version: ConfigVersion, expires_at: int | None) -> list[Operation]:
        """Give the hash pointer the same TTL as its version, so both expire together."""
        hash_item = self._get(version.strategy_name, HASH_PREFIX + version.config_hash)
        if hash_item is None or hash_item.get("target") != version.config_id:
            return []
        return [
            Put(
                hash_pointer_item(
                    version.strategy_name, version.config_hash, version.config_id, expires_at
                ),
                condition=Condition(equals={"target": version.config_id}),
            )
        ]


def check_strategy_name(strategy_name: str) -> None:
    """Refuse what cannot be a strategy's partition: letters, digits and ``_``, a letter first."""
    if not isinstance(strategy_name, str) or not _NAME.match(strategy_name):
        raise InputError(
            "config registry",
            "strategy_name",
            f"{strategy_name!r} is not a strategy name (letters, digits, _)",
        )


def _json_copy(strategy_name: str, config_data: Mapping[str, Any]) -> dict[str, Any]:
    import json

    if not isinstance(config_data, Mapping):
        raise InputError(
            strategy_name, "config_data", f"expected a mapping, got {type(config_data).__name__}"
        )
    try:
        data: dict[str, Any] = json.loads(canonical_json(dict(config_data)))
    except (TypeError, ValueError) as err:
        raise InputError(strategy_name, "config_data", f"not JSON data: {err}") from None
    return data


def _backoff(attempt: int) -> None:
    """Jittered exponential backoff so racing writers spread out instead of colliding again."""
    time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.1)))
