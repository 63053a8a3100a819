"""Shared helpers of the hub tests: a fake models dir with the training layout, and store wrappers."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from tradai_release.core.errors import BackendError, ObjectExists, ObjectNotFound
from tradai_release.stores import ObjectInfo, ObjectStore

SIGNAL_FILES = (
    "ensemble_rf.pkl",
    "ensemble_rf.onnx",
    "ensemble_xgb.json",
    "ensemble_lgb.txt",
    "ensemble_scaler.pkl",
)
POSITION_FILES = (
    "position_rf.pkl",
    "position_rf.onnx",
    "position_xgb.json",
    "position_lgb.txt",
    "position_scaler.pkl",
)
FEATURES = ("rsi_14", "macd", "atr_14", "volume_z")


def make_models_dir(
    root: Path,
    strategies: Sequence[str] = ("AlphaStrategy",),
    *,
    size: int = 2048,
    features: Sequence[str] = FEATURES,
    accuracy: float = 0.61,
) -> Path:
    """A models dir with the training layout; binaries are random bytes (nothing here is ever unpickled)."""
    for strategy in strategies:
        base = root / strategy
        for sub, names in (("signal", SIGNAL_FILES), ("position", POSITION_FILES)):
            (base / sub).mkdir(parents=True, exist_ok=True)
            for name in names:
                (base / sub / name).write_bytes(os.urandom(size))
        (base / "signal" / "ensemble_metadata.json").write_text(
            json.dumps(
                {
                    "accuracy": accuracy,
                    "metrics": {"sharpe_ratio": 1.2, "total_trades": 40},
                    "strategy": strategy,
                }
            )
        )
        (base / "position" / "position_metadata.json").write_text(
            json.dumps({"accuracy": 0.55, "strategy": strategy})
        )
        (base / "model_compat.json").write_text(
            json.dumps(
                {
                    "feature_count": len(features),
                    "features": list(features),
                    "sklearn": "1.5",
                    "strategy": strategy,
                }
            )
        )
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to prove a failed pull left it untouched)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class MemoryStore:
    """An in-memory ObjectStore (the protocol's semantics, for tests that need no backend)."""

    def __init__(self, part_size: int = 64 * 1024 * 1024) -> None:
        self.name = "mem://hub"
        self.part_size = part_size
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = bytes(data)

    def create(self, key: str, data: bytes) -> None:
        if key in self.objects:
            raise ObjectExists(self.name, key)
        self.objects[key] = bytes(data)

    def get(self, key: str) -> bytes:
        if key not in self.objects:
            raise ObjectNotFound(self.name, key)
        return self.objects[key]

    def head(self, key: str) -> ObjectInfo | None:
        return ObjectInfo(key, len(self.objects[key])) if key in self.objects else None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield ObjectInfo(key, len(self.objects[key]))

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def put_file(self, key: str, path: Path, *, sha256: str | None = None) -> None:
        data = path.read_bytes()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise BackendError(self.name, f"{key}: bytes do not match their checksum")
        self.objects[key] = data

    def get_stream(self, key: str, sink: IO[bytes]) -> None:
        data = self.get(key)
        for start in range(0, len(data), 1000):
            sink.write(data[start : start + 1000])

    def get_range(self, key: str, start: int, length: int, sink: IO[bytes]) -> int:
        data = self.get(key)
        part = data[start : start + length]
        for offset in range(0, len(part), 1000):
            sink.write(part[offset : offset + 1000])
        return len(data)


class CountingStore:
    """Wraps a store and counts the calls that write (so a test can prove a re-push uploads nothing)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.name = inner.name
        self.part_size = inner.part_size
        self.calls: Counter[str] = Counter()
        self.written: list[str] = []

    def put(self, key: str, data: bytes) -> None:
        self.calls["put"] += 1
        self.written.append(key)
        self.inner.put(key, data)

    def create(self, key: str, data: bytes) -> None:
        self.calls["create"] += 1
        self.written.append(key)
        self.inner.create(key, data)

    def get(self, key: str) -> bytes:
        self.calls["get"] += 1
        return self.inner.get(key)

    def head(self, key: str) -> ObjectInfo | None:
        self.calls["head"] += 1
        return self.inner.head(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def put_file(self, key: str, path: Path, *, sha256: str | None = None) -> None:
        self.calls["put_file"] += 1
        self.written.append(key)
        self.inner.put_file(key, path, sha256=sha256)

    def get_stream(self, key: str, sink: IO[bytes]) -> None:
        self.calls["get_stream"] += 1
        self.inner.get_stream(key, sink)

    def get_range(self, key: str, start: int, length: int, sink: IO[bytes]) -> int:
        self.calls["get_range"] += 1
        return self.inner.get_range(key, start, length, sink)
