"""Filesystem steps shared by training, registration and the hub: hash a file, replace a directory safely."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from tradai_release.core.errors import InputError

_CHUNK = 1024 * 1024


def file_sha256(path: Path) -> str:
    """Streaming SHA-256 of a file (never read whole into memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def user_cache_dir() -> Path:
    """This project's directory in the user's cache (``$XDG_CACHE_HOME``, else ``~/.cache``): what can be
    made again from its key alone, kept between runs."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tradai-release"


def swap_into_place(staging: Path, dest: Path, *, backup: Path | None = None) -> None:
    """Replace directory ``dest`` by ``staging`` with renames (one filesystem).

    If the second rename fails, ``dest`` is restored, so a reader finds the old or the new
    directory, never none. ``backup`` is where the old one waits meanwhile (default: a hidden
    sibling of ``dest``); put it outside a directory that gets bundled.
    """
    if not dest.exists():
        os.rename(staging, dest)
        return
    backup = backup or dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(dest, backup)
    try:
        os.rename(staging, dest)
    except BaseException:
        os.rename(backup, dest)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def read_json_object(path: Path, where: str) -> dict[str, Any]:
    """The JSON object in ``path``; anything else is an InputError naming ``where``."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise InputError(where, "json", f"unreadable: {err}") from None
    if not isinstance(data, dict):
        raise InputError(where, "json", "not a JSON object")
    return data
