"""Moving bundle bytes: hashing files, uploading what a store lacks, downloads verified while streaming.

Requests do not grow with the number of files where a listing can replace them: a push learns
which blobs exist from one listing of ``blobs/sha256/`` (1,000 keys a request), not a HEAD per
file. Each file is hashed and then uploaded by one worker, so hashing overlaps the other files'
uploads. A blob larger than the store's part size is pulled as parallel ranged reads written at
their offsets, hashed in order as the written bytes become contiguous.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar, cast

from tradai_release.errors import HubIntegrityError, InputError, ObjectNotFound
from tradai_release.fsutil import file_sha256
from tradai_release.hub.manifest import FileEntry, strategy_of
from tradai_release.hub.names import blob_key, check_relpath

if TYPE_CHECKING:
    from tradai_release.stores import ObjectStore

DEFAULT_WORKERS = 4
PARTS_PER_WORKER = 2
"""A pull holding parts of large blobs runs this many jobs per worker at once: a ranged GET waits
on the network, not the CPU (boto3's transfer manager likewise runs several parts of each file)."""
_CHUNK = 1024 * 1024
BLOB_PREFIX = "blobs/sha256/"
KEYS_PER_LISTING = 1000
"""Keys one listing request returns (S3's page): listing this many costs what one HEAD costs."""
_T = TypeVar("_T")
_R = TypeVar("_R")


class TransferProgress(Protocol):
    """What push and pull report while moving bytes (the CLI shows it as a progress bar)."""

    def start(self, description: str, total_bytes: int) -> None:
        """A transfer of ``total_bytes`` begins."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more were moved (called from worker threads)."""


def parallel_map(func: Callable[[_T], _R], items: Sequence[_T], workers: int) -> list[_R]:
    """``func`` over ``items`` in order, at most ``workers`` at a time (store calls wait on the network)."""
    if len(items) <= 1 or workers <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(func, items))


def bundle_files(models_dir: Path) -> dict[str, Path]:
    """Every regular file under ``models_dir`` by its relative POSIX path (symlinks refused)."""
    if not models_dir.is_dir():
        raise InputError(str(models_dir), "models_dir", "not a directory")
    files: dict[str, Path] = {}
    for path in sorted(models_dir.rglob("*")):
        relpath = path.relative_to(models_dir).as_posix()
        if path.is_symlink():
            raise InputError(str(models_dir), "files", f"{relpath}: symbolic links are not bundled")
        if path.is_file():
            files[check_relpath(relpath, where=str(models_dir))] = path
    if not files:
        raise InputError(str(models_dir), "files", "no model files to push")
    return files


def file_entries(paths: Mapping[str, Path], workers: int) -> dict[str, FileEntry]:
    """The manifest entry (content hash and size) of each file of ``paths``."""
    hashes = parallel_map(file_sha256, list(paths.values()), workers)
    return {
        rel: FileEntry(sha, path.stat().st_size)
        for (rel, path), sha in zip(paths.items(), hashes, strict=True)
    }


def _has_content(path: Path, entry: FileEntry) -> bool:
    """``path`` is a regular file holding exactly ``entry``'s content."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size != entry.size:
            return False
    except OSError:
        return False
    return file_sha256(path) == entry.sha256


def local_differences(
    root: Path, files: Mapping[str, FileEntry], strategies: Collection[str], *, workers: int = DEFAULT_WORKERS
) -> list[str]:
    """The paths under ``root/<S>/`` (each S of ``strategies``) that are not what ``files`` records.

    A file differs when it is missing, is not a regular file, or holds other content (compared by
    SHA-256, not by presence or size); a local file of ``S`` that ``files`` does not list differs
    too (a pull of ``S`` would drop it). Sorted; empty when the local files are exactly the tag's.
    """
    chosen = set(strategies)
    wanted = sorted((rel, entry) for rel, entry in files.items() if strategy_of(rel) in chosen)
    same = parallel_map(lambda item: _has_content(root / item[0], item[1]), wanted, workers)
    differing = [rel for (rel, _), ok in zip(wanted, same, strict=True) if not ok]
    listed = {rel for rel, _ in wanted}
    for strategy in sorted(chosen):
        base = root / strategy
        if not base.is_dir() or base.is_symlink():
            continue
        for path in base.rglob("*"):
            relpath = path.relative_to(root).as_posix()
            if (path.is_symlink() or not path.is_dir()) and relpath not in listed:
                differing.append(relpath)
    return sorted(set(differing))


def _hash_file(path: Path) -> FileEntry:
    """The manifest entry of ``path`` from the bytes actually hashed (no separate stat to race with)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
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
        (reused if _has_content(current / rel, entry) else to_fetch).append(rel)

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
        sink = _HashingSink(handle, progress)
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
            chunk = os.pread(self.fd, min(_CHUNK, end - self.hashed), self.hashed)
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


class _HashingSink(io.RawIOBase):
    """A write-only stream that hashes, counts and reports what passes through to a file."""

    def __init__(self, handle: IO[bytes], progress: TransferProgress | None) -> None:
        super().__init__()
        self.handle = handle
        self.progress = progress
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.handle.write(view)
        self.size += view.nbytes
        if self.progress is not None:
            self.progress.advance(view.nbytes)
        return view.nbytes


# ---------------------------------------------------------------- verifying blobs in place (no local file)


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
        sink = _HashingSink(cast(IO[bytes], null), None)
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
