"""The content-addressed model hub: push, pull, tags and pointers (docs/architecture.md §6)."""

from __future__ import annotations

from tradai_release.hub.compat import check_compat
from tradai_release.hub.hub import ModelHub
from tradai_release.hub.manifest import FileEntry, TagInfo, TagManifest
from tradai_release.hub.pointers import Pinned, Pointer, ProfilePointer
from tradai_release.hub.pull import PullResult
from tradai_release.hub.tagging import PushResult
from tradai_release.hub.transfer import TransferProgress, local_differences
from tradai_release.hub.verification import Verification

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
