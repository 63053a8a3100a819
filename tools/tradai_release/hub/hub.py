"""The content-addressed model hub: one facade that makes, reads, pulls and verifies tags.

See docs/architecture.md §6.

Layout in the object store::

    blobs/sha256/<hex>                  one object per distinct file content
    tags/<tag>.json                     immutable manifest (canonical JSON, created conditionally)
    pointers/latest.json                {tag, sha256, updated_at}
    pointers/<env>/profile-<N>.json     {tag, sha256, updated_at, deployment_id} (written by apply)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.clock import stamp
from tradai_release.errors import HubError, InputError, SettingsError, TagExists
from tradai_release.fsutil import swap_into_place
from tradai_release.hub import download, pointers, transfer, upload, verification
from tradai_release.hub.compat import check_compat
from tradai_release.hub.manifest import (
    FileEntry,
    TagInfo,
    TagManifest,
    bundle_metadata,
    create_day_tag,
    create_tag,
    day_tag,
    load_tag,
    load_tag_bytes,
    replace_strategies,
    strategies_without_files,
    strategy_of,
    tag_infos,
)
from tradai_release.hub.names import check_strategy_dir, check_tag, profile_pointer_key, tag_key
from tradai_release.hub.pointers import Pointer, ProfilePointer
from tradai_release.hub.transfer import DEFAULT_WORKERS, TransferProgress

if TYPE_CHECKING:
    from tradai_release.settings import Settings
    from tradai_release.stores import ObjectStore


@dataclass(frozen=True)
class PushResult:
    tag: str
    manifest_sha256: str
    uploaded_bytes: int
    uploaded_files: int
    skipped_files: int


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


@dataclass(frozen=True)
class Pinned:
    """A tag a pointer names, the manifest hash it must have, who pins it (``latest``, ``prod profile 3``)."""

    tag: str
    sha256: str
    by: tuple[str, ...]


@dataclass(frozen=True)
class PullResult:
    tag: str
    manifest_sha256: str
    dest: Path
    downloaded_bytes: int
    downloaded_files: int
    reused_files: int
    strategies: tuple[str, ...] = ()
    """The strategies pulled on their own (empty: the whole tag)."""


class ModelHub:
    """The model hub over any ObjectStore (a local directory or an S3-API bucket such as R2)."""

    def __init__(self, store: ObjectStore, *, workers: int = DEFAULT_WORKERS) -> None:
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

    def require_new_tag(self, tag: str) -> None:
        """Refuse an invalid tag name, or one that exists (tags are immutable)."""
        if self.tag_exists(check_tag(tag, where="--tag")):
            raise TagExists(self._where(f"tag {tag}"), "already exists (tags are immutable)")

    def tag_sha256(self, tag: str) -> str:
        """SHA-256 of the stored manifest bytes of ``tag`` (what release manifests pin)."""
        return hashlib.sha256(load_tag_bytes(self.store, tag)).hexdigest()

    def read_tag(self, tag: str, *, expected_sha256: str | None = None) -> TagManifest:
        """The manifest of ``tag``; refused when it does not hash to ``expected_sha256``."""
        return load_tag(self.store, tag, expected_sha256=expected_sha256)

    def read_file(self, manifest: TagManifest, path: str) -> bytes:
        """The content of ``path`` in ``manifest``'s tag (read whole: for small files such as model_compat).

        Refused with a HubError when the tag has no such file, or its blob is missing or is not
        the content the manifest records.
        """
        where = self._where(f"tag {manifest.tag}: {path}")
        entry = manifest.files.get(path)
        if entry is None:
            raise HubError(where, "no such file in the tag")
        return download.read_verified(self.store, entry, where=where)

    def list_tags(self) -> list[TagInfo]:
        """Every tag, oldest first (by created_at, then name)."""
        latest = self.get_latest()
        return tag_infos(self.store, latest.tag if latest is not None else None)

    def verify_tag(self, tag: str, expected_sha256: str | None, *, deep: bool = False) -> list[str]:
        """Problems with ``tag``: missing, wrong manifest hash, a blob missing or of the wrong size,
        and with ``deep`` a blob whose content is not the one its name says (see ``verify``)."""
        return list(self.verify(tag, expected_sha256, deep=deep).problems)

    def verify(self, tag: str, expected_sha256: str | None, *, deep: bool = False) -> Verification:
        """Check ``tag``'s manifest against ``expected_sha256`` and each distinct blob once, in parallel.

        Shallow: each blob exists with its size (one HEAD each). ``deep``: also its content, from
        the SHA-256 checksum the store keeps (the same HEAD, no download), or by streaming and
        hashing a blob the store keeps no checksum of. Problems name the tag, a path and the blob.
        """
        try:
            manifest = self.read_tag(tag, expected_sha256=expected_sha256)
        except (HubError, InputError) as err:
            return Verification(tag, deep, 0, 0, 0, 0, (str(err),))
        blobs: dict[str, tuple[str, FileEntry]] = {}
        for path, entry in sorted(manifest.files.items()):
            blobs.setdefault(entry.sha256, (path, entry))

        def check(item: tuple[str, FileEntry]) -> verification.BlobCheck:
            return verification.check_blob(self.store, item[1], deep=deep)

        items = [blobs[sha] for sha in sorted(blobs)]
        checks = transfer.parallel_map(check, items, self.workers)
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

    def pinned(self) -> list[Pinned]:
        """Every tag ``latest`` or a profile pointer names, with the manifest hash it pins and who pins it.

        What ``r2_hub.py --verify`` checks by default: the tags a bot may pull.
        """
        found: dict[tuple[str, str], list[str]] = {}
        latest = self.get_latest()
        if latest is not None:
            found.setdefault((latest.tag, latest.sha256), []).append("latest")
        for pointer in pointers.profile_pointers(self.store):
            where = f"{pointer.env} profile {pointer.profile}"
            found.setdefault((pointer.tag, pointer.sha256), []).append(where)
        return [Pinned(tag, sha, tuple(by)) for (tag, sha), by in sorted(found.items())]

    # ---------------------------------------------------------------- making tags

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
        pushed = self._publish(
            models_dir,
            tag=tag,
            message=message,
            git_commit=git_commit,
            created_at=created_at,
            progress=progress,
        )
        self.set_latest(pushed.tag, pushed.manifest_sha256)
        return pushed

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
        progress: TransferProgress | None = None,
    ) -> PushResult:
        """A new tag holding ``source``'s files with each of ``strategies`` replaced by ``models_dir/<S>``.

        Retraining one strategy of a profile needs a tag that still carries every other strategy
        the profile runs; this uploads only the new strategies' missing blobs and never moves
        ``latest`` (a challenger is a proposal, not the newest approved bundle).
        """
        origin = self.read_tag(check_tag(source, where="--from"), expected_sha256=source_sha256)
        return self._publish(
            models_dir,
            onto=(origin, strategies),
            tag=tag,
            message=message,
            git_commit=git_commit,
            created_at=created_at,
            progress=progress,
        )

    def _publish(
        self,
        models_dir: Path,
        *,
        onto: tuple[TagManifest, Collection[str]] | None = None,
        tag: str | None,
        message: str,
        git_commit: str | None,
        created_at: str | None,
        progress: TransferProgress | None,
    ) -> PushResult:
        """The one way files become a tag: hash them, upload what the hub lacks, create the tag.

        ``onto`` is a base tag and the strategies whose files ``models_dir`` replaces in it;
        without it the tag is ``models_dir`` alone.
        """
        if tag is not None:
            self.require_new_tag(tag)
        paths = transfer.bundle_files(models_dir)
        if onto is not None:
            chosen = set(onto[1])
            paths = {rel: path for rel, path in paths.items() if strategy_of(rel) in chosen}
            missing = strategies_without_files(chosen, paths)
            if missing:
                raise InputError(str(models_dir), "files", f"no files for {', '.join(missing)}")
        pushed = upload.upload_missing(self.store, paths, workers=self.workers, progress=progress)
        entries, uploaded = pushed.entries, pushed.uploaded
        files, metadata = entries, bundle_metadata(models_dir, paths)
        if onto is not None:
            files, metadata = replace_strategies(onto[0], onto[1], entries, metadata)
        created = created_at or stamp()
        draft = TagManifest(
            tag=tag or day_tag(created),
            files=files,
            metadata=metadata,
            git_commit=git_commit,
            created_at=created,
            message=message,
            source_tag=onto[0].tag if onto is not None else None,
        )
        if tag is not None:
            final, sha256 = tag, create_tag(self.store, draft)
        else:
            final, sha256 = create_day_tag(self.store, draft)
        return PushResult(
            tag=final,
            manifest_sha256=sha256,
            uploaded_bytes=sum(entry.size for entry in uploaded),
            uploaded_files=len(uploaded),
            skipped_files=len(files) - len(uploaded),
        )

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
            created_at=created_at or stamp(),
            message=message,
            source_tag=source_tag,
        )
        return create_tag(self.store, manifest)

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
        taken = {rel: entry for rel, entry in giver.files.items() if strategy_of(rel) in chosen}
        missing = strategies_without_files(chosen, taken)
        if missing:
            raise HubError(self._where(f"tag {donor}"), f"holds no files for {', '.join(missing)}")
        given = {name: value for name, value in giver.metadata.items() if name in chosen}
        files, metadata = replace_strategies(origin, chosen, taken, given)
        check_tag(tag, where="--tag")
        if self.tag_exists(tag):
            existing = self.read_tag(tag)
            if existing.files == files:
                return self.tag_sha256(tag)
            raise TagExists(self._where(f"tag {tag}"), "already exists with other files (tags are immutable)")
        return create_tag(
            self.store,
            TagManifest(
                tag=tag,
                files=files,
                metadata=metadata,
                git_commit=giver.git_commit,
                created_at=created_at or stamp(),
                message=message or f"{source} with {', '.join(sorted(chosen))} from {donor}",
                source_tag=origin.tag,
            ),
        )

    # ---------------------------------------------------------------- pointers

    def set_latest(self, tag: str, sha256: str | None = None) -> Pointer:
        sha = sha256 or self.tag_sha256(tag)
        self.read_tag(tag, expected_sha256=sha)
        pointer = Pointer(tag=tag, sha256=sha, updated_at=stamp())
        pointers.write_latest(self.store, pointer)
        return pointer

    def get_latest(self) -> Pointer | None:
        return pointers.read_latest(self.store)

    def resolve_latest(self) -> Pointer:
        return pointers.require_latest(self.store)

    def set_profile_pointer(
        self, env: str, profile: int, tag: str, sha256: str, deployment_id: str | None = None
    ) -> ProfilePointer:
        """Record the revision approved for ``env`` profile ``profile`` (the tag must hash to ``sha256``)."""
        profile_pointer_key(env, profile)  # a bad env or profile is refused before the tag is read
        self.read_tag(tag, expected_sha256=sha256)
        pointer = ProfilePointer(
            env=env,
            profile=profile,
            tag=tag,
            sha256=sha256,
            updated_at=stamp(),
            deployment_id=deployment_id,
        )
        pointers.write_profile_pointer(self.store, pointer)
        return pointer

    def get_profile_pointer(self, env: str, profile: int) -> ProfilePointer | None:
        return pointers.read_profile_pointer(self.store, env, profile)

    def delete_profile_pointer(self, env: str, profile: int) -> None:
        """Remove the pointer of a profile no manifest declares any more (apply's prune)."""
        pointers.delete_profile_pointer(self.store, env, profile)

    def pointer_profiles(self, env: str) -> list[int]:
        """The profiles of ``env`` that have a pointer (one listing)."""
        return pointers.pointer_profiles(self.store, env)

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
        return pointers.resolve(
            self.store, tag=tag, env=env, profile=profile, expected_sha256=expected_sha256
        )

    def pull(
        self,
        dest: Path,
        *,
        tag: str | None = None,
        env: str | None = None,
        profile: int | None = None,
        expected_sha256: str | None = None,
        features: Mapping[str, Sequence[str]] | None = None,
        strategies: Sequence[str] | None = None,
        progress: TransferProgress | None = None,
    ) -> PullResult:
        """Download a tag into ``dest``: every blob verified while streaming, compat checked, then swapped.

        Without ``strategies`` the whole tag replaces ``dest`` in one rename. With ``strategies``
        only the files under ``<S>/`` of each are pulled and each ``dest/<S>`` is replaced by
        exactly the tag's files of ``S`` (a local file the tag does not list goes); the other
        directories of ``dest`` are not touched. Files already holding the right content are
        reused, not downloaded. Nothing is deserialized. On any failure ``dest`` is left exactly
        as it was (every file is verified and every compat checked before the first rename).
        """
        name, expected = self.resolve(tag=tag, env=env, profile=profile, expected_sha256=expected_sha256)
        manifest = self.read_tag(name, expected_sha256=expected)
        manifest_sha = expected or self.tag_sha256(name)
        return self.pull_manifest(
            manifest, manifest_sha, dest, features=features, strategies=strategies, progress=progress
        )

    def pull_manifest(
        self,
        manifest: TagManifest,
        manifest_sha256: str,
        dest: Path,
        *,
        features: Mapping[str, Sequence[str]] | None = None,
        strategies: Sequence[str] | None = None,
        progress: TransferProgress | None = None,
    ) -> PullResult:
        """``pull`` of a tag manifest the caller already read (and checked against ``manifest_sha256``)."""
        dest = Path(os.path.abspath(dest))
        if strategies is None:
            staged = self._pull_whole(manifest, dest, features, progress)
        else:
            staged = self._pull_strategies(manifest, dest, strategies, features, progress)
        return PullResult(
            tag=manifest.tag,
            manifest_sha256=manifest_sha256,
            dest=dest,
            downloaded_bytes=staged.downloaded_bytes,
            downloaded_files=staged.downloaded_files,
            reused_files=staged.reused_files,
            strategies=tuple(sorted(set(strategies))) if strategies is not None else (),
        )

    def _pull_whole(
        self,
        manifest: TagManifest,
        dest: Path,
        features: Mapping[str, Sequence[str]] | None,
        progress: TransferProgress | None,
    ) -> download.Staged:
        where = self._where(f"tag {manifest.tag}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
        try:
            staged = download.stage_files(
                self.store,
                manifest.files,
                current=dest,
                staging=staging,
                workers=self.workers,
                progress=progress,
                description=f"pull {manifest.tag}",
                where=where,
            )
            check_compat(staging, manifest.strategies, features, where=where)
            swap_into_place(staging, dest)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return staged

    def _pull_strategies(
        self,
        manifest: TagManifest,
        dest: Path,
        strategies: Sequence[str],
        features: Mapping[str, Sequence[str]] | None,
        progress: TransferProgress | None,
    ) -> download.Staged:
        where = self._where(f"tag {manifest.tag}")
        chosen = sorted({check_strategy_dir(s, where="--strategy") for s in strategies})
        files = manifest.files_of(chosen)
        missing = strategies_without_files(chosen, files)
        if missing:
            raise HubError(where, f"holds no files for {', '.join(missing)}")
        wanted = None if features is None else {s: features[s] for s in chosen if s in features}
        dest.mkdir(parents=True, exist_ok=True)
        # Staged inside dest, so each rename into dest/<S> stays on one filesystem; the dot keeps it
        # out of what a bot or a push sees as a strategy.
        staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=dest))
        try:
            staged = download.stage_files(
                self.store,
                files,
                current=dest,
                staging=staging,
                workers=self.workers,
                progress=progress,
                description=f"pull {manifest.tag} {', '.join(chosen)}",
                where=where,
            )
            check_compat(staging, chosen, wanted, where=where)
            replaced = staging / ".replaced"
            replaced.mkdir()
            for strategy in chosen:
                swap_into_place(staging / strategy, dest / strategy, backup=replaced / strategy)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return staged
