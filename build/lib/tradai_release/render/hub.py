"""Terminal output of the model hub CLI (tools/r2_hub.py): progress bars, results, the tag list."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from tradai_release.render import console, short, titled_table

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from tradai_release.hub import PullResult, PushResult, TagInfo, TransferProgress, Verification


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class _RichTransfer:
    """A TransferProgress drawn as one rich progress bar per transfer."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, description: str, total_bytes: int) -> None:
        self.task = self.progress.add_task(description, total=total_bytes)

    def advance(self, nbytes: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, nbytes)


@contextmanager
def transfer_progress(enabled: bool = True) -> Iterator[TransferProgress | None]:
    """Progress bars on a terminal; None (quiet) when stdout is piped or redirected, or not ``enabled``."""
    if not enabled or not sys.stdout.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console(), transient=False) as progress:
        yield _RichTransfer(progress)


def render_push(result: PushResult) -> None:
    console().print(
        f"pushed tag {result.tag} (manifest sha256 {result.manifest_sha256}): "
        f"uploaded {result.uploaded_files} files, {human_bytes(result.uploaded_bytes)}; "
        f"{result.skipped_files} already in the hub"
    )


def render_pull(result: PullResult) -> None:
    only = f" ({', '.join(result.strategies)} only)" if result.strategies else ""
    console().print(
        f"pulled tag {result.tag}{only} (manifest sha256 {result.manifest_sha256}) into {result.dest}: "
        f"downloaded {result.downloaded_files} files, {human_bytes(result.downloaded_bytes)}; "
        f"{result.reused_files} already present; every file verified"
    )


def render_verified(hub: str, results: Sequence[tuple[Verification, Sequence[str]]]) -> None:
    """One line per tag verified (stdout), then each problem as an ``error:`` line (stderr)."""
    for result, pinned_by in results:
        if result.problems:
            continue
        by = f" ({', '.join(pinned_by)})" if pinned_by else ""
        console().print(
            f"verified tag {result.tag}{by} in {hub}: {result.blobs} blobs, "
            f"{result.by_checksum} by the store's SHA-256 checksum, {result.hashed} read and hashed "
            f"({human_bytes(result.hashed_bytes)})"
        )
    for result, _ in results:
        for problem in result.problems:
            print(f"error: {problem}", file=sys.stderr)


def render_tag_only(tag: str, sha256: str, source: str) -> None:
    console().print(f"created tag {tag} from {source} (manifest sha256 {sha256}); nothing uploaded")


def _accuracy(info: TagInfo) -> str:
    values = []
    for strategy, models in sorted(info.metadata.items()):
        signal = models.get("signal") if isinstance(models, dict) else None
        if isinstance(signal, dict) and isinstance(signal.get("accuracy"), (int, float)):
            values.append(f"{strategy}={signal['accuracy']:.3f}")
    return ", ".join(values) or "-"


def render_tags(infos: Sequence[TagInfo]) -> None:
    """One row per tag, oldest first; the latest one is marked."""

    out = console()
    if not infos:
        out.print("no tags in the model hub")
        return
    columns = ("tag", "created_at", "files", "size", "signal accuracy", "git_commit", "sha256", "message")
    table = titled_table("model hub tags", columns, right={"files", "size"})
    for info in infos:
        name = f"{info.tag} (latest)" if info.latest else info.tag
        if info.source_tag:
            name += f" <- {info.source_tag}"
        table.add_row(
            name,
            info.created_at,
            str(info.file_count),
            human_bytes(info.total_size),
            _accuracy(info),
            short(info.git_commit[:12] if info.git_commit else None),
            short(info.sha256),
            info.message or "-",
        )
    out.print(table)


def tags_json(infos: Sequence[TagInfo]) -> list[dict[str, Any]]:
    """The ``--list --json`` document."""
    return [{**asdict(info), "strategies": list(info.strategies)} for info in infos]
