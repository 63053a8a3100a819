"""The content-addressed model hub: one facade that makes, reads, pulls and verifies tags.

See docs/architecture.md §6. The facade holds the store and the worker count; each job lives in its
own module (``tagging``, ``pull``, ``verification``, ``pointers``), which it calls.

Layout in the object store::

    blobs/sha256/<hex>                  one object per distinct file content
    tags/<tag>.json                     immutable manifest (canonical JSON, created conditionally)
    pointers/latest.json                {tag, sha256, updated_at}
    pointers/<env>/profile-<N>.json     {tag, sha256, updated_at, deployment_id} (written by apply)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.clock import stamp
from tradai_release.core.errors import HubError, SettingsError
from tradai_release.hub import pointers, pull, tagging, verification
from tradai_release.hub.download import read_verified
from tradai_release.hub.manifest import TagInfo, TagManifest, load_tag, tag_infos
from tradai_release.hub.names import check_tag, profile_pointer_key
from tradai_release.hub.pointers import Pinned, Pointer, ProfilePointer
from tradai_release.hub.pull import PullResult
from tradai_release.hub.tagging import PushResult
from tradai_release.hub.transfer import DEFAULT_WORKERS, TransferProgress
from tradai_release.hub.verification import Verification

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.stores import ObjectStore


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

    # ---------------------------------------------------------------- tags

    def tag_exists(self, tag: str) -> bool:
        return tagging.tag_exists(self.store, tag)

    def require_new_tag(self, tag: str) -> None:
        """Refuse an invalid tag name, or one that exists (tags are immutable)."""
        tagging.require_new_tag(self.store, tag)

    def tag_sha256(self, tag: str) -> str:
        """SHA-256 of the stored manifest bytes of ``tag`` (what release manifests pin)."""
        return tagging.tag_sha256(self.store, tag)

    def read_tag(self, tag: str, *, expected_sha256: str | None = None) -> TagManifest:
        """The manifest of ``tag``; refused when it does not hash to ``expected_sha256``."""
        return load_tag(self.store, tag, expected_sha256=expected_sha256)

    def read_file(self, manifest: TagManifest, path: str) -> bytes:
        """The content of ``path`` in ``manifest``'s tag (read whole: for small files such as model_compat).

        Refused with a HubError when the tag has no such file, or its blob is missing or is not
        the content the manifest records.
        """
        where = f"{self.store.name}: tag {manifest.tag}: {path}"
        entry = manifest.files.get(path)
        if entry is None:
            raise HubError(where, "no such file in the tag")
        return read_verified(self.store, entry, where=where)

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
        return verification.verify(self.store, tag, expected_sha256, deep=deep, workers=self.workers)

    def pinned(self) -> list[Pinned]:
        """Every tag ``latest`` or a profile pointer names, with the manifest hash it pins and who pins it.

        What ``r2_hub.py --verify`` checks by default: the tags a bot may pull.
        """
        return pointers.pinned(self.store)

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
        pushed = tagging.publish(
            self.store,
            models_dir,
            tag=tag,
            message=message,
            git_commit=git_commit,
            created_at=created_at,
            workers=self.workers,
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
        return tagging.publish(
            self.store,
            models_dir,
            onto=(origin, strategies),
            tag=tag,
            message=message,
            git_commit=git_commit,
            created_at=created_at,
            workers=self.workers,
            progress=progress,
        )

    def tag_only(
        self, name: str, *, source: str = "latest", message: str = "", created_at: str | None = None
    ) -> str:
        """A new tag with ``source``'s files (no upload); returns its manifest sha256."""
        return tagging.tag_only(self.store, name, source=source, message=message, created_at=created_at)

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
        return tagging.splice(
            self.store,
            source,
            donor,
            strategies,
            tag=tag,
            source_sha256=source_sha256,
            message=message,
            created_at=created_at,
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
        return pull.pull_manifest(
            self.store,
            manifest,
            manifest_sha256,
            dest,
            features=features,
            strategies=strategies,
            workers=self.workers,
            progress=progress,
        )
