"""The content-addressed model hub (§6): blobs by SHA-256, immutable tag manifests, small pointers.

Layout in the object store::

    blobs/sha256/<hex>                  one object per distinct file content
    tags/<tag>.json                     immutable manifest (canonical JSON, created conditionally)
    pointers/latest.json                {tag, sha256, updated_at}
    pointers/<env>/profile-<N>.json     {tag, sha256, updated_at, deployment_id} (written by apply)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar, cast

from tradai_release.confighash import canonical_json
from tradai_release.errors import (
    HubError,
    HubIntegrityError,
    InputError,
    ModelCompatError,
    ObjectExists,
    ObjectNotFound,
    SettingsError,
    TagExists,
    TagNotFound,
)
from tradai_release.fsutil import swap_into_place
from tradai_release.hub.names import ENV_PATTERN, check_relpath, check_sha256, check_tag

if TYPE_CHECKING:
    from tradai_release.settings import Settings
    from tradai_release.stores import ObjectStore

MANIFEST_FORMAT = 1
COMPAT_FILE = "model_compat.json"
_CHUNK = 1024 * 1024
_WORKERS = 4
_T = TypeVar("_T")
_R = TypeVar("_R")


class TransferProgress(Protocol):
    """What push and pull report while moving bytes (the CLI shows it as a progress bar)."""

    def start(self, description: str, total_bytes: int) -> None:
        """A transfer of ``total_bytes`` begins."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more were moved (called from worker threads)."""


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
        return sorted({path.split("/", 1)[0] for path in self.files if "/" in path})

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


@dataclass(frozen=True)
class PushResult:
    tag: str
    manifest_sha256: str
    uploaded_bytes: int
    uploaded_files: int
    skipped_files: int


@dataclass(frozen=True)
class PullResult:
    tag: str
    manifest_sha256: str
    dest: Path
    downloaded_bytes: int
    downloaded_files: int
    reused_files: int


@dataclass(frozen=True)
class Pointer:
    """``pointers/latest.json``: the most recent push."""

    tag: str
    sha256: str
    updated_at: str


@dataclass(frozen=True)
class ProfilePointer:
    """``pointers/<env>/profile-<N>.json``: the revision apply approved for one profile."""

    env: str
    profile: int
    tag: str
    sha256: str
    updated_at: str
    deployment_id: str | None


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def blob_key(sha256: str) -> str:
    return f"blobs/sha256/{check_sha256(sha256, where='blob')}"


def tag_key(tag: str) -> str:
    return f"tags/{check_tag(tag)}.json"


def profile_pointer_key(env: str, profile: int) -> str:
    """``pointers/<env>/profile-<N>.json``: the revision apply approved for one profile.

    Which environments and profiles exist is the repository's to declare and the commands'
    to check; here an environment only has to be a safe key segment and a profile a positive number.
    """
    if not isinstance(env, str) or not ENV_PATTERN.fullmatch(env):
        raise InputError(
            "--env", "env", f"unknown environment {env!r} (lowercase letters, digits, '_', '-'; at most 32)"
        )
    if not isinstance(profile, int) or isinstance(profile, bool) or profile < 1:
        raise InputError("--profile", "profile", f"unknown profile {profile!r} (expected a positive number)")
    return f"pointers/{env}/profile-{profile}.json"


LATEST_KEY = "pointers/latest.json"


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


def bundle_metadata(models_dir: Path, files: Iterable[str]) -> dict[str, Any]:
    """Per strategy: accuracy and metrics of each ``*metadata.json``, and the compat feature_count."""
    metadata: dict[str, dict[str, Any]] = {}
    for relpath in sorted(files):
        parts = relpath.split("/")
        if len(parts) < 2:
            continue
        strategy, name = parts[0], parts[-1]
        if not (name.endswith("metadata.json") or (len(parts) == 2 and name == COMPAT_FILE)):
            continue
        data = _read_json_object(models_dir / relpath, relpath)
        entry = metadata.setdefault(strategy, {})
        if name == COMPAT_FILE:
            if "feature_count" in data:
                entry["feature_count"] = data["feature_count"]
            continue
        model = "/".join(parts[1:-1]) or name
        summary: dict[str, Any] = {}
        if _is_number(data.get("accuracy")):
            summary["accuracy"] = data["accuracy"]
        metrics = data.get("metrics")
        if isinstance(metrics, dict):
            summary["metrics"] = {k: v for k, v in sorted(metrics.items()) if _is_number(v)}
        entry[model] = summary
    return metadata


class ModelHub:
    """The model hub over any ObjectStore (a local directory or an S3-API bucket such as R2)."""

    def __init__(self, store: ObjectStore, *, workers: int = _WORKERS) -> None:
        self.store = store
        self.workers = workers

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelHub:
        """The hub at ``settings.hub_uri``; an ``s3://`` hub needs the CF_R2_* credentials."""
        from tradai_release.stores import open_object_store

        try:
            uri = settings.hub_uri.format(state_dir=settings.state_dir.as_posix())
        except (KeyError, IndexError, ValueError) as err:
            raise SettingsError("hub_uri", f"bad template {settings.hub_uri!r}: {err}") from None
        return cls(open_object_store(uri, settings.hub_aws()))

    def _where(self, what: str) -> str:
        return f"{self.store.name}: {what}"

    # ---------------------------------------------------------------- tags

    def tag_exists(self, tag: str) -> bool:
        return self.store.head(tag_key(tag)) is not None

    def _read_tag_bytes(self, tag: str) -> bytes:
        try:
            return self.store.get(tag_key(tag))
        except ObjectNotFound:
            raise TagNotFound(self._where(f"tag {tag}"), "no such tag") from None

    def tag_sha256(self, tag: str) -> str:
        """SHA-256 of the stored manifest bytes of ``tag`` (what release manifests pin)."""
        return hashlib.sha256(self._read_tag_bytes(tag)).hexdigest()

    def read_tag(self, tag: str, *, expected_sha256: str | None = None) -> TagManifest:
        """The manifest of ``tag``; refused when it does not hash to ``expected_sha256``."""
        data = self._read_tag_bytes(tag)
        actual = hashlib.sha256(data).hexdigest()
        if expected_sha256 is not None and actual != expected_sha256:
            raise HubIntegrityError(
                self._where(f"tag {tag}"), f"manifest sha256 is {actual}, expected {expected_sha256}"
            )
        manifest = TagManifest.from_bytes(data, where=self._where(tag_key(tag)))
        if manifest.tag != tag:
            raise HubIntegrityError(self._where(f"tag {tag}"), f"manifest names tag {manifest.tag!r}")
        return manifest

    def list_tags(self) -> list[TagInfo]:
        """Every tag, oldest first (by created_at, then name)."""
        latest = self.get_latest()
        infos = []
        for info in self.store.list("tags/"):
            name = info.key[len("tags/") :]
            if not name.endswith(".json"):
                continue
            tag = name[: -len(".json")]
            data = self._read_tag_bytes(tag)
            manifest = TagManifest.from_bytes(data, where=self._where(info.key))
            infos.append(
                TagInfo(
                    tag=tag,
                    sha256=hashlib.sha256(data).hexdigest(),
                    created_at=manifest.created_at,
                    message=manifest.message,
                    git_commit=manifest.git_commit,
                    file_count=len(manifest.files),
                    total_size=manifest.total_size,
                    strategies=tuple(manifest.strategies),
                    source_tag=manifest.source_tag,
                    metadata=manifest.metadata,
                    latest=latest is not None and latest.tag == tag,
                )
            )
        return sorted(infos, key=lambda i: (i.created_at, i.tag))

    def verify_tag(self, tag: str, expected_sha256: str | None) -> list[str]:
        """Problems with ``tag`` (missing, wrong manifest hash, a blob missing or of the wrong size)."""
        try:
            manifest = self.read_tag(tag, expected_sha256=expected_sha256)
        except (HubError, InputError) as err:
            return [str(err)]
        problems = []
        blobs = {entry.sha256: (path, entry.size) for path, entry in manifest.files.items()}

        def check(item: tuple[str, tuple[str, int]]) -> str | None:
            sha, (path, size) = item
            head = self.store.head(blob_key(sha))
            if head is None:
                return f"tag {tag}: {path}: blob {sha[:12]} missing from {self.store.name}"
            if head.size != size:
                return f"tag {tag}: {path}: blob {sha[:12]} is {head.size} bytes, manifest says {size}"
            return None

        for problem in self._map(check, sorted(blobs.items())):
            if problem:
                problems.append(problem)
        return problems

    def _create_tag(self, manifest: TagManifest) -> str:
        data = manifest.to_bytes()
        try:
            self.store.create(tag_key(manifest.tag), data)
        except ObjectExists:
            raise TagExists(
                self._where(f"tag {manifest.tag}"), "already exists (tags are immutable)"
            ) from None
        return hashlib.sha256(data).hexdigest()

    # ---------------------------------------------------------------- push

    def push(
        self,
        models_dir: Path,
        *,
        tag: str | None = None,
        message: str = "",
        git_commit: str | None = None,
        created_at: str | None = None,
        progress: TransferProgress | None = None,
    ) -> PushResult:
        """Upload the blobs the hub lacks, create the tag (auto ``vYYYYMMDD[-N]``), move ``latest``."""
        if tag is not None:
            check_tag(tag, where="--tag")
            if self.tag_exists(tag):
                raise TagExists(self._where(f"tag {tag}"), "already exists (tags are immutable)")
        created = created_at or utc_now()
        paths = bundle_files(models_dir)
        hashes = dict(zip(paths, self._map(file_sha256, list(paths.values())), strict=True))
        entries = {rel: FileEntry(hashes[rel], paths[rel].stat().st_size) for rel in paths}
        metadata = bundle_metadata(models_dir, paths)

        # One upload per distinct content; head first so an unchanged file costs one request.
        unique: dict[str, str] = {}
        for rel, entry in entries.items():
            unique.setdefault(entry.sha256, rel)

        def missing(item: tuple[str, str]) -> bool:
            sha, rel = item
            head = self.store.head(blob_key(sha))
            return head is None or head.size != entries[rel].size

        todo = [
            item
            for item, absent in zip(unique.items(), self._map(missing, list(unique.items())), strict=True)
            if absent
        ]
        if progress is not None:
            progress.start("push", sum(entries[rel].size for _, rel in todo))

        def upload(item: tuple[str, str]) -> int:
            sha, rel = item
            self.store.put_file(blob_key(sha), paths[rel])
            if progress is not None:
                progress.advance(entries[rel].size)
            return entries[rel].size

        uploaded_bytes = sum(self._map(upload, todo))

        def manifest_for(name: str) -> TagManifest:
            return TagManifest(
                tag=name,
                files=entries,
                metadata=metadata,
                git_commit=git_commit,
                created_at=created,
                message=message,
            )

        if tag is not None:
            sha = self._create_tag(manifest_for(tag))
            final = tag
        else:
            final, sha = self._create_auto_tag(created, manifest_for)
        self.set_latest(final, sha)
        return PushResult(
            tag=final,
            manifest_sha256=sha,
            uploaded_bytes=uploaded_bytes,
            uploaded_files=len(todo),
            skipped_files=len(entries) - len(todo),
        )

    def _create_auto_tag(
        self, created_at: str, manifest_for: Callable[[str], TagManifest]
    ) -> tuple[str, str]:
        base = "v" + created_at[:10].replace("-", "")
        check_tag(base, where="created_at")
        for n in range(1, 1000):
            name = base if n == 1 else f"{base}-{n}"
            if self.tag_exists(name):
                continue
            try:
                return name, self._create_tag(manifest_for(name))
            except TagExists:
                continue  # another pusher took it between head and create
        raise HubError(self._where(f"tag {base}"), "no free auto-tag suffix left for that day")

    def tag_only(
        self, name: str, *, source: str = "latest", message: str = "", created_at: str | None = None
    ) -> str:
        """A new tag with ``source``'s files (no upload); returns its manifest sha256."""
        check_tag(name, where="--tag-only")
        source_tag = self.resolve_latest().tag if source == "latest" else check_tag(source, where="--from")
        origin = self.read_tag(source_tag)
        manifest = TagManifest(
            tag=name,
            files=origin.files,
            metadata=origin.metadata,
            git_commit=origin.git_commit,
            created_at=created_at or utc_now(),
            message=message,
            source_tag=source_tag,
        )
        return self._create_tag(manifest)

    def compose(
        self,
        models_dir: Path,
        strategies: Sequence[str],
        *,
        source: str,
        source_sha256: str | None = None,
        tag: str | None = None,
        message: str = "",
        git_commit: str | None = None,
        created_at: str | None = None,
    ) -> PushResult:
        """A new tag holding ``source``'s files with each of ``strategies`` replaced by ``models_dir/<S>``.

        Retraining one strategy of a profile needs a tag that still carries every other strategy
        the profile runs; this uploads only the new strategies' missing blobs and never moves
        ``latest`` (a challenger is a proposal, not the newest approved bundle).
        """
        origin = self.read_tag(check_tag(source, where="--from"), expected_sha256=source_sha256)
        if tag is not None and self.tag_exists(check_tag(tag, where="--tag")):
            raise TagExists(self._where(f"tag {tag}"), "already exists (tags are immutable)")
        paths = {
            rel: path
            for rel, path in bundle_files(models_dir).items()
            if rel.split("/", 1)[0] in set(strategies)
        }
        missing = sorted(set(strategies) - {rel.split("/", 1)[0] for rel in paths})
        if missing:
            raise InputError(str(models_dir), "files", f"no files for {', '.join(missing)}")
        hashes = dict(zip(paths, self._map(file_sha256, list(paths.values())), strict=True))
        new_entries = {rel: FileEntry(hashes[rel], paths[rel].stat().st_size) for rel in paths}
        uploaded: list[str] = []
        for sha, rel in {entry.sha256: rel for rel, entry in new_entries.items()}.items():
            head = self.store.head(blob_key(sha))
            if head is None or head.size != new_entries[rel].size:
                self.store.put_file(blob_key(sha), paths[rel])
                uploaded.append(rel)
        kept = {rel: e for rel, e in origin.files.items() if rel.split("/", 1)[0] not in set(strategies)}
        files = {**kept, **new_entries}
        metadata = {k: v for k, v in origin.metadata.items() if k not in set(strategies)}
        metadata.update(bundle_metadata(models_dir, paths))
        created = created_at or utc_now()

        def manifest_for(name: str) -> TagManifest:
            return TagManifest(
                tag=name,
                files=files,
                metadata=metadata,
                git_commit=git_commit,
                created_at=created,
                message=message,
                source_tag=origin.tag,
            )

        if tag is not None:
            final, sha256 = tag, self._create_tag(manifest_for(tag))
        else:
            final, sha256 = self._create_auto_tag(created, manifest_for)
        return PushResult(
            tag=final,
            manifest_sha256=sha256,
            uploaded_bytes=sum(new_entries[rel].size for rel in uploaded),
            uploaded_files=len(uploaded),
            skipped_files=len(files) - len(uploaded),
        )

    def splice(
        self,
        source: str,
        donor: str,
        strategies: Sequence[str],
        *,
        tag: str,
        source_sha256: str | None = None,
        message: str = "",
        created_at: str | None = None,
    ) -> str:
        """A new tag with ``source``'s files, each of ``strategies`` taken from ``donor``; no upload.

        Promoting one strategy's version in a profile needs a tag with that version's files and
        the profile's other strategies unchanged; both tags' blobs are already in the store.
        Returns the new tag's manifest sha256; an existing ``tag`` with exactly this content is
        reused (so a re-run of the same promotion is harmless), any other is refused.
        """
        origin = self.read_tag(check_tag(source, where="--from"), expected_sha256=source_sha256)
        giver = self.read_tag(check_tag(donor, where="--from"))
        chosen = set(strategies)
        taken = {rel: entry for rel, entry in giver.files.items() if rel.split("/", 1)[0] in chosen}
        missing = sorted(chosen - {rel.split("/", 1)[0] for rel in taken})
        if missing:
            raise HubError(self._where(f"tag {donor}"), f"holds no files for {', '.join(missing)}")
        kept = {rel: e for rel, e in origin.files.items() if rel.split("/", 1)[0] not in chosen}
        files = {**kept, **taken}
        metadata = {k: v for k, v in origin.metadata.items() if k not in chosen}
        metadata.update({k: v for k, v in giver.metadata.items() if k in chosen})
        check_tag(tag, where="--tag")
        if self.tag_exists(tag):
            existing = self.read_tag(tag)
            if existing.files == files:
                return self.tag_sha256(tag)
            raise TagExists(self._where(f"tag {tag}"), "already exists with other files (tags are immutable)")
        return self._create_tag(
            TagManifest(
                tag=tag,
                files=files,
                metadata=metadata,
                git_commit=giver.git_commit,
                created_at=created_at or utc_now(),
                message=message or f"{source} with {', '.join(sorted(chosen))} from {donor}",
                source_tag=origin.tag,
            )
        )

    # ---------------------------------------------------------------- pointers

    def set_latest(self, tag: str, sha256: str | None = None) -> Pointer:
        sha = sha256 or self.tag_sha256(tag)
        self.read_tag(tag, expected_sha256=sha)
        pointer = Pointer(tag=tag, sha256=sha, updated_at=utc_now())
        self.store.put(LATEST_KEY, canonical_json(pointer.__dict__))
        return pointer

    def get_latest(self) -> Pointer | None:
        raw = self._read_pointer(LATEST_KEY)
        if raw is None:
            return None
        where = self._where(LATEST_KEY)
        return Pointer(
            tag=check_tag(raw.get("tag"), where=where),  # type: ignore[arg-type]
            sha256=check_sha256(raw.get("sha256"), where=where),
            updated_at=str(raw.get("updated_at", "")),
        )

    def resolve_latest(self) -> Pointer:
        pointer = self.get_latest()
        if pointer is None:
            raise TagNotFound(self._where("latest"), "nothing pushed yet (no latest pointer)")
        return pointer

    def set_profile_pointer(
        self, env: str, profile: int, tag: str, sha256: str, deployment_id: str | None = None
    ) -> ProfilePointer:
        """Record the revision approved for ``env`` profile ``profile`` (the tag must hash to ``sha256``)."""
        key = profile_pointer_key(env, profile)
        self.read_tag(tag, expected_sha256=sha256)
        pointer = ProfilePointer(
            env=env,
            profile=profile,
            tag=tag,
            sha256=sha256,
            updated_at=utc_now(),
            deployment_id=deployment_id,
        )
        self.store.put(
            key,
            canonical_json(
                {
                    "tag": tag,
                    "sha256": sha256,
                    "updated_at": pointer.updated_at,
                    "deployment_id": deployment_id,
                }
            ),
        )
        return pointer

    def get_profile_pointer(self, env: str, profile: int) -> ProfilePointer | None:
        key = profile_pointer_key(env, profile)
        raw = self._read_pointer(key)
        if raw is None:
            return None
        where = self._where(key)
        deployment = raw.get("deployment_id")
        return ProfilePointer(
            env=env,
            profile=profile,
            tag=check_tag(raw.get("tag"), where=where),  # type: ignore[arg-type]
            sha256=check_sha256(raw.get("sha256"), where=where),
            updated_at=str(raw.get("updated_at", "")),
            deployment_id=None if deployment is None else str(deployment),
        )

    def _read_pointer(self, key: str) -> dict[str, Any] | None:
        try:
            data = self.store.get(key)
        except ObjectNotFound:
            return None
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raw = None
        if not isinstance(raw, dict):
            raise InputError(self._where(key), "pointer", "not a JSON object")
        return raw

    # ---------------------------------------------------------------- pull

    def resolve(
        self,
        *,
        tag: str | None = None,
        env: str | None = None,
        profile: int | None = None,
        expected_sha256: str | None = None,
    ) -> tuple[str, str | None]:
        """The tag to pull and the manifest hash it must have (latest / a tag / a profile pointer)."""
        if profile is not None:
            if tag is not None:
                raise InputError("--pull", "revision", "give either a revision or a profile, not both")
            if env is None:
                raise InputError("--pull", "env", "a profile pointer needs an environment")
            pointer = self.get_profile_pointer(env, profile)
            if pointer is None:
                raise TagNotFound(self._where(f"{env} profile {profile}"), "no approved revision recorded")
            if expected_sha256 is not None and expected_sha256 != pointer.sha256:
                raise HubIntegrityError(
                    self._where(f"{env} profile {profile}"),
                    f"pointer has sha256 {pointer.sha256}, expected {expected_sha256}",
                )
            return pointer.tag, pointer.sha256
        if tag is None:
            latest = self.resolve_latest()
            if expected_sha256 is not None and expected_sha256 != latest.sha256:
                raise HubIntegrityError(
                    self._where("latest"), f"pointer has sha256 {latest.sha256}, expected {expected_sha256}"
                )
            return latest.tag, latest.sha256
        return check_tag(tag, where="--revision"), expected_sha256

    def pull(
        self,
        dest: Path,
        *,
        tag: str | None = None,
        env: str | None = None,
        profile: int | None = None,
        expected_sha256: str | None = None,
        features: Mapping[str, Sequence[str]] | None = None,
        progress: TransferProgress | None = None,
    ) -> PullResult:
        """Download a tag into ``dest``: every blob verified while streaming, compat checked, then one swap.

        Nothing is deserialized. On any failure ``dest`` is left exactly as it was.
        """
        name, expected = self.resolve(tag=tag, env=env, profile=profile, expected_sha256=expected_sha256)
        manifest = self.read_tag(name, expected_sha256=expected)
        manifest_sha = expected or self.tag_sha256(name)
        dest = Path(os.path.abspath(dest))
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
        try:
            reused: list[str] = []
            to_fetch: list[str] = []
            for rel, entry in sorted(manifest.files.items()):
                if _has_content(dest / rel, entry):
                    reused.append(rel)
                else:
                    to_fetch.append(rel)
            for rel in reused:
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(dest / rel, target)
            if progress is not None:
                progress.start(f"pull {name}", sum(manifest.files[rel].size for rel in to_fetch))

            def fetch(rel: str) -> int:
                entry = manifest.files[rel]
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                self._download_verified(entry, target, f"tag {name}: {rel}", progress)
                return entry.size

            downloaded = sum(self._map(fetch, to_fetch))
            check_compat(staging, manifest.strategies, features, where=self._where(f"tag {name}"))
            swap_into_place(staging, dest)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return PullResult(
            tag=name,
            manifest_sha256=manifest_sha,
            dest=dest,
            downloaded_bytes=downloaded,
            downloaded_files=len(to_fetch),
            reused_files=len(reused),
        )

    def _download_verified(
        self, entry: FileEntry, target: Path, what: str, progress: TransferProgress | None
    ) -> None:
        with target.open("wb") as handle:
            sink = _HashingSink(handle, progress)
            self.store.get_stream(blob_key(entry.sha256), cast(IO[bytes], sink))
        if sink.size != entry.size:
            raise HubIntegrityError(
                self._where(what),
                f"blob {entry.sha256[:12]} is {sink.size} bytes, manifest says {entry.size}",
            )
        actual = sink.digest.hexdigest()
        if actual != entry.sha256:
            raise HubIntegrityError(
                self._where(what), f"blob content hashes to {actual[:12]}, manifest says {entry.sha256[:12]}"
            )

    def _map(self, func: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        if len(items) <= 1 or self.workers <= 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            return list(pool.map(func, items))


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


def _has_content(path: Path, entry: FileEntry) -> bool:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size != entry.size:
            return False
    except OSError:
        return False
    return file_sha256(path) == entry.sha256


def check_compat(
    models_dir: Path, strategies: Iterable[str], features: Mapping[str, Sequence[str]] | None, *, where: str
) -> None:
    """Each bundled strategy's model_compat.json is sane and matches ``features`` where given."""
    present = set(strategies)
    for strategy in sorted(present | set(features or {})):
        compat_path = models_dir / strategy / COMPAT_FILE
        if strategy not in present or not compat_path.is_file():
            if features is not None and strategy in features:
                raise ModelCompatError(f"{where}: {strategy}", f"no {COMPAT_FILE} in the bundle")
            continue
        data = _read_json_object(compat_path, f"{strategy}/{COMPAT_FILE}")
        count = data.get("feature_count")
        listed = data.get("features")
        if not isinstance(count, int) or isinstance(count, bool):
            raise ModelCompatError(
                f"{where}: {strategy}/{COMPAT_FILE}", f"feature_count is not an integer: {count!r}"
            )
        if isinstance(listed, list) and len(listed) != count:
            raise ModelCompatError(
                f"{where}: {strategy}/{COMPAT_FILE}",
                f"feature_count {count} but {len(listed)} features listed",
            )
        if features is None or strategy not in features:
            continue
        expected = list(features[strategy])
        if count != len(expected):
            raise ModelCompatError(
                f"{where}: {strategy}/{COMPAT_FILE}",
                f"feature_count {count} != {len(expected)} features in ml_config",
            )
        if isinstance(listed, list) and listed != expected:
            diff = next(i for i, (a, b) in enumerate(zip(listed, expected, strict=True)) if a != b)
            raise ModelCompatError(
                f"{where}: {strategy}/{COMPAT_FILE}",
                f"feature {diff} is {listed[diff]!r}, ml_config expects {expected[diff]!r}",
            )


def ensure_models_present(
    models_dir: Path,
    hub: ModelHub,
    *,
    env: str | None = None,
    profile: int | None = None,
    features: Mapping[str, Sequence[str]] | None = None,
) -> PullResult | None:
    """A bot's start-up: pull (the profile's approved revision, else latest) when models are missing.

    Models count as present when every strategy of ``features`` (or, without features, at
    least one strategy) has its model_compat.json and signal/ensemble_rf.onnx. Returns the
    pull's result, or None when nothing had to be pulled.
    """
    strategies = list(features) if features else _strategy_dirs(models_dir)
    if strategies and all(
        (models_dir / s / COMPAT_FILE).is_file()
        and (models_dir / s / "signal" / "ensemble_rf.onnx").is_file()
        for s in strategies
    ):
        check_compat(models_dir, strategies, features, where=str(models_dir))
        return None
    if profile is not None:
        return hub.pull(models_dir, env=env or "prod", profile=profile, features=features)
    return hub.pull(models_dir, features=features)


def _strategy_dirs(models_dir: Path) -> list[str]:
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_json_object(path: Path, where: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise InputError(where, "json", f"unreadable: {err}") from None
    if not isinstance(data, dict):
        raise InputError(where, "json", "not a JSON object")
    return data


def _optional_str(value: Any, where: str, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(where, name, f"not a string: {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

