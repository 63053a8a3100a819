"""The bytecode prefix of `invoke test` (PYTHONPYCACHEPREFIX): seeded from the installed packages, and
pruned of the test runs' deleted temp dirs."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

STAMP = ".tradai-seeded"


def mirrored(prefix: Path, path: Path) -> Path:
    """Where the prefix holds the bytecode of the modules under ``path`` (Python's own layout)."""
    return prefix / path.relative_to(path.anchor)


def installed_roots() -> list[Path]:
    """This interpreter's site-packages directories."""
    return sorted({Path(sysconfig.get_path("purelib")), Path(sysconfig.get_path("platlib"))})


def seed_prefix(prefix: Path, roots: list[Path]) -> int:
    """Link each ``.pyc`` that pip wrote beside an installed module to where ``prefix`` would hold it,
    when missing there (copied across file systems); the number linked.

    With a prefix set, Python reads bytecode from the prefix only: a run on a new machine compiled
    MLflow, pandas, Freqtrade and the rest again in its servers, workers and CLI processes (about 60 s of
    CPU). pip's pycs record their source's mtime and size, and the source is the same file; a pyc the
    prefix holds for another source (an earlier venv at the same path) is replaced. A root is skipped
    while unchanged since its last seeding (its mtime, stamped in the prefix).
    """
    linked = 0
    for root in roots:
        mirror = mirrored(prefix, root)
        stamp = mirror / STAMP
        seen = str(root.stat().st_mtime_ns)
        if stamp.is_file() and stamp.read_text() == seen:
            continue
        for cache in root.rglob("__pycache__"):
            target = mirror / cache.parent.relative_to(root)
            for pyc in cache.glob("*.pyc"):
                held = target / pyc.name
                if held.exists():
                    if _header(held) == _header(pyc):
                        continue
                    held.unlink()  # compiled for an earlier install at this path (a venv made again)
                target.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(pyc, held)
                except FileExistsError:  # another run linked it, or Python wrote it, meanwhile
                    continue
                except OSError:
                    shutil.copy2(pyc, held)
                linked += 1
        mirror.mkdir(parents=True, exist_ok=True)
        stamp.write_text(seen)
    return linked


def _header(pyc: Path) -> bytes:
    """A pyc's header: its magic number, flags and the source's mtime and size (PEP 552)."""
    with pyc.open("rb") as handle:
        return handle.read(16)
