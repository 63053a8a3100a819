"""The committed training candles are exactly what tools/make_dataset.py generates."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

# The series tools/make_dataset.py generates, one per strategy (relative to strategies/).
DATA_SETS = (
    "KeplerStrategy/data/eth_usdt_1h.csv",
    "MyStrategy/data/btc_usdt_1h.csv",
    "PascalStrategy/data/btc_usdt_1h.csv",
)


def test_committed_data_matches_generator() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "make_dataset.py"), "--check"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_candles_are_well_formed() -> None:
    found = sorted((REPO_ROOT / "strategies").glob("*/data/*.csv"))
    assert [csv.relative_to(REPO_ROOT / "strategies").as_posix() for csv in found] == list(DATA_SETS)
    for csv in found:
        lines = csv.read_text().splitlines()
        assert lines[0] == "timestamp,open,high,low,close,volume"
        assert len(lines) > 2000
        for line in lines[1:50]:
            _, o, h, lo, c, v = line.split(",")
            assert float(lo) <= min(float(o), float(c)) <= max(float(o), float(c)) <= float(h)
            assert float(v) > 0
