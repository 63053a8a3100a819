"""Config version registry: one contract suite run on SQLite + local dir and on DynamoDB + S3 (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from config_helpers import START, Backend, Clock, make_backend, run_threads
from tradai_release.configs import (
    ConfigRepository,
    ConfigStatus,
    ConfigVersion,
    ConfigVersionService,
    S3ConfigRepository,
)
from tradai_release.configs.table import HEAD, PARTITION_KEY, SORT_KEY
from tradai_release.core.confighash import canonical_json, config_hash
from tradai_release.core.errors import (
    ConfigConflict,
    ConfigIntegrityError,
    ConfigVersionNotFound,
    InputError,
    ObjectNotFound,
)
from tradai_release.stores import KeyValueTable, ObjectStore


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with make_backend(request.param, tmp_path) as made:
        yield made


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(backend: Backend, clock: Clock) -> ConfigVersionService:
    return backend.service(clock)


def config(stake: float = 1000, **extra: Any) -> dict[str, Any]:
    """A small config with the value types that must round-trip unchanged (ints, floats, lists, unicode)."""
    return {
        "strategy": {"name": "PascalStrategy", "timeframe": "1h", "note": "Grüße ✓"},
        "strategy_service": {
            "defaults": {
                "symbols": ["BTC/USDT:USDT", "ETH/USDT:USDT"],
                "stake_amount": stake,
                "max_open_trades": 3,
                "fee": 0.001,
                "ratio": 1000.0,
            }
        },
        "mlflow": {"tracking_uri": "${MLFLOW_TRACKING_URI:-http://localhost:5001}", "auto_log_params": True},
        "empty": None,
        **extra,
    }


# --- lifecycle ---------------------------------------------------------------------------------------


def test_create_version_is_a_draft_with_every_field(service: ConfigVersionService, clock: Clock) -> None:
    data = config()
    version = service.create_version(
        strategy_name="PascalStrategy",
        config_data=data,
        description="first upload",
        git_commit="a" * 40,
        trace_id="trace-1",
    )
    digest = config_hash(data)
    assert version.created and not version.duplicate
    assert version.status is ConfigStatus.DRAFT
    assert version.config_hash == digest
    assert version.config_id == f"v1-{digest[:8]}"
    assert version.version_number == 1
    assert version.created_at == START
    assert version.deployed_at is None and version.superseded_by is None and version.expires_at is None
    assert (version.description, version.git_commit, version.trace_id) == (
        "first upload",
        "a" * 40,
        "trace-1",
    )
    assert service.get_active("PascalStrategy") is None

    stored = service.get_version("PascalStrategy", version.config_id)
    assert stored == version
    assert stored.config_data == data
    assert config_hash(stored.config_data) == digest  # floats stay floats, ints stay ints


def test_activate_deprecates_previous_with_superseded_by_and_a_90_day_ttl(
    service: ConfigVersionService, clock: Clock
) -> None:
    first = service.create_version(
        strategy_name="PascalStrategy", config_data=config(1000), description="one"
    )
    second = service.create_version(
        strategy_name="PascalStrategy", config_data=config(2000), description="two"
    )
    assert second.version_number == 2

    clock.advance(hours=1)
    active = service.activate("PascalStrategy", first.config_id)
    assert active.status is ConfigStatus.ACTIVE and active.deployed_at == clock.now
    assert service.get_active("PascalStrategy") == active

    clock.advance(hours=1)
    service.activate("PascalStrategy", second.config_id)
    versions = service.list_versions("PascalStrategy")
    assert [v.config_id for v in versions] == [second.config_id, first.config_id]
    newest, older = versions
    assert newest.status is ConfigStatus.ACTIVE and newest.deployed_at == clock.now
    assert older.status is ConfigStatus.DEPRECATED
    assert older.superseded_by == second.config_id
    assert older.expires_at == int((clock.now + timedelta(days=90)).timestamp())
    assert service.get_active("PascalStrategy") == newest


def test_activating_the_active_version_changes_nothing(service: ConfigVersionService, clock: Clock) -> None:
    version = service.create_version(strategy_name="PascalStrategy", config_data=config(), description="")
    first = service.activate("PascalStrategy", version.config_id)
    clock.advance(days=1)
    again = service.activate("PascalStrategy", version.config_id)
    assert again == first and again.deployed_at == START


def test_reactivating_a_deprecated_version_is_a_rollback_and_clears_its_ttl(
    service: ConfigVersionService, clock: Clock
) -> None:
    old = service.create_version(strategy_name="PascalStrategy", config_data=config(1000), description="")
    new = service.create_version(strategy_name="PascalStrategy", config_data=config(2000), description="")
    service.activate("PascalStrategy", old.config_id)
    service.activate("PascalStrategy", new.config_id)
    clock.advance(days=30)

    back = service.activate("PascalStrategy", old.config_id)
    assert back.status is ConfigStatus.ACTIVE
    assert back.expires_at is None and back.superseded_by is None and back.deployed_at == clock.now
    by_id = {v.config_id: v for v in service.list_versions("PascalStrategy")}
    assert by_id[new.config_id].status is ConfigStatus.DEPRECATED
    assert by_id[new.config_id].superseded_by == old.config_id
    assert by_id[new.config_id].expires_at == int((clock.now + timedelta(days=90)).timestamp())
    # 90 days after the rollback the rolled-back-to version is still there: its TTL was cleared
    clock.advance(days=100)
    assert [v.config_id for v in service.list_versions("PascalStrategy")] == [old.config_id]
    assert service.find_by_hash("PascalStrategy", old.config_hash) == service.get_active("PascalStrategy")


def test_versions_are_per_strategy(service: ConfigVersionService) -> None:
    a = service.create_version(strategy_name="PascalStrategy", config_data=config(1), description="")
    b = service.create_version(strategy_name="KeplerStrategy", config_data=config(1), description="")
    assert a.version_number == b.version_number == 1
    assert not b.duplicate  # the same body under another strategy is its own version
    assert [v.config_id for v in service.list_versions("KeplerStrategy")] == [b.config_id]
    assert service.list_versions("NoSuchStrategy") == []
    assert service.get_active("NoSuchStrategy") is None


def test_list_orders_by_version_number_not_by_sort_key_text(service: ConfigVersionService) -> None:
    for stake in range(1, 12):  # v10 and v11 sort before v2 as text
        service.create_version(strategy_name="PascalStrategy", config_data=config(stake), description="")
    numbers = [v.version_number for v in service.list_versions("PascalStrategy")]
    assert numbers == list(range(11, 0, -1))


# --- dedupe --------------------------------------------------------------------------------------------


def test_identical_config_returns_the_existing_version(service: ConfigVersionService) -> None:
    data = config()
    first = service.create_version(strategy_name="PascalStrategy", config_data=data, description="one")
    reordered = dict(reversed(list(data.items())))  # key order does not change the hash
    again = service.create_version(strategy_name="PascalStrategy", config_data=reordered, description="two")
    assert again.duplicate and not again.created
    assert again.config_id == first.config_id and again.description == "one"
    assert len(service.list_versions("PascalStrategy")) == 1
    assert service.find_by_hash("PascalStrategy", first.config_hash) == first
    assert service.find_by_hash("PascalStrategy", "0" * 64) is None


def test_a_deprecated_but_live_version_is_still_a_duplicate(service: ConfigVersionService) -> None:
    old = service.create_version(strategy_name="PascalStrategy", config_data=config(1), description="")
    new = service.create_version(strategy_name="PascalStrategy", config_data=config(2), description="")
    service.activate("PascalStrategy", old.config_id)
    service.activate("PascalStrategy", new.config_id)
    again = service.create_version(strategy_name="PascalStrategy", config_data=config(1), description="")
    assert again.duplicate and again.config_id == old.config_id and again.status is ConfigStatus.DEPRECATED


# --- TTL ------------------------------------------------------------------------------------------------


def test_expired_deprecated_versions_are_hidden_even_when_the_backend_keeps_them(
    backend: Backend, service: ConfigVersionService, clock: Clock
) -> None:
    old = service.create_version(strategy_name="PascalStrategy", config_data=config(1), description="")
    new = service.create_version(strategy_name="PascalStrategy", config_data=config(2), description="")
    service.activate("PascalStrategy", old.config_id)
    service.activate("PascalStrategy", new.config_id)

    clock.advance(days=89)
    assert len(service.list_versions("PascalStrategy")) == 2
    clock.advance(days=2)
    assert [v.config_id for v in service.list_versions("PascalStrategy")] == [new.config_id]
    raw = backend.table().get({PARTITION_KEY: "PascalStrategy", SORT_KEY: old.config_id})
    assert raw is not None  # neither SQLite nor moto purged it: hiding is the service's job
    with pytest.raises(ConfigVersionNotFound, match=old.config_id):
        service.get_version("PascalStrategy", old.config_id)
    with pytest.raises(ConfigVersionNotFound):
        service.activate("PascalStrategy", old.config_id)
    assert service.find_by_hash("PascalStrategy", old.config_hash) is None
    assert service.states()["PascalStrategy"].versions == 1

    # the same body uploaded again after expiry is a new version with the next number
    again = service.create_version(strategy_name="PascalStrategy", config_data=config(1), description="")
    assert again.created and again.version_number == 3 and again.config_id == f"v3-{old.config_hash[:8]}"
    assert service.find_by_hash("PascalStrategy", old.config_hash) == again


# --- batched reads --------------------------------------------------------------------------------------


class CountingTable:
    """Wraps a table and counts calls per method (to prove the batched read is one scan)."""

    def __init__(self, inner: KeyValueTable) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}
        self.name = inner.name
        self.partition_key = inner.partition_key
        self.sort_key = inner.sort_key

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args, **kwargs)

        return counted


def test_active_by_strategy_reads_every_strategy_with_one_scan(backend: Backend, clock: Clock) -> None:
    setup = backend.service(clock)
    expected = {}
    for index in range(6):
        name = f"Strategy{index}"
        versions = [
            setup.create_version(strategy_name=name, config_data=config(stake), description="")
            for stake in (1, 2)
        ]
        if index % 3:  # Strategy0 and Strategy3 keep only drafts
            setup.activate(name, versions[0].config_id)
            expected[name] = setup.activate(name, versions[1].config_id)

    counting = CountingTable(backend.table())
    service = ConfigVersionService(counting, ConfigRepository(backend.store()), clock=clock)
    active = service.active_by_strategy()
    assert active == expected
    assert counting.calls == {"scan": 1}
    states = ConfigVersionService(backend.table(), ConfigRepository(backend.store()), clock=clock).states()
    assert sorted(states) == [f"Strategy{index}" for index in range(6)]
    assert states["Strategy0"].active is None and states["Strategy0"].versions == 2


# --- bad input ------------------------------------------------------------------------------------------


def test_bad_inputs_are_one_line_errors(service: ConfigVersionService) -> None:
    for name in ("", "../etc", "has space", "9starts_with_digit", "a/b"):
        with pytest.raises(InputError, match="strategy_name"):
            service.create_version(strategy_name=name, config_data=config(), description="")
    with pytest.raises(InputError, match="config_data: expected a mapping"):
        service.create_version(strategy_name="PascalStrategy", config_data=["x"], description="")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="config_data: not JSON"):
        service.create_version(
            strategy_name="PascalStrategy", config_data={"x": float("nan")}, description=""
        )
    with pytest.raises(InputError, match="config_data: not JSON"):
        service.create_version(strategy_name="PascalStrategy", config_data={"x": object()}, description="")
    with pytest.raises(ConfigVersionNotFound, match="PascalStrategy v9-deadbeef"):
        service.activate("PascalStrategy", "v9-deadbeef")
    with pytest.raises(ConfigVersionNotFound):
        service.activate("PascalStrategy", HEAD)  # the head item is not a version
    assert service.list_versions("PascalStrategy") == []


# --- the config bucket ----------------------------------------------------------------------------------


def test_body_is_stored_once_by_strategy_and_hash_and_reads_back_byte_identical(
    backend: Backend, service: ConfigVersionService
) -> None:
    data = config()
    version = service.create_version(strategy_name="PascalStrategy", config_data=data, description="")
    store = backend.store()
    key = f"configs/PascalStrategy/{version.config_hash}.json"
    assert store.get(key) == canonical_json(data)
    repository = S3ConfigRepository(store)
    assert repository.load_bytes("PascalStrategy", version.config_hash) == canonical_json(data)
    assert repository.load("PascalStrategy", version.config_hash) == data
    assert repository.hashes("PascalStrategy") == [version.config_hash]
    assert repository.save("PascalStrategy", data) == version.config_hash  # same bytes again: fine


def test_a_different_body_under_an_existing_key_is_refused(backend: Backend) -> None:
    store = backend.store()
    repository = ConfigRepository(store)
    data = config()
    digest = config_hash(data)
    store.put(ConfigRepository.key("PascalStrategy", digest), b'{"tampered":true}')
    with pytest.raises(ConfigIntegrityError, match="different body"):
        repository.save("PascalStrategy", data)
    with pytest.raises(ConfigIntegrityError, match="does not hash to its key"):
        repository.load("PascalStrategy", digest)
    with pytest.raises(ObjectNotFound):
        repository.load("PascalStrategy", "0" * 64)


# --- faults ---------------------------------------------------------------------------------------------


class Crash(Exception):
    """The injected failure (a process dying between two writes)."""


class FailingTable(CountingTable):
    """A table whose next ``transact`` fails before writing anything."""

    def __init__(self, inner: KeyValueTable, failures: int = 1) -> None:
        super().__init__(inner)
        self.failures = failures

    def transact(self, operations: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise Crash("process died after the object write")
        self.inner.transact(operations)


class FailingStore:
    """An object store whose ``create`` fails."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create(self, key: str, data: bytes) -> None:
        raise Crash("bucket unreachable")


def _rows(backend: Backend, strategy: str) -> list[dict[str, Any]]:
    return [item for item in backend.table().scan() if item[PARTITION_KEY] == strategy]


def test_crash_between_object_and_registry_write_leaves_no_row_and_a_retry_succeeds(
    backend: Backend, clock: Clock
) -> None:
    table = FailingTable(backend.table())
    service = ConfigVersionService(table, ConfigRepository(backend.store()), clock=clock)
    data = config()
    with pytest.raises(Crash):
        service.create_version(strategy_name="PascalStrategy", config_data=data, description="")
    assert _rows(backend, "PascalStrategy") == []  # no head, no hash pointer, no version row
    assert service.list_versions("PascalStrategy") == []
    assert ConfigRepository(backend.store()).exists(
        "PascalStrategy", config_hash(data)
    )  # orphan body: harmless

    retried = service.create_version(strategy_name="PascalStrategy", config_data=data, description="")
    assert retried.created and retried.version_number == 1
    assert ConfigRepository(backend.store()).load("PascalStrategy", retried.config_hash) == data
    for version in service.list_versions("PascalStrategy"):  # every row points at a stored body
        assert ConfigRepository(backend.store()).exists("PascalStrategy", version.config_hash)


def test_object_write_failure_writes_no_row(backend: Backend, clock: Clock) -> None:
    service = ConfigVersionService(
        backend.table(), ConfigRepository(FailingStore(backend.store())), clock=clock
    )
    with pytest.raises(Crash):
        service.create_version(strategy_name="PascalStrategy", config_data=config(), description="")
    assert _rows(backend, "PascalStrategy") == []


def test_crash_during_activation_keeps_the_previous_active(backend: Backend, clock: Clock) -> None:
    setup = backend.service(clock)
    old = setup.create_version(strategy_name="PascalStrategy", config_data=config(1), description="")
    new = setup.create_version(strategy_name="PascalStrategy", config_data=config(2), description="")
    setup.activate("PascalStrategy", old.config_id)
    failing = ConfigVersionService(
        FailingTable(backend.table()), ConfigRepository(backend.store()), clock=clock
    )
    with pytest.raises(Crash):
        failing.activate("PascalStrategy", new.config_id)
    statuses = {v.config_id: v.status for v in setup.list_versions("PascalStrategy")}
    assert statuses == {new.config_id: ConfigStatus.DRAFT, old.config_id: ConfigStatus.ACTIVE}
    assert failing.activate("PascalStrategy", new.config_id).status is ConfigStatus.ACTIVE


# --- concurrency ----------------------------------------------------------------------------------------


def _check_one_active(service: ConfigVersionService, strategy: str) -> ConfigVersion:
    versions = service.list_versions(strategy)
    active = [v for v in versions if v.status is ConfigStatus.ACTIVE]
    assert len(active) == 1, [(v.config_id, v.status) for v in versions]
    assert service.get_active(strategy) == active[0]
    for version in versions:
        if version.status is ConfigStatus.DEPRECATED:
            assert version.superseded_by in {v.config_id for v in versions}
            assert version.expires_at is not None
    return active[0]


def test_concurrent_activations_leave_exactly_one_active(backend: Backend, clock: Clock) -> None:
    setup = backend.service(clock)
    versions = [
        setup.create_version(strategy_name="PascalStrategy", config_data=config(stake), description="")
        for stake in range(1, 9)
    ]
    setup.activate("PascalStrategy", versions[0].config_id)

    def activate(index: int) -> ConfigVersion:
        return backend.service(clock).activate("PascalStrategy", versions[index].config_id)

    results, errors = run_threads(8, activate)
    assert all(isinstance(err, ConfigConflict) for err in errors), errors
    assert len(errors) < 8
    active = _check_one_active(setup, "PascalStrategy")
    succeeded = {result.config_id for result in results if result is not None}
    assert active.config_id in succeeded
    # every other winner was deprecated, and superseded_by always leads forward to the ACTIVE one
    by_id = {v.config_id: v for v in setup.list_versions("PascalStrategy")}
    assert all(
        by_id[config_id].status is ConfigStatus.DEPRECATED for config_id in succeeded - {active.config_id}
    )
    for start in by_id:
        step, hops = start, 0
        while by_id[step].status is ConfigStatus.DEPRECATED and hops <= len(by_id):
            step, hops = by_id[step].superseded_by or "", hops + 1
        assert step == active.config_id, (start, step)


def test_concurrent_creates_get_unique_sequential_numbers(backend: Backend, clock: Clock) -> None:
    def create(index: int) -> ConfigVersion:
        return backend.service(clock).create_version(
            strategy_name="PascalStrategy", config_data=config(index + 1), description=f"writer {index}"
        )

    results, errors = run_threads(8, create)
    assert all(isinstance(err, ConfigConflict) for err in errors), errors
    created = [result for result in results if result is not None]
    numbers = sorted(version.version_number for version in created)
    assert numbers == list(range(1, len(created) + 1))
    listed = backend.service(clock).list_versions("PascalStrategy")
    assert sorted(v.version_number for v in listed) == numbers
    assert len({v.config_id for v in listed}) == len(listed)


def test_concurrent_uploads_of_one_config_create_it_once(backend: Backend, clock: Clock) -> None:
    def create(index: int) -> ConfigVersion:
        return backend.service(clock).create_version(
            strategy_name="PascalStrategy", config_data=config(), description=f"writer {index}"
        )

    results, errors = run_threads(8, create)
    assert all(isinstance(err, ConfigConflict) for err in errors), errors
    done = [result for result in results if result is not None]
    assert len({version.config_id for version in done}) == 1
    assert sum(1 for version in done if version.created) == 1
    assert len(backend.service(clock).list_versions("PascalStrategy")) == 1


def test_concurrent_activate_and_create_mixed(backend: Backend, clock: Clock) -> None:
    setup = backend.service(clock)
    versions = [
        setup.create_version(strategy_name="PascalStrategy", config_data=config(stake), description="")
        for stake in range(1, 5)
    ]

    def work(index: int) -> ConfigVersion:
        service = backend.service(clock)
        if index % 2:
            return service.activate("PascalStrategy", versions[index // 2].config_id)
        return service.create_version(
            strategy_name="PascalStrategy", config_data=config(100 + index), description=""
        )

    _, errors = run_threads(8, work)
    assert all(isinstance(err, ConfigConflict) for err in errors), errors
    _check_one_active(setup, "PascalStrategy")
    numbers = sorted(v.version_number for v in setup.list_versions("PascalStrategy"))
    assert numbers == list(range(1, len(numbers) + 1))
