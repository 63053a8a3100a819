"""Verifying tags in place: a tag's manifest against its pinned hash, and each distinct blob once.

Nothing is written locally: a blob is checked by one HEAD (its size, and the SHA-256 checksum the
store keeps), or streamed through SHA-256 and thrown away when the store keeps no checksum.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, cast

from tradai_release.core.errors import HubError, InputError, ObjectNotFound
from tradai_release.hub.manifest import FileEntry, load_tag
from tradai_release.hub.names import blob_key
from tradai_release.hub.transfer import HashingSink, parallel_map

if TYPE_CHECKING:
    from tradai_release.stores import ObjectStore


@dataclass(frozen=True)
class Verification:
    """What verifying one tag found (``ModelHub.verify``)."""

    tag: str
    deep: bool
    blobs: int
    """Distinct blobs checked (a content used by several files counts once)."""
    by_checksum: int
    """Deep: blobs whose content the store's SHA-256 checksum vouched for (no byte read)."""
    hashed: int
    """Deep: blobs read and hashed (the store keeps no checksum of them)."""
    hashed_bytes: int
    problems: tuple[str, ...]


def verify(
    store: ObjectStore, tag: str, expected_sha256: str | None, *, deep: bool, workers: int
) -> Verification:
    """Check ``tag``'s manifest against ``expected_sha256`` and each distinct blob once, in parallel.

    Shallow: each blob exists with its size (one HEAD each). ``deep``: also its content (see
    ``check_blob``). Problems name the tag, a path and the blob.
    """
    try:
        manifest = load_tag(store, tag, expected_sha256=expected_sha256)
    except (HubError, InputError) as err:
        return Verification(tag, deep, 0, 0, 0, 0, (str(err),))
    blobs: dict[str, tuple[str, FileEntry]] = {}
    for path, entry in sorted(manifest.files.items()):
        blobs.setdefault(entry.sha256, (path, entry))

    def check(item: tuple[str, FileEntry]) -> BlobCheck:
        return check_blob(store, item[1], deep=deep)

    items = [blobs[sha] for sha in sorted(blobs)]
    checks = parallel_map(check, items, workers)
    return Verification(
        tag=tag,
        deep=deep,
        blobs=len(items),
        by_checksum=sum(1 for c in checks if c.by_checksum),
        hashed=sum(1 for c in checks if c.hashed),
        hashed_bytes=sum(c.hashed_bytes for c in checks),
        problems=tuple(
            f"tag {tag}: {path}: {c.problem}"
            for (path, _), c in zip(items, checks, strict=True)
            if c.problem
        ),
    )


@dataclass(frozen=True)
class BlobCheck:
    """What checking one blob of a store against its name found."""

    problem: str | None
    """None when the blob is there with its size (and, when deep, its content)."""
    by_checksum: bool = False
    """Deep: the store's own SHA-256 checksum answered (no byte of the blob was read)."""
    hashed: bool = False
    """Deep: the blob was read and hashed because the store keeps no checksum of it."""
    hashed_bytes: int = 0


def check_blob(store: ObjectStore, entry: FileEntry, *, deep: bool) -> BlobCheck:
    """Is ``entry``'s blob in ``store``, of its size and (``deep``) of its content?

    Deep: the SHA-256 checksum the store keeps for the object (S3 and R2 check it when the object
    is written) is compared with the blob's name, so a blob pushed with a checksum costs one HEAD;
    a blob without one (an older push, a hand upload, a multipart upload) is streamed through
    SHA-256 and thrown away. Problem texts name the blob; the caller adds the tag and path.
    """
    sha = entry.sha256
    key = blob_key(sha)
    head = store.head(key)
    if head is None:
        return BlobCheck(f"blob {sha[:12]} missing from {store.name}")
    if head.size != entry.size:
        return BlobCheck(f"blob {sha[:12]} is {head.size} bytes, manifest says {entry.size}")
    if not deep:
        return BlobCheck(None)
    if head.sha256 is not None:
        if head.sha256 != sha:
            return BlobCheck(
                f"blob {sha[:12]} in {store.name} holds other content "
                f"(the store's SHA-256 checksum is {head.sha256[:12]})",
                by_checksum=True,
            )
        return BlobCheck(None, by_checksum=True)
    with open(os.devnull, "wb") as null:
        sink = HashingSink(cast(IO[bytes], null), None)
        try:
            store.get_stream(key, cast(IO[bytes], sink))
        except ObjectNotFound:
            return BlobCheck(f"blob {sha[:12]} missing from {store.name}")
    digest = sink.digest.hexdigest()
    if sink.size != entry.size or digest != sha:
        return BlobCheck(
            f"blob {sha[:12]} in {store.name} holds other content "
            f"({sink.size} bytes hashing to {digest[:12]})",
            hashed=True,
            hashed_bytes=sink.size,
        )
    return BlobCheck(None, hashed=True, hashed_bytes=sink.size)
