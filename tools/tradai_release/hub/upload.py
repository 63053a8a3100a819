"""Push's bytes: hash a bundle's files and upload each content the store lacks, once.

A push learns which blobs exist from one listing of ``blobs/sha256/`` (1,000 keys a request), not
a HEAD per file. Each file is hashed and then uploaded by one worker, so hashing overlaps the
other files' uploads.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.hub.manifest import FileEntry
from tradai_release.hub.names import blob_key
from tradai_release.hub.transfer import CHUNK, TransferProgress, parallel_map

if TYPE_CHECKING:
    from tradai_release.stores import ObjectStore

BLOB_PREFIX = "blobs/sha256/"
KEYS_PER_LISTING = 1000
"""Keys one listing request returns (S3's page): listing this many costs what one HEAD costs."""


def _hash_file(path: Path) -> FileEntry:
    """The manifest entry of ``path`` from the bytes actually hashed (no separate stat to race with)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(digest.hexdigest(), size)


class _StoredBlobs:
    """Which blobs a store holds (with their sizes), learned from a listing of ``blobs/sha256/``.

    The listing stops after one key per HEAD the push could otherwise make (``limit``), so a
    small push into a huge hub costs no more than heading its files: blobs past the last
    listed key are then headed one by one.
    """

    def __init__(self, store: ObjectStore, limit: int) -> None:
        self.store = store
        self.sizes: dict[str, int] = {}
        self.complete = True
        self.last = ""
        for info in store.list(BLOB_PREFIX):
            if len(self.sizes) >= limit:
                self.complete = False
                break
            sha = info.key[len(BLOB_PREFIX) :]
            self.sizes[sha] = info.size
            self.last = sha

    def holds(self, entry: FileEntry) -> bool:
        """The store holds ``entry``'s content at its size (a blob of another size counts as absent)."""
        if self.complete or entry.sha256 <= self.last:
            return self.sizes.get(entry.sha256) == entry.size
        head = self.store.head(blob_key(entry.sha256))
        return head is not None and head.size == entry.size


@dataclass(frozen=True)
class Uploaded:
    """What a push moved: every file's manifest entry, and the distinct contents uploaded."""

    entries: dict[str, FileEntry]
    uploaded: list[FileEntry]


def upload_missing(
    store: ObjectStore,
    paths: Mapping[str, Path],
    *,
    workers: int,
    progress: TransferProgress | None,
) -> Uploaded:
    """Hash every file of ``paths`` and upload each distinct content ``store`` lacks, with its SHA-256.

    The listing of stored blobs runs while the first files hash; each worker then hashes one
    file and uploads it if needed, so hashing overlaps other files' uploads. Largest files go
    first (they bound the wall time). An unchanged re-push makes only the listing requests.
    """
    if progress is not None:
        progress.start("push", sum(path.stat().st_size for path in paths.values()))
    limit = KEYS_PER_LISTING * max(1, len(paths))
    with ThreadPoolExecutor(max_workers=1) as lister:
        stored = lister.submit(_StoredBlobs, store, limit)
        claimed: set[str] = set()
        claim_lock = threading.Lock()

        def push_one(rel: str) -> tuple[FileEntry, bool]:
            entry = _hash_file(paths[rel])
            with claim_lock:
                first = entry.sha256 not in claimed
                claimed.add(entry.sha256)
            upload = first and not stored.result().holds(entry)
            if upload:
                store.put_file(blob_key(entry.sha256), paths[rel], sha256=entry.sha256)
            if progress is not None:
                progress.advance(entry.size)
            return entry, upload

        order = sorted(paths, key=lambda rel: (-paths[rel].stat().st_size, rel))
        results = dict(zip(order, parallel_map(push_one, order, workers), strict=True))
    return Uploaded(
        entries={rel: results[rel][0] for rel in paths},
        uploaded=[entry for entry, upload in results.values() if upload],
    )
