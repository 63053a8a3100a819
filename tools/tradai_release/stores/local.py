"""Object store on a local directory: the embedded default for model binaries and config objects."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from tradai_release.core.errors import BackendError, InputError, ObjectExists, ObjectNotFound
from tradai_release.stores import ObjectInfo, check_key

_CHUNK = 1 << 20
DEFAULT_PART_SIZE = 64 * 1024 * 1024
_STAGING = ".staging"
"""Directory under the root where writes are prepared; never listed, never a valid key segment."""


class LocalObjectStore:
    """Objects are files under ``root``; every write is staged and then renamed or linked into place.

    Readers therefore see an object whole or not at all, and ``create`` is atomic across
    processes: it hard-links the staged file, which fails when the target exists.
    """

    def __init__(self, root: Path, *, part_size: int = DEFAULT_PART_SIZE) -> None:
        self.root = Path(root).expanduser().resolve()
        self.name = f"file://{self.root}"
        self.part_size = part_size

    # --- reads -------------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
            raise ObjectNotFound(self.name, key) from err

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            if path.is_file():
                return ObjectInfo(key, path.stat().st_size)
        except OSError:
            return None
        return None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.is_dir() or prefix.split("/", 1)[0] == _STAGING:
            return iter(())
        found: list[ObjectInfo] = []
        # Walk only below the deepest directory the prefix names (a blob listing skips tags/).
        base = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        for directory, subdirs, files in os.walk(base):
            rel_dir = Path(directory).relative_to(self.root).as_posix()
            if rel_dir == ".":
                subdirs[:] = [d for d in subdirs if d != _STAGING]
                rel_dir = ""
            for filename in files:
                key = f"{rel_dir}/{filename}" if rel_dir else filename
                if key.startswith(prefix):
                    try:
                        found.append(ObjectInfo(key, (Path(directory) / filename).stat().st_size))
                    except FileNotFoundError:  # deleted while listing
                        continue
        return iter(sorted(found, key=lambda info: info.key))

    def get_stream(self, key: str, sink: IO[bytes]) -> None:
        try:
            with self._path(key).open("rb") as handle:
                shutil.copyfileobj(handle, sink, _CHUNK)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
            raise ObjectNotFound(self.name, key) from err

    def get_range(self, key: str, start: int, length: int, sink: IO[bytes]) -> int:
        if start < 0 or length < 1:
            raise ValueError(f"bad range: start {start}, length {length}")
        try:
            with self._path(key).open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(start)
                remaining = max(0, min(length, size - start))
                while remaining > 0 and (chunk := handle.read(min(_CHUNK, remaining))):
                    sink.write(chunk)
                    remaining -= len(chunk)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
            raise ObjectNotFound(self.name, key) from err
        return size

    # --- writes ------------------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        target = self._path(key)
        staged = self._stage(lambda handle: handle.write(data))
        self._replace(staged, target)

    def put_file(self, key: str, path: Path, *, sha256: str | None = None) -> None:
        target = self._path(key)
        digest = hashlib.sha256()

        def copy(handle: IO[bytes]) -> None:
            with Path(path).open("rb") as source:
                if sha256 is None:
                    shutil.copyfileobj(source, handle, _CHUNK)
                    return
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)

        staged = self._stage(copy)
        if sha256 is not None and digest.hexdigest() != sha256:
            staged.unlink(missing_ok=True)
            raise BackendError(
                self.name, f"{key}: refused: {path} hashes to {digest.hexdigest()[:12]}, not {sha256[:12]}"
            )
        self._replace(staged, target)

    def create(self, key: str, data: bytes) -> None:
        target = self._path(key)
        staged = self._stage(lambda handle: handle.write(data))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(staged, target)
        except FileExistsError as err:
            raise ObjectExists(self.name, key) from err
        except OSError as err:
            raise BackendError(self.name, f"{key}: {err.strerror or err}") from err
        finally:
            staged.unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as err:
            raise BackendError(self.name, f"{key}: {err.strerror or err}") from err
        self._prune(path.parent)

    # --- helpers -----------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        check_key(self.name, key)
        if key.split("/", 1)[0] == _STAGING:
            raise InputError(self.name, "key", f"{key!r}: {_STAGING} is reserved")
        return self.root.joinpath(*key.split("/"))

    def _stage(self, write: Callable[[IO[bytes]], object]) -> Path:
        """Write into a fresh file under the staging directory (same filesystem as the target)."""
        staging = self.root / _STAGING
        try:
            staging.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"{uuid.uuid4().hex}-", dir=staging)
        except OSError as err:
            raise BackendError(self.name, f"cannot write: {err.strerror or err}") from err
        staged = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        return staged

    def _replace(self, staged: Path, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        except OSError as err:
            staged.unlink(missing_ok=True)
            raise BackendError(self.name, f"{target}: {err.strerror or err}") from err

    def _prune(self, directory: Path) -> None:
        """Remove directories a delete left empty, up to (not including) the root."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent
