"""What a bot starts with: the ready record and where its values came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.repository.bots import PRODUCTION_ROLE

if TYPE_CHECKING:
    from tradai_release.configs.loader import StrategyConfig

DEPLOYMENT = "deployment"
"""``pins_from`` of a bot whose deployment's variables pin what it runs."""
LIVE = "live"
"""``pins_from`` of a bot that read what it runs from the live state the last apply left."""
LATEST = "latest"
"""``pins_from`` of a bot with no pins and no profile: the seed's start-up (latest models when missing)."""

RECORD_FIELDS: tuple[str, ...] = (
    "env",
    "profile",
    "strategy",
    "config_id",
    "config_hash",
    "model_name",
    "model_version",
    "hub_tag",
    "hub_sha256",
    "image",
    "git_commit",
    "trace_id",
    "deployment_id",
    "pins_from",
    "models_dir",
    "downloaded_bytes",
    "downloaded_files",
    "reused_files",
)
"""The fields of the ready record, in the order ``--json`` documents them."""


@dataclass(frozen=True)
class Ready:
    """What a bot starts with: the values it runs, where they came from, and what start-up moved.

    ``config`` is the merged, validated runtime config (not part of the record). ``profile``,
    ``model_*``, ``config_hash`` and ``hub_*`` are None only for a ``latest`` start-up (no pins, no
    profile) that found its models present. ``git_commit``, ``trace_id`` and ``deployment_id`` name
    the last apply of the environment (None before the first).
    """

    env: str
    profile: int | None
    strategy: str
    config_id: str | None
    config_hash: str | None
    model_name: str | None
    model_version: int | None
    hub_tag: str | None
    hub_sha256: str | None
    image: str | None
    git_commit: str | None
    trace_id: str | None
    deployment_id: str | None
    pins_from: str
    models_dir: Path
    downloaded_bytes: int
    downloaded_files: int
    reused_files: int
    config: StrategyConfig = field(repr=False, compare=False)
    role: str = PRODUCTION_ROLE  # a challenger (a staging pin's bot) always dry-runs
    files_sha256: str = ""  # the digest of the strategy's verified files ("" when not pinned)

    def to_dict(self) -> dict[str, Any]:
        """The ready record (``RECORD_FIELDS``; JSON values only)."""
        record = {name: getattr(self, name) for name in RECORD_FIELDS}
        record["models_dir"] = str(self.models_dir)
        return record
