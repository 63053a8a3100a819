"""The config-version registry's test backends (SQLite + local dir, DynamoDB + S3 on moto), a settable
clock and racing threads, shared by the config tests."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tradai_release.configs import ConfigRepository, ConfigVersionService
from tradai_release.configs.table import PARTITION_KEY, SORT_KEY, TABLE_NAME, TTL_ATTRIBUTE
from tradai_release.core.endpoints import AwsOptions
from tradai_release.stores import KeyValueTable, ObjectStore, open_object_store, open_table
from tradai_release.stores.dynamodb import ensure_table
from tradai_release.stores.s3 import ensure_bucket

START = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)
AWS = AwsOptions(region="us-east-1")


class Clock:
    """A settable UTC clock, so tests can step past the 90-day TTL."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Backend:
    """Where one test's registry lives; ``open`` builds a fresh table + store on it (one per thread)."""

    kind: str
    table_uri: str
    store_uri: str

    def table(self) -> KeyValueTable:
        return open_table(
            self.table_uri, table=TABLE_NAME, partition_key=PARTITION_KEY, sort_key=SORT_KEY, aws=AWS
        )

    def store(self) -> ObjectStore:
        return open_object_store(self.store_uri, aws=AWS)

    def service(self, clock: Callable[[], datetime] | None = None) -> ConfigVersionService:
        return ConfigVersionService(self.table(), ConfigRepository(self.store()), clock=clock)


def create_aws_resources(client_options: AwsOptions, table: str, bucket: str) -> None:
    """The DynamoDB table (TTL on expires_at) and S3 bucket, created as provisioning creates them."""
    ensure_table(client_options, table, PARTITION_KEY, SORT_KEY, ttl_attribute=TTL_ATTRIBUTE)
    ensure_bucket(client_options, bucket)


@contextmanager
def make_backend(kind: str, tmp_path: Path) -> Iterator[Backend]:
    if kind == "sqlite":
        yield Backend(kind, f"sqlite:///{tmp_path / 'state.db'}", f"file://{tmp_path / 'configs'}")
        return
    from moto import mock_aws

    suffix = uuid.uuid4().hex[:8]
    with mock_aws():
        create_aws_resources(AWS, f"tradai-config-versions-{suffix}", f"tradai-configs-{suffix}")
        yield Backend(kind, f"dynamodb://tradai-config-versions-{suffix}", f"s3://tradai-configs-{suffix}")


def run_threads(count: int, body: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``body(0..count-1)`` on ``count`` threads released together; their results and errors."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = body(index)
        except BaseException as err:  # collected and checked by the test
            with lock:
                errors.append(err)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors
