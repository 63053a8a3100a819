"""One contract suite for every storage implementation: local dir + S3 (moto), SQLite + DynamoDB (moto)."""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import BackendError, ConditionFailed, InputError, ObjectExists, ObjectNotFound
from tradai_release.stores import (
    Check,
    Condition,
    Delete,
    KeyValueTable,
    ObjectInfo,
    ObjectStore,
    Put,
    open_object_store,
    open_table,
)
from tradai_release.stores.aws import client

AWS = AwsOptions(region="us-east-1")


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield open_object_store(f"file://{tmp_path / 'objects'}")
        return
    from moto import mock_aws

    with mock_aws():
        bucket = f"contract-{uuid.uuid4().hex[:8]}"
        client(AWS, "s3").create_bucket(Bucket=bucket)
        yield open_object_store(f"s3://{bucket}/some/prefix", aws=AWS)


@pytest.fixture(params=["sqlite", "dynamodb"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyValueTable]:
    if request.param == "sqlite":
        yield open_table(
            f"sqlite:///{tmp_path / 'state.db'}", table="items", partition_key="pk", sort_key="sk"
        )
        return
    from moto import mock_aws

    with mock_aws():
        name = f"contract-{uuid.uuid4().hex[:8]}"
        client(AWS, "dynamodb").create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield open_table(f"dynamodb://{name}", table="items", partition_key="pk", sort_key="sk", aws=AWS)


# --- object stores -----------------------------------------------------------------------------------


def test_put_get_head_roundtrip(store: ObjectStore) -> None:
    store.put("a/b/c.bin", b"\x00\x01payload")
    assert store.get("a/b/c.bin") == b"\x00\x01payload"
    assert store.head("a/b/c.bin") == ObjectInfo("a/b/c.bin", 9)
    assert store.head("a/b/missing") is None
    store.put("a/b/c.bin", b"new")
    assert store.get("a/b/c.bin") == b"new"


def test_get_missing_raises_not_found_naming_the_key(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound, match=r"nope/x\.json"):
        store.get("nope/x.json")
    with pytest.raises(ObjectNotFound):
        store.get_stream("nope/x.json", io.BytesIO())


def test_list_is_sorted_and_filtered_by_prefix(store: ObjectStore) -> None:
    for key in ["tags/v2.json", "blobs/ab/cd", "tags/v1.json", "tagsx"]:
        store.put(key, key.encode())
    assert [info.key for info in store.list("tags/")] == ["tags/v1.json", "tags/v2.json"]
    assert [info.key for info in store.list()] == ["blobs/ab/cd", "tags/v1.json", "tags/v2.json", "tagsx"]
    assert [info.size for info in store.list("blobs/")] == [len("blobs/ab/cd")]


def test_create_refuses_an_existing_key_and_keeps_the_first_body(store: ObjectStore) -> None:
    store.create("tags/v1.json", b"first")
    with pytest.raises(ObjectExists, match=r"tags/v1\.json"):
        store.create("tags/v1.json", b"second")
    assert store.get("tags/v1.json") == b"first"


def test_concurrent_creates_exactly_one_wins(store: ObjectStore) -> None:
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(n: int) -> None:
        try:
            store.create("race.json", f"writer-{n}".encode())
            result = "won"
        except ObjectExists:
            result = "lost"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert store.get("race.json").startswith(b"writer-")


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.put("x/y", b"1")
    store.delete("x/y")
    store.delete("x/y")
    assert store.head("x/y") is None
    assert list(store.list()) == []


def test_put_file_and_get_stream_roundtrip_a_large_file(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    payload = bytes(range(256)) * 8192  # 2 MiB
    source.write_bytes(payload)
    store.put_file("blobs/big", source)
    sink = io.BytesIO()
    store.get_stream("blobs/big", sink)
    assert sink.getvalue() == payload
    assert store.head("blobs/big") == ObjectInfo("blobs/big", len(payload))


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a\\b", "a\nb", "a/\x7f"])
def test_unsafe_keys_are_refused_before_any_io(store: ObjectStore, key: str) -> None:
    with pytest.raises(InputError, match="key"):
        store.put(key, b"x")
    assert list(store.list()) == []


def test_s3_multipart_upload_of_a_file_above_the_threshold(aws: None, tmp_path: Path) -> None:
    from tradai_release.stores.s3 import S3ObjectStore

    client(AWS, "s3").create_bucket(Bucket="multipart-test")
    store = S3ObjectStore(
        "multipart-test", aws=AWS, multipart_threshold=5 * 1024 * 1024, part_size=5 * 1024 * 1024
    )
    source = tmp_path / "big.bin"
    payload = b"0123456789abcdef" * (11 * 65536)  # 11 MiB -> three parts
    source.write_bytes(payload)
    store.put_file("big", source)
    assert store.head("big") == ObjectInfo("big", len(payload))
    uploads = client(AWS, "s3").list_multipart_uploads(Bucket="multipart-test")
    assert not uploads.get("Uploads")


def test_s3_missing_bucket_is_one_clear_error(aws: None) -> None:
    store = open_object_store("s3://does-not-exist-bucket", aws=AWS)
    with pytest.raises(BackendError, match="bucket does not exist"):
        store.put("k", b"v")


def test_local_store_never_lists_staged_writes(tmp_path: Path) -> None:
    from tradai_release.stores.local import LocalObjectStore

    store = LocalObjectStore(tmp_path / "root")
    store.put("a", b"1")
    (tmp_path / "root" / ".staging" / "leftover").write_bytes(b"half")  # a crashed writer's file
    assert [info.key for info in store.list()] == ["a"]
    with pytest.raises(InputError):
        store.get(".staging/leftover")


def test_local_failed_write_leaves_no_partial_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from tradai_release.stores.local import LocalObjectStore

    store = LocalObjectStore(tmp_path / "root")
    store.put("model.bin", b"old")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(BackendError, match="No space left"):
        store.put("model.bin", b"new")
    monkeypatch.undo()
    assert store.get("model.bin") == b"old"
    assert [info.key for info in store.list()] == ["model.bin"]
    assert list((tmp_path / "root" / ".staging").iterdir()) == []


# --- key-value tables ---------------------------------------------------------------------------------


def test_put_get_roundtrip_keeps_json_types(table: KeyValueTable) -> None:
    item = {
        "pk": "S",
        "sk": "v1",
        "n": 3,
        "f": 0.25,
        "whole": 1.0,
        "b": True,
        "none": None,
        "s": "",
        "l": [1, "x", {"k": 2}],
        "d": {"nested": [0.5, 2.0]},
    }
    table.put(item)
    got = table.get({"pk": "S", "sk": "v1"})
    assert got == item
    assert got is not None and isinstance(got["n"], int) and isinstance(got["whole"], float)
    assert table.get({"pk": "S", "sk": "missing"}) is None


def test_query_orders_by_sort_key_and_filters_by_prefix(table: KeyValueTable) -> None:
    for sk in ["v2", "#HEAD", "v10", "v1", "#HASH#ab"]:
        table.put({"pk": "A", "sk": sk})
    table.put({"pk": "B", "sk": "v1"})
    assert [item["sk"] for item in table.query("A", prefix="v")] == ["v1", "v10", "v2"]
    assert [item["sk"] for item in table.query("A", prefix="v", descending=True)] == ["v2", "v10", "v1"]
    assert [item["sk"] for item in table.query("A")] == ["#HASH#ab", "#HEAD", "v1", "v10", "v2"]
    assert [(item["pk"], item["sk"]) for item in table.scan()][-1] == ("B", "v1")
    assert len(list(table.scan())) == 6


def test_conditional_put_exists_and_not_exists(table: KeyValueTable) -> None:
    table.put({"pk": "A", "sk": "1", "rev": 1}, condition=Condition(exists=False))
    with pytest.raises(ConditionFailed):
        table.put({"pk": "A", "sk": "1", "rev": 2}, condition=Condition(exists=False))
    with pytest.raises(ConditionFailed):
        table.put({"pk": "A", "sk": "2"}, condition=Condition(exists=True))
    assert table.get({"pk": "A", "sk": "1"}) == {"pk": "A", "sk": "1", "rev": 1}
    assert table.get({"pk": "A", "sk": "2"}) is None


def test_conditional_put_on_attribute_values(table: KeyValueTable) -> None:
    table.put({"pk": "A", "sk": "head", "rev": 1, "status": "ACTIVE"})
    table.put({"pk": "A", "sk": "head", "rev": 2, "status": "ACTIVE"}, condition=Condition(equals={"rev": 1}))
    with pytest.raises(ConditionFailed):  # stale revision: optimistic concurrency
        table.put({"pk": "A", "sk": "head", "rev": 3}, condition=Condition(equals={"rev": 1}))
    with pytest.raises(ConditionFailed):  # equals implies the item exists
        table.put({"pk": "A", "sk": "other"}, condition=Condition(equals={"rev": 1}))
    # absent_or_equals: a lease that is free (absent) or still ours
    table.put({"pk": "L", "sk": "lock", "owner": "me"}, condition=Condition(absent_or_equals={"owner": "me"}))
    table.put(
        {"pk": "L", "sk": "lock", "owner": "me", "n": 1},
        condition=Condition(absent_or_equals={"owner": "me"}),
    )
    with pytest.raises(ConditionFailed):
        table.put(
            {"pk": "L", "sk": "lock", "owner": "you"}, condition=Condition(absent_or_equals={"owner": "you"})
        )
    assert (table.get({"pk": "L", "sk": "lock"}) or {})["owner"] == "me"


def test_conditional_delete(table: KeyValueTable) -> None:
    table.put({"pk": "A", "sk": "1", "owner": "me"})
    with pytest.raises(ConditionFailed):
        table.delete({"pk": "A", "sk": "1"}, condition=Condition(equals={"owner": "you"}))
    table.delete({"pk": "A", "sk": "1"}, condition=Condition(equals={"owner": "me"}))
    assert table.get({"pk": "A", "sk": "1"}) is None
    table.delete({"pk": "A", "sk": "1"})  # absent: not an error


def test_transaction_commits_all_operations(table: KeyValueTable) -> None:
    table.put({"pk": "A", "sk": "old", "status": "ACTIVE"})
    table.put({"pk": "A", "sk": "gone"})
    table.transact(
        [
            Put({"pk": "A", "sk": "old", "status": "DEPRECATED"}, Condition(equals={"status": "ACTIVE"})),
            Put({"pk": "A", "sk": "new", "status": "ACTIVE"}, Condition(exists=False)),
            Delete({"pk": "A", "sk": "gone"}, Condition(exists=True)),
            Check({"pk": "A", "sk": "guard"}, Condition(exists=False)),
        ]
    )
    assert [(i["sk"], i.get("status")) for i in table.query("A")] == [
        ("new", "ACTIVE"),
        ("old", "DEPRECATED"),
    ]


def test_transaction_with_one_failing_condition_writes_nothing(table: KeyValueTable) -> None:
    table.put({"pk": "A", "sk": "old", "status": "ACTIVE"})
    table.put({"pk": "A", "sk": "guard"})
    with pytest.raises(ConditionFailed):
        table.transact(
            [
                Put({"pk": "A", "sk": "old", "status": "DEPRECATED"}, Condition(equals={"status": "ACTIVE"})),
                Put({"pk": "A", "sk": "new", "status": "ACTIVE"}),
                Delete({"pk": "A", "sk": "x"}),
                Check({"pk": "A", "sk": "guard"}, Condition(exists=False)),  # fails: guard exists
            ]
        )
    assert table.get({"pk": "A", "sk": "old"}) == {"pk": "A", "sk": "old", "status": "ACTIVE"}
    assert table.get({"pk": "A", "sk": "new"}) is None


def test_transaction_limits_are_the_same_everywhere(table: KeyValueTable) -> None:
    with pytest.raises(BackendError, match="at most 25"):
        table.transact([Put({"pk": "A", "sk": str(n)}) for n in range(26)])
    with pytest.raises(BackendError, match="only once"):
        table.transact([Put({"pk": "A", "sk": "1"}), Delete({"pk": "A", "sk": "1"})])
    assert list(table.scan()) == []


def test_a_stale_conditional_write_is_refused(table: KeyValueTable) -> None:
    """The interleaving optimistic writers rely on, made deterministic: read, someone else writes,
    our write conditioned on what we read fails and changes nothing."""
    table.put({"pk": "C", "sk": "counter", "value": 0})
    seen = (table.get({"pk": "C", "sk": "counter"}) or {})["value"]
    unchanged = Condition(equals={"value": seen})
    table.put({"pk": "C", "sk": "counter", "value": seen + 1}, condition=unchanged)  # the other writer
    with pytest.raises(ConditionFailed):
        table.put({"pk": "C", "sk": "counter", "value": seen + 1}, condition=unchanged)
    assert (table.get({"pk": "C", "sk": "counter"}) or {})["value"] == 1


def test_concurrent_optimistic_increments_never_lose_an_update(table: KeyValueTable) -> None:
    table.put({"pk": "C", "sk": "counter", "value": 0})
    conflicts: list[int] = []

    def bump() -> None:
        for _ in range(5):
            while True:
                current = table.get({"pk": "C", "sk": "counter"}) or {}
                try:
                    table.put(
                        {"pk": "C", "sk": "counter", "value": current["value"] + 1},
                        condition=Condition(equals={"value": current["value"]}),
                    )
                    break
                except ConditionFailed:
                    conflicts.append(1)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (table.get({"pk": "C", "sk": "counter"}) or {})["value"] == 40


def test_items_need_string_keys(table: KeyValueTable) -> None:
    with pytest.raises(BackendError, match="key"):
        table.put({"pk": "A"})
    with pytest.raises(BackendError, match="strings"):
        table.put({"pk": "A", "sk": 1})


def test_writers_that_open_a_new_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    # Turning a new file to WAL answers "database is locked" without waiting while another
    # connection does the same; the first writers of a fresh state file must not fail on it.
    for round_ in range(40):
        path = tmp_path / f"state-{round_}.db"
        errors: list[BaseException] = []

        def write(index: int, path: Path = path, errors: list[BaseException] = errors) -> None:
            try:
                open_table(f"sqlite:///{path}", table="t", partition_key="pk", sort_key="sk").put(
                    {"pk": "a", "sk": str(index)}
                )
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=write, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], errors
        table = open_table(f"sqlite:///{path}", table="t", partition_key="pk", sort_key="sk")
        assert len(table.query("a")) == 8


def test_dynamodb_missing_table_is_one_clear_error(aws: None) -> None:
    missing = open_table("dynamodb://no-such-table", table="t", partition_key="pk", sort_key="sk", aws=AWS)
    with pytest.raises(BackendError, match="table does not exist"):
        missing.get({"pk": "a", "sk": "b"})


def test_unknown_uri_schemes_are_settings_errors() -> None:
    from tradai_release.core.errors import SettingsError

    with pytest.raises(SettingsError):
        open_object_store("ftp://x")
    with pytest.raises(SettingsError):
        open_table("postgres://x", table="t", partition_key="pk", sort_key="sk")
