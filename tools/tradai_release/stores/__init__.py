"""Storage interfaces (object store, key-value table) and the factory that builds them from URIs.

Implementations live beside this module (``local.py``, ``s3.py``, ``sqlite.py``,
``dynamodb.py``, with boto3 client creation in ``aws.py``); their vendor imports (boto3,
sqlite3) stay inside them, so this module imports none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import SettingsError

MAX_OPERATIONS = 25
"""Most operations in one transaction (DynamoDB's limit, kept by every implementation)."""


def check_key(store: str, key: str) -> str:
    """Return ``key`` if it is a safe relative object key; raise InputError naming the store otherwise.

    Refused: empty keys or segments, ``.``/``..`` segments, a leading ``/``, backslashes and
    control characters, so no key can escape a directory or a bucket prefix.
    """
    from tradai_release.core.errors import InputError

    reason = None
    if not key:
        reason = "empty key"
    elif key.startswith("/") or "\\" in key:
        reason = "absolute paths and backslashes are not allowed"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        reason = "control characters are not allowed"
    elif any(part in ("", ".", "..") for part in key.split("/")):
        reason = "empty, '.' and '..' path segments are not allowed"
    if reason:
        raise InputError(store, "key", f"{key!r}: {reason}")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    """What a head or list returns for one object.

    ``sha256`` is the hex SHA-256 of the whole object as the store keeps it (S3's full-object
    ``ChecksumSHA256``, verified by the store when the object was written), read by ``head`` only;
    None when the store keeps none (a local file, an upload without a checksum, a multipart
    upload's composite checksum) or the call was a listing.
    """

    key: str
    size: int
    sha256: str | None = None


class ObjectStore(Protocol):
    """A flat key -> bytes store (a bucket or a directory).

    Keys are ``/``-separated relative paths; implementations refuse keys with
    ``..`` segments, a leading ``/``, backslashes or control characters.
    A reader never sees a partially written object: writes are atomic.
    """

    name: str  # a printable identity, e.g. "s3://bucket/prefix" or "file:///dir"
    part_size: int  # objects larger than this are read as parallel ranged parts of this size

    def put(self, key: str, data: bytes) -> None:
        """Write (or overwrite) ``key``."""

    def create(self, key: str, data: bytes) -> None:
        """Write ``key`` only if absent; raise ObjectExists otherwise (atomic across writers)."""

    def get(self, key: str) -> bytes:
        """Read ``key``; raise ObjectNotFound when absent."""

    def head(self, key: str) -> ObjectInfo | None:
        """Size (and the stored SHA-256 checksum, if the store keeps one) of ``key``; None when absent."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key."""

    def delete(self, key: str) -> None:
        """Remove ``key``; deleting an absent key is not an error."""

    def put_file(self, key: str, path: Path, *, sha256: str | None = None) -> None:
        """Upload a local file (large files: multipart / streamed, not read into memory).

        ``sha256`` is the hex SHA-256 of the file's content. Where the store can, it refuses
        bytes that do not hash to it (nothing is written) and keeps it with the object: S3 as a
        full-object ``ChecksumSHA256`` the server verifies on arrival (single PUTs, up to 5 GiB),
        the local store by hashing while it copies.
        """

    def get_stream(self, key: str, sink: IO[bytes]) -> None:
        """Download ``key`` into a writable binary stream, in order (the sink may hash as it writes).

        Raises ObjectNotFound when absent.
        """

    def get_range(self, key: str, start: int, length: int, sink: IO[bytes]) -> int:
        """Download bytes ``[start, start + length)`` of ``key`` into ``sink``; return the object's size.

        Fewer bytes (or none) reach the sink when the object ends earlier, so a caller that knows
        the size to expect compares the returned one. Raises ObjectNotFound when absent.
        """


@dataclass(frozen=True)
class Condition:
    """A precondition on one item of a key-value table.

    ``exists``: True = item must exist, False = must not exist, None = either.
    ``equals``: attributes that must currently have these values (implies the item exists).
    ``absent_or_equals``: attributes that must be missing on the item, or equal the value
    (the item itself may be missing).
    """

    exists: bool | None = None
    equals: Mapping[str, Any] = field(default_factory=dict)
    absent_or_equals: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Put:
    """Write a whole item (keys included in ``item``)."""

    item: Mapping[str, Any]
    condition: Condition | None = None


@dataclass(frozen=True)
class Delete:
    """Remove an item."""

    key: Mapping[str, Any]
    condition: Condition | None = None


@dataclass(frozen=True)
class Check:
    """Only assert a condition on an item (no write)."""

    key: Mapping[str, Any]
    condition: Condition


Operation = Put | Delete | Check


class KeyValueTable(Protocol):
    """A table of JSON-like items addressed by (partition key, sort key).

    Attribute values are JSON types (str, int, float, bool, None, list, dict);
    they round-trip unchanged (ints stay ints). ``partition_key`` and
    ``sort_key`` name the two key attributes every item carries.
    """

    name: str
    partition_key: str
    sort_key: str

    def get(self, key: Mapping[str, Any], *, consistent: bool = True) -> dict[str, Any] | None:
        """The item with this key, or None."""

    def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        """Write an item; raise ConditionFailed when the condition does not hold."""

    def delete(self, key: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        """Remove an item; raise ConditionFailed when the condition does not hold."""

    def query(self, partition: str, *, prefix: str = "", descending: bool = False) -> list[dict[str, Any]]:
        """Items of one partition whose sort key starts with ``prefix``, ordered by sort key."""

    def scan(self) -> Iterator[dict[str, Any]]:
        """Every item of the table (for reports and batched live reads)."""

    def transact(self, operations: Sequence[Operation]) -> None:
        """Apply all operations or none; raise ConditionFailed if any condition fails.

        At most 25 operations, each on a distinct item (DynamoDB's limits, kept everywhere).
        """


def condition_failure(condition: Condition | None, current: Mapping[str, Any] | None) -> str | None:
    """Why ``condition`` does not hold for ``current`` (the item as stored, or None), or None if it holds.

    The reference semantics: the SQLite table evaluates conditions with it, and the DynamoDB
    table's condition expressions are built to mean the same.
    """
    if condition is None:
        return None
    if condition.exists is True and current is None:
        return "item does not exist"
    if condition.exists is False and current is not None:
        return "item already exists"
    for name, expected in condition.equals.items():
        if current is None:
            return "item does not exist"
        if name not in current or current[name] != expected:
            return f"{name} is {current.get(name)!r}, expected {expected!r}"
    for name, expected in condition.absent_or_equals.items():
        if current is not None and name in current and current[name] != expected:
            return f"{name} is {current[name]!r}, expected {expected!r} or absent"
    return None


def operation_key(operation: Operation, partition_key: str, sort_key: str) -> tuple[Any, Any]:
    """The (partition, sort) key an operation of a transaction addresses."""
    source = operation.item if isinstance(operation, Put) else operation.key
    return (source.get(partition_key), source.get(sort_key))


def string_key(table: str, key: Mapping[str, Any], partition_key: str, sort_key: str) -> tuple[str, str]:
    """The (partition, sort) strings of an item or key; both tables keep keys as non-empty strings."""
    from tradai_release.core.errors import BackendError

    try:
        partition, sort = key[partition_key], key[sort_key]
    except KeyError as err:
        raise BackendError(table, f"item lacks key attribute {err.args[0]!r}") from err
    if not isinstance(partition, str) or not isinstance(sort, str) or not partition or not sort:
        raise BackendError(table, "key attributes must be non-empty strings")
    return partition, sort


def check_transaction(table: str, operations: Sequence[Operation], partition_key: str, sort_key: str) -> None:
    """Refuse what DynamoDB would refuse: more than MAX_OPERATIONS, or two operations on one item."""
    from tradai_release.core.errors import BackendError

    if len(operations) > MAX_OPERATIONS:
        count = len(operations)
        raise BackendError(table, f"a transaction holds at most {MAX_OPERATIONS} operations, got {count}")
    keys = [operation_key(op, partition_key, sort_key) for op in operations]
    if len(set(keys)) != len(keys):
        raise BackendError(table, "a transaction may touch each item only once")


def open_object_store(uri: str, aws: AwsOptions | None = None) -> ObjectStore:
    """Build an object store from ``file:///dir`` or ``s3://bucket[/prefix]``."""
    if uri.startswith("file://"):
        from tradai_release.stores.local import LocalObjectStore

        return LocalObjectStore(Path(uri[len("file://") :]))
    if uri.startswith("s3://"):
        from tradai_release.stores.s3 import S3ObjectStore

        bucket, _, prefix = uri[len("s3://") :].partition("/")
        return S3ObjectStore(bucket, prefix=prefix, aws=aws or AwsOptions())
    raise SettingsError(uri, "object store URI must start with file:// or s3://")


def open_table(
    uri: str, *, table: str, partition_key: str, sort_key: str, aws: AwsOptions | None = None
) -> KeyValueTable:
    """Build a key-value table from ``sqlite:///path.db`` (``sqlite:////abs.db``) or ``dynamodb://name``.

    ``table`` names the table inside a SQLite file; a DynamoDB URI names the table itself.
    """
    if uri.startswith("sqlite:///"):
        from tradai_release.stores.sqlite import SqliteTable

        return SqliteTable(Path(uri[len("sqlite:///") :]), table, partition_key, sort_key)
    if uri.startswith("dynamodb://"):
        from tradai_release.stores.dynamodb import DynamoTable

        return DynamoTable(uri[len("dynamodb://") :], partition_key, sort_key, aws=aws or AwsOptions())
    raise SettingsError(uri, "table URI must start with sqlite:/// or dynamodb://")
