"""Tag manifests: the immutable record of a bundle's files by path, its stored bytes, and those objects.

A tag is created once (a conditional create) and never rewritten; what pins it is the SHA-256 of
its stored bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.confighash import canonical_json
from tradai_release.core.errors import (
    HubError,
    HubIntegrityError,
    InputError,
    ObjectExists,
    ObjectNotFound,
    TagExists,
    TagNotFound,
)
from tradai_release.core.fsutil import read_json_object
from tradai_release.hub.compat import COMPAT_FILE
from tradai_release.hub.names import check_relpath, check_sha256, check_tag, tag_key
from tradai_release.repository.bundle_metadata import ModelMetadata, is_metadata

if TYPE_CHECKING:
    from tradai_release.stores import ObjectStore

MANIFEST_FORMAT = 1
_DAY_TAG_SUFFIXES = 1000


@dataclass(frozen=True)
class FileEntry:
    """One file of a bundle: its content hash and size."""

    sha256: str
    size: int


@dataclass(frozen=True)
class TagManifest:
    """An immutable tag: the bundle's files by relative path, plus what was known when it was made."""

    tag: str
    files: Mapping[str, FileEntry]
    metadata: Mapping[str, Any]
    git_commit: str | None
    created_at: str
    message: str
    source_tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "tag": self.tag,
            "files": {path: {"sha256": e.sha256, "size": e.size} for path, e in sorted(self.files.items())},
            "metadata": dict(self.metadata),
            "git_commit": self.git_commit,
            "created_at": self.created_at,
            "message": self.message,
            "source_tag": self.source_tag,
        }

    def to_bytes(self) -> bytes:
        """The stored form: canonical JSON, so equal manifests have equal SHA-256."""
        return canonical_json(self.to_json())

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.files.values())

    @property
    def strategies(self) -> list[str]:
        return sorted({strategy_of(path) for path in self.files if "/" in path})

    def files_of(self, strategies: Collection[str]) -> dict[str, FileEntry]:
        """The files under ``<S>/`` of each of ``strategies``, by their path in the tag."""
        chosen = set(strategies)
        return {
            path: entry for path, entry in self.files.items() if "/" in path and strategy_of(path) in chosen
        }

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str) -> TagManifest:
        """Parse and check a stored manifest; any bad field (e.g. a ``../`` path) is refused."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise InputError(where, "manifest", f"not valid JSON: {err}") from None
        if not isinstance(raw, dict):
            raise InputError(where, "manifest", "not a JSON object")
        if raw.get("format") != MANIFEST_FORMAT:
            raise InputError(where, "format", f"unsupported manifest format {raw.get('format')!r}")
        files_raw = raw.get("files")
        if not isinstance(files_raw, dict) or not files_raw:
            raise InputError(where, "files", "missing or empty")
        files: dict[str, FileEntry] = {}
        for path, entry in files_raw.items():
            check_relpath(path, where=where)
            if not isinstance(entry, dict):
                raise InputError(where, f"files.{path}", "not an object")
            size = entry.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InputError(where, f"files.{path}.size", f"not a size: {size!r}")
            files[path] = FileEntry(
                check_sha256(entry.get("sha256"), where=where, field=f"files.{path}.sha256"), size
            )
        for path in files:
            parents = path.split("/")[:-1]
            for depth in range(1, len(parents) + 1):
                if "/".join(parents[:depth]) in files:
                    raise InputError(where, "files", f"{path!r}: a parent of it is also a file")
        metadata = raw.get("metadata", {})
        if not isinstance(metadata, dict):
            raise InputError(where, "metadata", "not an object")
        source_tag = raw.get("source_tag")
        return cls(
            tag=check_tag(raw.get("tag"), where=where),  # type: ignore[arg-type]
            files=files,
            metadata=metadata,
            git_commit=_optional_str(raw.get("git_commit"), where, "git_commit"),
            created_at=str(raw.get("created_at", "")),
            message=str(raw.get("message", "")),
            source_tag=None if source_tag is None else check_tag(source_tag, where=where),
        )


@dataclass(frozen=True)
class TagInfo:
    """One line of ``--list``."""

    tag: str
    sha256: str
    created_at: str
    message: str
    git_commit: str | None
    file_count: int
    total_size: int
    strategies: tuple[str, ...]
    source_tag: str | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    latest: bool = False

    @classmethod
    def of(cls, tag: str, manifest: TagManifest, sha256: str, *, latest: bool) -> TagInfo:
        """The summary of ``manifest``, stored as ``tag`` in bytes that hash to ``sha256``."""
        return cls(
            tag=tag,
            sha256=sha256,
            created_at=manifest.created_at,
            message=manifest.message,
            git_commit=manifest.git_commit,
            file_count=len(manifest.files),
            total_size=manifest.total_size,
            strategies=tuple(manifest.strategies),
            source_tag=manifest.source_tag,
            metadata=manifest.metadata,
            latest=latest,
        )


def strategy_of(path: str) -> str:
    """The strategy a bundle path belongs to: its first segment."""
    return path.split("/", 1)[0]


def strategies_without_files(strategies: Collection[str], paths: Iterable[str]) -> list[str]:
    """Those of ``strategies`` that no path of ``paths`` belongs to, sorted."""
    return sorted(set(strategies) - {strategy_of(path) for path in paths})


def replace_strategies(
    base: TagManifest,
    strategies: Collection[str],
    files: Mapping[str, FileEntry],
    metadata: Mapping[str, Any],
) -> tuple[dict[str, FileEntry], dict[str, Any]]:
    """``base``'s files and metadata with those of ``strategies`` replaced by ``files`` and ``metadata``.

    A strategy's old files go entirely, so a file the new bundle no longer has does not linger.
    """
    chosen = set(strategies)
    kept = {path: entry for path, entry in base.files.items() if strategy_of(path) not in chosen}
    merged = {name: value for name, value in base.metadata.items() if name not in chosen}
    merged.update(metadata)
    return {**kept, **files}, merged


def load_tag_bytes(store: ObjectStore, tag: str) -> bytes:
    """The stored bytes of ``tag``'s manifest."""
    try:
        return store.get(tag_key(tag))
    except ObjectNotFound:
        raise TagNotFound(f"{store.name}: tag {tag}", "no such tag") from None


def load_tag(store: ObjectStore, tag: str, *, expected_sha256: str | None = None) -> TagManifest:
    """The manifest of ``tag``; refused when it does not hash to ``expected_sha256`` or names another tag."""
    data = load_tag_bytes(store, tag)
    actual = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and actual != expected_sha256:
        raise HubIntegrityError(
            f"{store.name}: tag {tag}", f"manifest sha256 is {actual}, expected {expected_sha256}"
        )
    manifest = TagManifest.from_bytes(data, where=f"{store.name}: {tag_key(tag)}")
    if manifest.tag != tag:
        raise HubIntegrityError(f"{store.name}: tag {tag}", f"manifest names tag {manifest.tag!r}")
    return manifest


def tag_infos(store: ObjectStore, latest: str | None) -> list[TagInfo]:
    """A summary of every tag, oldest first (by created_at, then name); ``latest`` is marked."""
    infos = []
    for info in store.list("tags/"):
        name = info.key[len("tags/") :]
        if not name.endswith(".json"):
            continue
        tag = name[: -len(".json")]
        data = load_tag_bytes(store, tag)
        manifest = TagManifest.from_bytes(data, where=f"{store.name}: {info.key}")
        infos.append(TagInfo.of(tag, manifest, hashlib.sha256(data).hexdigest(), latest=latest == tag))
    return sorted(infos, key=lambda i: (i.created_at, i.tag))


def create_tag(store: ObjectStore, manifest: TagManifest) -> str:
    """Store ``manifest`` as a new tag (refused if the tag exists); returns its SHA-256."""
    data = manifest.to_bytes()
    try:
        store.create(tag_key(manifest.tag), data)
    except ObjectExists:
        raise TagExists(f"{store.name}: tag {manifest.tag}", "already exists (tags are immutable)") from None
    return hashlib.sha256(data).hexdigest()


def day_tag(created_at: str) -> str:
    """``vYYYYMMDD`` of a ``created_at`` stamp: the name of a tag pushed without one."""
    return check_tag("v" + created_at[:10].replace("-", ""), where="created_at")


def create_day_tag(store: ObjectStore, draft: TagManifest) -> tuple[str, str]:
    """``draft`` (named by :func:`day_tag`) as a new tag, suffixed ``-N`` when that name is taken.

    Returns the name it got and its SHA-256.
    """
    base = draft.tag
    for n in range(1, _DAY_TAG_SUFFIXES):
        name = base if n == 1 else f"{base}-{n}"
        if store.head(tag_key(name)) is not None:
            continue
        try:
            return name, create_tag(store, replace(draft, tag=name))
        except TagExists:
            continue  # another pusher took it between head and create
    raise HubError(f"{store.name}: tag {base}", "no free auto-tag suffix left for that day")


def bundle_metadata(models_dir: Path, files: Iterable[str]) -> dict[str, Any]:
    """Per strategy: accuracy and metrics of each ``*metadata.json``, and the compat feature_count."""
    metadata: dict[str, dict[str, Any]] = {}
    for relpath in sorted(files):
        parts = relpath.split("/")
        if len(parts) < 2:
            continue
        strategy, name = parts[0], parts[-1]
        if not (is_metadata(name) or (len(parts) == 2 and name == COMPAT_FILE)):
            continue
        entry = metadata.setdefault(strategy, {})
        if name == COMPAT_FILE:
            compat = read_json_object(models_dir / relpath, relpath)
            if "feature_count" in compat:
                entry["feature_count"] = compat["feature_count"]
            continue
        model = ModelMetadata.read(models_dir / relpath, relpath)
        summary: dict[str, Any] = {}
        if model.accuracy is not None:
            summary["accuracy"] = model.accuracy
        if model.metrics is not None:
            summary["metrics"] = dict(model.metrics)
        entry["/".join(parts[1:-1]) or name] = summary
    return metadata


def _optional_str(value: Any, where: str, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(where, name, f"not a string: {value!r}")
