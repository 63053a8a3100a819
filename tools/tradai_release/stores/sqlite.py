"""Key-value table in a SQLite file: the embedded default for the config registry and release state."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from tradai_release.core.errors import BackendError, ConditionFailed
from tradai_release.stores import (
    Check,
    Condition,
    Delete,
    Operation,
    Put,
    check_transaction,
    condition_failure,
    string_key,
)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_BUSY_TIMEOUT_S = 60.0


class SqliteTable:
    """One table of ``(pk, sk, item JSON)`` rows in a SQLite file shared by several tables.

    Every write runs in its own ``BEGIN IMMEDIATE`` transaction, which takes the database's write
    lock before the condition is read, so check-then-write is atomic across threads and
    processes. WAL mode keeps readers from blocking on writers.
    """

    def __init__(self, path: Path, table: str, partition_key: str, sort_key: str) -> None:
        if not _IDENTIFIER.match(table):
            raise BackendError(str(path), f"invalid table name {table!r}")
        self.path = Path(path).expanduser()
        self.table = table
        self.name = f"sqlite:///{self.path}#{table}"
        self.partition_key = partition_key
        self.sort_key = sort_key
        self._ready = False

    # --- reads -------------------------------------------------------------------------------------

    def get(self, key: Mapping[str, Any], *, consistent: bool = True) -> dict[str, Any] | None:
        with self._connect() as conn:
            return self._read(conn, self._key(key))

    def query(self, partition: str, *, prefix: str = "", descending: bool = False) -> list[dict[str, Any]]:
        order = "DESC" if descending else "ASC"
        with self._connect() as conn:
            rows = conn.execute(
                f'SELECT item FROM "{self.table}" WHERE pk = ? AND substr(sk, 1, ?) = ? ORDER BY sk {order}',
                (partition, len(prefix), prefix),
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def scan(self) -> Iterator[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute(f'SELECT item FROM "{self.table}" ORDER BY pk, sk').fetchall()
        return iter([json.loads(row[0]) for row in rows])

    # --- writes ------------------------------------------------------------------------------------

    def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self.transact([Put(item, condition)])

    def delete(self, key: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self.transact([Delete(key, condition)])

    def transact(self, operations: Sequence[Operation]) -> None:
        check_transaction(self.name, operations, self.partition_key, self.sort_key)
        encoded = [(op, self._key(op.item if isinstance(op, Put) else op.key)) for op in operations]
        bodies = {id(op): _encode(op.item) for op, _ in encoded if isinstance(op, Put)}
        with self._connect() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                for op, key in encoded:
                    reason = condition_failure(op.condition, self._read(conn, key))
                    if reason is not None:
                        raise ConditionFailed(self.name, f"{key[0]}/{key[1]}: {reason}")
                for op, key in encoded:
                    if isinstance(op, Put):
                        conn.execute(
                            f'INSERT OR REPLACE INTO "{self.table}" (pk, sk, item) VALUES (?, ?, ?)',
                            (*key, bodies[id(op)]),
                        )
                    elif isinstance(op, Delete):
                        conn.execute(f'DELETE FROM "{self.table}" WHERE pk = ? AND sk = ?', key)
                    else:
                        assert isinstance(op, Check)
                conn.execute("COMMIT")
            except BaseException as err:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(err, sqlite3.Error):
                    raise BackendError(self.name, f"write failed: {err}") from err
                raise

    # --- helpers -----------------------------------------------------------------------------------

    def _key(self, key: Mapping[str, Any]) -> tuple[str, str]:
        return string_key(self.name, key, self.partition_key, self.sort_key)

    def _read(self, conn: sqlite3.Connection, key: tuple[str, str]) -> dict[str, Any] | None:
        row = conn.execute(f'SELECT item FROM "{self.table}" WHERE pk = ? AND sk = ?', key).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _connect(self) -> closing[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            if not self._ready:
                self._prepare(conn)
                self._ready = True
        except (OSError, sqlite3.Error) as err:
            raise BackendError(self.name, f"cannot open: {err}") from err
        return closing(conn)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # Switching a new file to WAL returns SQLITE_BUSY at once, without calling the busy
        # handler, while another connection is doing the same: retry until the busy timeout.
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(
                    f'CREATE TABLE IF NOT EXISTS "{self.table}" (pk TEXT NOT NULL, sk TEXT NOT NULL, '
                    "item TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID"
                )
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


def _encode(item: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(item), sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise BackendError("sqlite", f"item is not JSON-like: {err}") from err
