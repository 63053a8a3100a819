"""Config bodies in the config bucket: write-once objects keyed by strategy and config hash.

See docs/architecture.md §3.
"""

from __future__ import annotations

import json
from typing import Any

from tradai_release.core.confighash import canonical_json, config_hash
from tradai_release.core.errors import ConfigIntegrityError, ObjectExists
from tradai_release.stores import ObjectStore

PREFIX = "configs"


class ConfigRepository:
    """The seed's S3ConfigRepository, over any ObjectStore (an S3 bucket or a local directory).

    A body is the canonical JSON of the parsed config (the bytes that are hashed),
    stored at ``configs/<strategy>/<hash>.json``. Objects are write-once: saving
    the same body again is a no-op, a different body under an existing key is an
    integrity error. Reads check the body against the hash in its key.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @staticmethod
    def key(strategy_name: str, digest: str) -> str:
        """``configs/<strategy>/<hash>.json``"""
        return f"{PREFIX}/{strategy_name}/{digest}.json"

    def save(self, strategy_name: str, config_data: dict[str, Any]) -> str:
        """Store the body of ``config_data`` once; return its config hash."""
        body = canonical_json(config_data)
        digest = config_hash(config_data)
        key = self.key(strategy_name, digest)
        try:
            self.store.create(key, body)
        except ObjectExists:
            existing = self.store.get(key)
            if existing != body:
                raise ConfigIntegrityError(
                    f"{self.store.name}/{key}", "a different body is already stored under this hash"
                ) from None
        return digest

    def load_bytes(self, strategy_name: str, digest: str) -> bytes:
        """The stored body exactly as written (canonical JSON); ObjectNotFound when absent."""
        return self.store.get(self.key(strategy_name, digest))

    def load(self, strategy_name: str, digest: str) -> dict[str, Any]:
        """The stored config, checked against ``digest``."""
        key = self.key(strategy_name, digest)
        raw = self.store.get(key)
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigIntegrityError(f"{self.store.name}/{key}", f"not JSON: {err}") from None
        if not isinstance(data, dict) or config_hash(data) != digest:
            raise ConfigIntegrityError(f"{self.store.name}/{key}", "body does not hash to its key")
        return data

    def exists(self, strategy_name: str, digest: str) -> bool:
        """True when the body of ``digest`` is stored."""
        return self.store.head(self.key(strategy_name, digest)) is not None

    def hashes(self, strategy_name: str) -> list[str]:
        """Config hashes stored for one strategy, sorted."""
        prefix = f"{PREFIX}/{strategy_name}/"
        return [
            info.key[len(prefix) : -len(".json")]
            for info in self.store.list(prefix)
            if info.key.endswith(".json") and "/" not in info.key[len(prefix) :]
        ]


S3ConfigRepository = ConfigRepository
"""The seed's name: the repository is the same over S3 or a local directory."""
