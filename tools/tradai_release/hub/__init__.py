"""The content-addressed model hub (§6): push, pull, tags and pointers over an ObjectStore."""

from __future__ import annotations

from tradai_release.hub.hub import (
    FileEntry,
    ModelHub,
    Pointer,
    ProfilePointer,
    PullResult,
    PushResult,
    TagInfo,
    TagManifest,
    TransferProgress,
    check_compat,
    ensure_models_present,
)

__all__ = [
    "FileEntry",
    "ModelHub",
    "Pointer",
    "ProfilePointer",
    "PullResult",
    "PushResult",
    "TagInfo",
    "TagManifest",
    "TransferProgress",
    "check_compat",
    "ensure_models_present",
]
