"""Bundle bytes as push and pull both see them: a models dir's files, their hashes, store calls in parallel.

Requests do not grow with the number of files where a listing can replace them (``upload``), and a
large blob is pulled as parallel ranged reads (``download``); both report to a ``TransferProgress``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from tradai_release.core.errors import InputError
from tradai_release.core.fsutil import file_sha256
from tradai_release.hub.manifest import FileEntry, strategy_of
from tradai_release.hub.names import check_relpath

DEFAULT_WORKERS = 4
CHUNK = 1024 * 1024
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


def has_content(path: Path, entry: FileEntry) -> bool:
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
    same = parallel_map(lambda item: has_content(root / item[0], item[1]), wanted, workers)
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


class HashingSink(io.RawIOBase):
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
