"""The content-addressed model hub: push, pull, tags and pointers (docs/architecture.md §6)."""

from __future__ import annotations

from tradai_release.hub.compat import check_compat
from tradai_release.hub.hub import ModelHub, Pinned, PullResult, PushResult, Verification
from tradai_release.hub.manifest import FileEntry, TagInfo, TagManifest
from tradai_release.hub.pointers import Pointer, ProfilePointer
from tradai_release.hub.transfer import TransferProgress, local_differences

__all__ = [
    "FileEntry",
    "ModelHub",
    "Pinned",
    "Pointer",
    "ProfilePointer",
    "PullResult",
    "PushResult",
    "TagInfo",
    "TagManifest",
    "TransferProgress",
    "Verification",
    "check_compat",
    "local_differences",
]
