"""Moving bundle bytes: hashing files, uploading what a store lacks, downloads verified while streaming."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar, cast

from tradai_release.errors import HubIntegrityError, InputError, ObjectNotFound
from tradai_release.hub.manifest import FileEntry, strategy_of
from tradai_release.hub.names import blob_key, check_relpath

if TYPE_CHECKING:
    from tradai_release.stores import ObjectStore

DEFAULT_WORKERS = 4
_CHUNK = 1024 * 1024
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


def file_sha256(path: Path) -> str:
    """Streaming SHA-256 of a file (never read whole into memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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


def upload_missing(
    store: ObjectStore,
    paths: Mapping[str, Path],
    entries: Mapping[str, FileEntry],
    *,
    workers: int,
    progress: TransferProgress | None,
) -> list[FileEntry]:
    """Upload each distinct content of ``entries`` that ``store`` lacks; returns the entries uploaded.

    One upload per distinct content, and a head first, so an unchanged file costs one request.
    """
    unique: dict[str, str] = {}
    for rel, entry in entries.items():
        unique.setdefault(entry.sha256, rel)
    candidates = list(unique.values())

    def absent(rel: str) -> bool:
        head = store.head(blob_key(entries[rel].sha256))
        return head is None or head.size != entries[rel].size

    lacking = parallel_map(absent, candidates, workers)
    todo = [rel for rel, lacks in zip(candidates, lacking, strict=True) if lacks]
    if progress is not None:
        progress.start("push", sum(entries[rel].size for rel in todo))

    def upload(rel: str) -> FileEntry:
        entry = entries[rel]
        store.put_file(blob_key(entry.sha256), paths[rel])
        if progress is not None:
            progress.advance(entry.size)
        return entry

    return parallel_map(upload, todo, workers)


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

    def fetch(rel: str) -> int:
        _download_verified(store, files[rel], target(rel), where=f"{where}: {rel}", progress=progress)
        return files[rel].size

    downloaded = sum(parallel_map(fetch, to_fetch, workers))
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
