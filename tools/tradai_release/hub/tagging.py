"""Making tags: from a models dir (push, compose) or from tags the store already holds (tag-only, splice).

Tags are immutable: a name is checked free before anything is uploaded, and the manifest is created
conditionally, so of two pushers racing for one name only one gets it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.clock import stamp
from tradai_release.core.errors import HubError, InputError, TagExists
from tradai_release.hub.manifest import (
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
)
from tradai_release.hub.names import check_tag, tag_key
from tradai_release.hub.pointers import require_latest
from tradai_release.hub.transfer import TransferProgress, bundle_files
from tradai_release.hub.upload import upload_missing

if TYPE_CHECKING:
    from tradai_release.stores import ObjectStore


@dataclass(frozen=True)
class PushResult:
    tag: str
    manifest_sha256: str
    uploaded_bytes: int
    uploaded_files: int
    skipped_files: int


def tag_exists(store: ObjectStore, tag: str) -> bool:
    return store.head(tag_key(tag)) is not None


def require_new_tag(store: ObjectStore, tag: str) -> None:
    """Refuse an invalid tag name, or one that exists (tags are immutable)."""
    if tag_exists(store, check_tag(tag, where="--tag")):
        raise TagExists(f"{store.name}: tag {tag}", "already exists (tags are immutable)")


def tag_sha256(store: ObjectStore, tag: str) -> str:
    """SHA-256 of the stored manifest bytes of ``tag`` (what release manifests pin)."""
    return hashlib.sha256(load_tag_bytes(store, tag)).hexdigest()


def publish(
    store: ObjectStore,
    models_dir: Path,
    *,
    onto: tuple[TagManifest, Collection[str]] | None = None,
    tag: str | None,
    message: str,
    git_commit: str | None,
    created_at: str | None,
    workers: int,
    progress: TransferProgress | None,
) -> PushResult:
    """The one way files become a tag: hash them, upload what the hub lacks, create the tag.

    ``onto`` is a base tag and the strategies whose files ``models_dir`` replaces in it;
    without it the tag is ``models_dir`` alone.
    """
    if tag is not None:
        require_new_tag(store, tag)
    paths = bundle_files(models_dir)
    if onto is not None:
        chosen = set(onto[1])
        paths = {rel: path for rel, path in paths.items() if strategy_of(rel) in chosen}
        missing = strategies_without_files(chosen, paths)
        if missing:
            raise InputError(str(models_dir), "files", f"no files for {', '.join(missing)}")
    pushed = upload_missing(store, paths, workers=workers, progress=progress)
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
        final, sha256 = tag, create_tag(store, draft)
    else:
        final, sha256 = create_day_tag(store, draft)
    return PushResult(
        tag=final,
        manifest_sha256=sha256,
        uploaded_bytes=sum(entry.size for entry in uploaded),
        uploaded_files=len(uploaded),
        skipped_files=len(files) - len(uploaded),
    )


def tag_only(store: ObjectStore, name: str, *, source: str, message: str, created_at: str | None) -> str:
    """A new tag with ``source``'s files (no upload); returns its manifest sha256."""
    check_tag(name, where="--tag-only")
    source_tag = require_latest(store).tag if source == "latest" else check_tag(source, where="--from")
    origin = load_tag(store, source_tag)
    manifest = TagManifest(
        tag=name,
        files=origin.files,
        metadata=origin.metadata,
        git_commit=origin.git_commit,
        created_at=created_at or stamp(),
        message=message,
        source_tag=source_tag,
    )
    return create_tag(store, manifest)


def splice(
    store: ObjectStore,
    source: str,
    donor: str,
    strategies: Sequence[str],
    *,
    tag: str,
    source_sha256: str | None,
    message: str,
    created_at: str | None,
) -> str:
    """A new tag with ``source``'s files, each of ``strategies`` taken from ``donor``; no upload.

    Returns the new tag's manifest sha256; an existing ``tag`` with exactly this content is
    reused (so a re-run of the same promotion is harmless), any other is refused.
    """
    origin = load_tag(store, check_tag(source, where="--from"), expected_sha256=source_sha256)
    giver = load_tag(store, check_tag(donor, where="--from"))
    chosen = set(strategies)
    taken = {rel: entry for rel, entry in giver.files.items() if strategy_of(rel) in chosen}
    missing = strategies_without_files(chosen, taken)
    if missing:
        raise HubError(f"{store.name}: tag {donor}", f"holds no files for {', '.join(missing)}")
    given = {name: value for name, value in giver.metadata.items() if name in chosen}
    files, metadata = replace_strategies(origin, chosen, taken, given)
    check_tag(tag, where="--tag")
    if tag_exists(store, tag):
        existing = load_tag(store, tag)
        if existing.files == files:
            return tag_sha256(store, tag)
        raise TagExists(f"{store.name}: tag {tag}", "already exists with other files (tags are immutable)")
    return create_tag(
        store,
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
