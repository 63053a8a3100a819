"""Pull's bytes: a tag's files staged from local copies or from the store, every byte verified.

Every download is hashed while it streams and refused unless it is the content its blob's name
says. A blob larger than the store's part size is pulled as parallel ranged reads written at
their offsets, hashed in order as the written bytes become contiguous.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from tradai_release.core.errors import HubIntegrityError, ObjectNotFound
from tradai_release.hub.manifest import FileEntry
from tradai_release.hub.names import blob_key
from tradai_release.hub.transfer import CHUNK, HashingSink, TransferProgress, has_content, parallel_map

if TYPE_CHECKING:
    from tradai_release.stores import ObjectStore

PARTS_PER_WORKER = 2
"""A pull holding parts of large blobs runs this many jobs per worker at once: a ranged GET waits
on the network, not the CPU (boto3's transfer manager likewise runs several parts of each file)."""


@dataclass(frozen=True)
class Staged:
    """What filling a staging directory took."""

    downloaded_bytes: int
    downloaded_files: int
    reused_files: int


def stage_files(
    store: ObjectStore,
    files: Mapping[str, FileEntry],
    *,
    current: Path,
    staging: Path,
    workers: int,
    progress: TransferProgress | None,
    description: str,
    where: str,
) -> Staged:
    """Fill ``staging`` with ``files``: copied from ``current`` where it holds that content, else downloaded.

    Every download is verified while it streams. ``description`` names the transfer for
    ``progress``; ``where`` (the tag) prefixes the file's path in errors.
    """
    reused: list[str] = []
    to_fetch: list[str] = []
    for rel, entry in sorted(files.items()):
        (reused if has_content(current / rel, entry) else to_fetch).append(rel)

    def target(rel: str) -> Path:
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    for rel in reused:
        shutil.copyfile(current / rel, target(rel))
    if progress is not None:
        progress.start(description, sum(files[rel].size for rel in to_fetch))

    # One flat list of jobs (a small blob, or one part of a large one), so parts of one blob and
    # other blobs share the workers and no job waits on another.
    ranged: list[_RangedDownload] = []
    jobs: list[Callable[[], None]] = []
    for rel in to_fetch:
        entry, label = files[rel], f"{where}: {rel}"
        if entry.size > store.part_size:
            download = _RangedDownload(store, entry, target(rel), where=label, progress=progress)
            ranged.append(download)
            jobs.extend(download.jobs())
        else:
            jobs.append(
                partial(_download_verified, store, entry, target(rel), where=label, progress=progress)
            )
    try:
        parallel_map(lambda job: job(), jobs, workers * PARTS_PER_WORKER if ranged else workers)
        for download in ranged:
            download.finish()
    finally:
        for download in ranged:
            download.close()
    downloaded = sum(files[rel].size for rel in to_fetch)
    return Staged(downloaded_bytes=downloaded, downloaded_files=len(to_fetch), reused_files=len(reused))


def _download_verified(
    store: ObjectStore, entry: FileEntry, target: Path, *, where: str, progress: TransferProgress | None
) -> None:
    """Stream ``entry``'s blob into ``target``, hashing on the way; refused unless it is that content."""
    with target.open("wb") as handle:
        sink = HashingSink(handle, progress)
        store.get_stream(blob_key(entry.sha256), cast(IO[bytes], sink))
    _check_content(entry, sink.size, sink.digest.hexdigest(), where=where)


def read_verified(store: ObjectStore, entry: FileEntry, *, where: str) -> bytes:
    """``entry``'s blob, read whole (for small files), refused unless it is that content."""
    try:
        data = store.get(blob_key(entry.sha256))
    except ObjectNotFound:
        raise HubIntegrityError(where, f"blob {entry.sha256[:12]} missing") from None
    _check_content(entry, len(data), hashlib.sha256(data).hexdigest(), where=where)
    return data


def _check_content(entry: FileEntry, size: int, sha256: str, *, where: str) -> None:
    """Refuse bytes of ``size`` hashing to ``sha256`` unless they are ``entry``'s content."""
    if size != entry.size:
        raise HubIntegrityError(
            where, f"blob {entry.sha256[:12]} is {size} bytes, manifest says {entry.size}"
        )
    if sha256 != entry.sha256:
        raise HubIntegrityError(
            where, f"blob content hashes to {sha256[:12]}, manifest says {entry.sha256[:12]}"
        )


class _RangedDownload:
    """One large blob fetched as parallel ranged parts, each written at its offset.

    SHA-256 consumes the bytes in order as they become contiguous: whichever worker extends the
    contiguous prefix hashes it (from memory when its chunk is next in line, else read back
    from the file, where it was just written), so hashing runs alongside the other parts'
    downloads instead of after them. The blob is accepted only when every part arrived whole,
    the store reported the manifest's size, and the digest is the blob's name.
    """

    def __init__(
        self,
        store: ObjectStore,
        entry: FileEntry,
        target: Path,
        *,
        where: str,
        progress: TransferProgress | None,
    ) -> None:
        self.store = store
        self.entry = entry
        self.where = where
        self.progress = progress
        self.parts = [
            (start, min(store.part_size, entry.size - start))
            for start in range(0, entry.size, store.part_size)
        ]
        self.written = [0] * len(self.parts)
        self.digest = hashlib.sha256()
        self.hashed = 0
        self._state = threading.Lock()
        self._hashing = threading.Lock()
        self.target = target
        self.pending = len(self.parts)
        self.fd: int | None = None  # opened by the first part to start, closed after the last one

    def jobs(self) -> list[Callable[[], None]]:
        return [partial(self._fetch, index) for index in range(len(self.parts))]

    def _fetch(self, index: int) -> None:
        start, length = self.parts[index]
        with self._state:
            if self.fd is None and self.pending:
                self.fd = os.open(self.target, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        size = self.store.get_range(
            blob_key(self.entry.sha256), start, length, cast(IO[bytes], _PartSink(self, index))
        )
        if size != self.entry.size:
            raise HubIntegrityError(
                self.where, f"blob {self.entry.sha256[:12]} is {size} bytes, manifest says {self.entry.size}"
            )
        if self.written[index] != length:
            raise HubIntegrityError(self.where, f"blob {self.entry.sha256[:12]} ended early (bytes {start}+)")
        with self._state:
            self.pending -= 1
            last = self.pending == 0
        if last:  # hash whatever no writer got to, and free the descriptor before other blobs open theirs
            with self._hashing:
                self._hash_from_file(self._contiguous())
            self.close()

    def write_at(self, index: int, data: memoryview) -> None:
        """A part's next chunk arrived: write it at its offset, then hash what became contiguous."""
        assert self.fd is not None
        start, length = self.parts[index]
        offset = start + self.written[index]  # only this part's worker moves written[index]
        if self.written[index] + data.nbytes > length:
            raise HubIntegrityError(
                self.where, f"blob {self.entry.sha256[:12]}: the store sent more than asked"
            )
        done = 0
        while done < data.nbytes:
            done += os.pwrite(self.fd, data[done:], offset + done)
        with self._state:
            self.written[index] += data.nbytes
        if self.progress is not None:
            self.progress.advance(data.nbytes)
        self._catch_up(offset, data)

    def _contiguous(self) -> int:
        """End of the prefix of the blob that is written without gaps."""
        with self._state:
            for (start, length), written in zip(self.parts, self.written, strict=True):
                if written < length:
                    return start + written
            return self.entry.size

    def _catch_up(self, offset: int, data: memoryview) -> None:
        # A worker that finds the hash busy leaves its bytes to the holder, which looks again
        # after releasing; so no contiguous byte is left unhashed and no worker waits.
        while self._hashing.acquire(blocking=False):
            try:
                end = self._contiguous()
                if offset == self.hashed and offset + data.nbytes <= end:
                    self.digest.update(data)
                    self.hashed += data.nbytes
                self._hash_from_file(end)
            finally:
                self._hashing.release()
            if self._contiguous() <= self.hashed:
                return

    def _hash_from_file(self, end: int) -> None:
        assert self.fd is not None
        while self.hashed < end:
            chunk = os.pread(self.fd, min(CHUNK, end - self.hashed), self.hashed)
            if not chunk:
                break
            self.digest.update(chunk)
            self.hashed += len(chunk)

    def finish(self) -> None:
        """Refuse the blob unless every byte arrived and hashes to its name (after every part ran)."""
        _check_content(self.entry, self.hashed, self.digest.hexdigest(), where=self.where)

    def close(self) -> None:
        with self._state:
            fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


class _PartSink(io.RawIOBase):
    """The sink of one ranged part: hands each chunk to the download with the part's index."""

    def __init__(self, download: _RangedDownload, index: int) -> None:
        super().__init__()
        self.download = download
        self.index = index

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.download.write_at(self.index, view)
        return view.nbytes
