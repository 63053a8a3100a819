"""The bot's local models made the pinned tag's: compared by content, only its strategy pulled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.errors import HubError
from tradai_release.repository import bots

if TYPE_CHECKING:
    from tradai_release.engine.state import EngineBackends
    from tradai_release.hub import TagManifest, TransferProgress


@dataclass(frozen=True)
class Moved:
    downloaded_bytes: int
    downloaded_files: int
    reused_files: int



def sync_models(
    backends: EngineBackends,
    manifest: TagManifest,
    pins: bots.BotPins,
    models: Path,
    features: Sequence[str],
    progress: TransferProgress | None,
) -> Moved:
    """The strategy's local files made the pinned tag's (compared by content; only that strategy
    pulled, verified), then its model_compat.json checked against ``features``."""
    from tradai_release.hub import check_compat, local_differences

    strategy = pins.strategy
    files = manifest.files_of([strategy])
    if not files:
        raise HubError(f"{backends.hub.store.name}: tag {pins.hub_tag}", f"holds no files for {strategy}")
    wanted = {strategy: list(features)}
    if local_differences(models, manifest.files, [strategy], workers=backends.hub.workers):
        pulled = backends.hub.pull_manifest(  # the manifest read with the pinned sha256: not read again
            manifest,
            pins.hub_sha256,
            models,
            strategies=[strategy],
            features=wanted,
            progress=progress,
        )
        moved = Moved(pulled.downloaded_bytes, pulled.downloaded_files, pulled.reused_files)
    else:
        moved = Moved(0, 0, len(files))
    check_compat(models, [strategy], wanted, where=str(models))
    return moved
