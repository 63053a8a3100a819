"""Pulling a tag into a models dir: staged beside it, compat checked, then swapped in whole or per strategy.

On any failure the models dir is left exactly as it was: every file is verified and every compat
checked before the first rename.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.errors import HubError
from tradai_release.core.fsutil import swap_into_place
from tradai_release.hub.compat import check_compat
from tradai_release.hub.download import stage_files
from tradai_release.hub.manifest import TagManifest, strategies_without_files
from tradai_release.hub.names import check_strategy_dir
from tradai_release.hub.transfer import TransferProgress

if TYPE_CHECKING:
    from tradai_release.stores import ObjectStore


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


def pull_manifest(
    store: ObjectStore,
    manifest: TagManifest,
    manifest_sha256: str,
    dest: Path,
    *,
    features: Mapping[str, Sequence[str]] | None,
    strategies: Sequence[str] | None,
    workers: int,
    progress: TransferProgress | None,
) -> PullResult:
    """Put ``manifest``'s files into ``dest``: the whole tag, or only each of ``strategies``' directories.

    The caller has read ``manifest`` and checked it against ``manifest_sha256``. Both ways stage
    the files (reusing ``dest``'s copies of the right content), check their compat, then rename.
    """
    dest = Path(os.path.abspath(dest))
    where = f"{store.name}: tag {manifest.tag}"
    if strategies is None:
        chosen, files, wanted = manifest.strategies, manifest.files, features
        description = f"pull {manifest.tag}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
    else:
        chosen = sorted({check_strategy_dir(s, where="--strategy") for s in strategies})
        files = manifest.files_of(chosen)
        missing = strategies_without_files(chosen, files)
        if missing:
            raise HubError(where, f"holds no files for {', '.join(missing)}")
        wanted = None if features is None else {s: features[s] for s in chosen if s in features}
        description = f"pull {manifest.tag} {', '.join(chosen)}"
        dest.mkdir(parents=True, exist_ok=True)
        # Staged inside dest, so each rename into dest/<S> stays on one filesystem; the dot keeps it
        # out of what a bot or a push sees as a strategy.
        staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=dest))
    try:
        staged = stage_files(
            store,
            files,
            current=dest,
            staging=staging,
            workers=workers,
            progress=progress,
            description=description,
            where=where,
        )
        check_compat(staging, chosen, wanted, where=where)
        if strategies is None:
            swap_into_place(staging, dest)
        else:
            replaced = staging / ".replaced"
            replaced.mkdir()
            for strategy in chosen:
                swap_into_place(staging / strategy, dest / strategy, backup=replaced / strategy)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the whole tag was swapped in
    return PullResult(
        tag=manifest.tag,
        manifest_sha256=manifest_sha256,
        dest=dest,
        downloaded_bytes=staged.downloaded_bytes,
        downloaded_files=staged.downloaded_files,
        reused_files=staged.reused_files,
        strategies=tuple(sorted(set(strategies))) if strategies is not None else (),
    )
