"""Config hashing: SHA-256 of the normalized content, and the config_id built from it.

See docs/architecture.md §3.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(data: Any) -> bytes:
    """Canonical JSON: sorted keys, no insignificant whitespace, UTF-8 (the bytes that get hashed)."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def config_hash(data: Any) -> str:
    """SHA-256 hex digest of parsed config content; formatting, key order and comments do not matter.

    Interpolation markers (``${VAR:-default}``) are hashed as written, so the hash
    does not depend on the machine's environment.
    """
    return hashlib.sha256(canonical_json(data)).hexdigest()


def config_id(version_number: int, digest: str) -> str:
    """``v{n}-{hash[:8]}``, the sort key of a config version."""
    return f"v{version_number}-{digest[:8]}"
