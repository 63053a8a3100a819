"""Shared helpers of the training tests: a release repo made of the example strategies, file hashes."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from conftest import REPO_ROOT


def make_training_repo(root: Path, strategies: Sequence[str] = ("MyStrategy", "PascalStrategy")) -> Path:
    """A git repo in ``root`` holding copies of the example strategies (tradai.yaml, ml_config.json, data)."""
    for name in strategies:
        shutil.copytree(REPO_ROOT / "strategies" / name, root / "strategies" / name)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "strategies"], cwd=root, check=True)
    return root


def file_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
