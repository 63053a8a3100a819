"""invoke test's temp dirs in memory (tasks.py's _memory_tmpdir): used only where it is safe and has room."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tasks


@pytest.fixture
def memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory standing in for /dev/shm, with no TMPDIR set and a mount table naming it."""
    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.setattr(tasks, "MEMORY_NEEDED", 1)
    place = tmp_path / "shm"
    place.mkdir()
    return place


def mounts(tmp_path: Path, memory: Path, kind: str = "tmpfs", options: str = "rw,nosuid,nodev") -> str:
    table = tmp_path / "mounts"
    table.write_text(f"/dev/vda / ext4 rw,relatime 0 0\ntmpfs {memory} {kind} {options} 0 0\n")
    return str(table)


def test_an_executable_tmpfs_with_room_gets_a_directory_of_the_users(memory: Path, tmp_path: Path) -> None:
    chosen = tasks._memory_tmpdir(str(memory), mounts(tmp_path, memory))
    directory = memory / f"tradai-release-tests-{os.getuid()}"
    assert chosen == {"TMPDIR": str(directory)}
    assert directory.is_dir() and directory.stat().st_mode & 0o777 == 0o700
    assert tasks._memory_tmpdir(str(memory), mounts(tmp_path, memory)) == chosen  # the next run: the same


@pytest.mark.parametrize(("kind", "options"), [("ext4", "rw,relatime"), ("tmpfs", "rw,nosuid,noexec")])
def test_not_a_tmpfs_or_one_that_runs_nothing_is_not_used(memory: Path, tmp_path: Path, kind: str,
                                                         options: str) -> None:
    assert tasks._memory_tmpdir(str(memory), mounts(tmp_path, memory, kind, options)) == {}
    assert list(memory.iterdir()) == []


def test_too_little_room_a_set_tmpdir_or_no_mount_table_leave_the_default(
    memory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = mounts(tmp_path, memory)
    monkeypatch.setattr(tasks, "MEMORY_NEEDED", 1 << 60)
    assert tasks._memory_tmpdir(str(memory), table) == {}
    monkeypatch.setattr(tasks, "MEMORY_NEEDED", 1)
    assert tasks._memory_tmpdir(str(memory), str(tmp_path / "no-such-table")) == {}
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert tasks._memory_tmpdir(str(memory), table) == {}
    assert list(memory.iterdir()) == []


def test_a_planted_symlink_or_a_directory_others_can_enter_is_refused(memory: Path, tmp_path: Path) -> None:
    table = mounts(tmp_path, memory)
    directory = memory / f"tradai-release-tests-{os.getuid()}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    directory.symlink_to(elsewhere)
    assert tasks._memory_tmpdir(str(memory), table) == {}
    directory.unlink()
    directory.mkdir()
    directory.chmod(0o777)
    assert tasks._memory_tmpdir(str(memory), table) == {}
