"""helpers.process_scratch: what a helper keeps for its process is gone when the process exits, also from
an xdist worker, which ends by ``os._exit`` in its first-registered exit handler (conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

EXITS = {
    "returning": "",
    "as a worker does": "import atexit, os; atexit.register(os._exit, 0)\n",
}


@pytest.mark.parametrize("exit_first", EXITS.values(), ids=EXITS.keys())
def test_the_scratch_directory_is_deleted_when_the_process_exits(exit_first: str, tmp_path: Path) -> None:
    script = exit_first + (
        "from helpers import process_scratch\n"
        "scratch = process_scratch('scratch-test-')\n"
        "(scratch / 'mlflow.db').write_bytes(b'x' * 1024)\n"
        "print(scratch, flush=True)\n"
    )
    path = os.pathsep.join([str(TESTS), str(TESTS.parent / "tools")])
    done = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": path, "TMPDIR": str(tmp_path)},
        capture_output=True, text=True, check=True, timeout=120,
    )
    scratch = Path(done.stdout.strip())
    assert scratch.parent == tmp_path and scratch.name.startswith("scratch-test-")
    assert not scratch.exists()
    assert list(tmp_path.iterdir()) == []
