"""Filesystem steps shared by training and the hub's pull: replace a directory without a broken state."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


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
