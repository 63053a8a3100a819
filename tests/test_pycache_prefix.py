"""`invoke test`'s bytecode prefix starts from the installed packages' bytecode (tests/pycache_prefix.py)."""

from __future__ import annotations

import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

from pycache_prefix import STAMP, mirrored, seed_prefix


def installed(root: Path, package: str, source: str) -> Path:
    """A module as pip leaves it: its source and, beside it, timestamp bytecode."""
    module = root / package / "__init__.py"
    module.parent.mkdir(parents=True)
    module.write_text(source)
    beside = module.parent / "__pycache__" / f"__init__.{sys.implementation.cache_tag}.pyc"
    py_compile.compile(str(module), cfile=str(beside),
                       invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)  # as pip writes it
    return module


def imported_value(root: Path, prefix: Path, package: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", f"import {package}; print({package}.VALUE)"],
        env={**os.environ, "PYTHONPATH": str(root), "PYTHONPYCACHEPREFIX": str(prefix),
             "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, check=True, timeout=60,
    )
    return done.stdout.strip()


def test_a_seeded_prefix_serves_installed_bytecode_and_a_new_package_is_seeded_too(tmp_path: Path) -> None:
    root, prefix = tmp_path / "site-packages", tmp_path / "prefix"
    module = installed(root, "alpha", "VALUE = 'compiled'\n")
    # The source changes behind the bytecode's back, size and mtime kept: only a run that reads the
    # bytecode still sees the old value, so the import below tells which one Python used.
    stat = module.stat()
    module.write_text("VALUE = 'source!!'\n")
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert imported_value(root, prefix, "alpha") == "source!!"  # an empty prefix: compiled again

    fresh = tmp_path / "prefix-2"
    assert seed_prefix(fresh, [root]) == 1
    assert imported_value(root, fresh, "alpha") == "compiled"
    assert (mirrored(fresh, root) / STAMP).is_file()

    assert seed_prefix(fresh, [root]) == 0  # unchanged since: not walked again
    installed(root, "beta", "VALUE = 'beta'\n")  # a new package changes the directory's mtime
    assert seed_prefix(fresh, [root]) == 1
    assert imported_value(root, fresh, "beta") == "beta"


def test_bytecode_of_an_earlier_install_at_the_same_path_is_replaced(tmp_path: Path) -> None:
    root, prefix = tmp_path / "site-packages", tmp_path / "prefix"
    installed(root, "alpha", "VALUE = 'old install'\n")
    assert seed_prefix(prefix, [root]) == 1
    shutil.rmtree(root)  # the venv made again at the same path: a new source, a new mtime
    module = installed(root, "alpha", "VALUE = 'new install, longer'\n")
    stat = module.stat()
    module.write_text("VALUE = 'source, same size!!'\n")
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert seed_prefix(prefix, [root]) == 1
    assert imported_value(root, prefix, "alpha") == "new install, longer"
