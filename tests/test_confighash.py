"""Config hash (docs/architecture.md §3): formatting, key order and comments do not change it; values do."""

from __future__ import annotations

import pytest

from helpers import SEED_TRADAI
from tradai_release.core.confighash import config_hash, config_id
from tradai_release.core.yamlio import load_yaml


def hash_of(text: str) -> str:
    return config_hash(load_yaml(text.encode(), "tradai.yaml").data)


SEED_HASH = hash_of(SEED_TRADAI)


def test_comments_and_blank_lines_do_not_change_the_hash() -> None:
    commented = "# MyStrategy config\n" + SEED_TRADAI.replace("\n\n", "\n\n# section\n\n").replace(
        "cpu: 512", "cpu: 512   # half a vCPU"
    )
    assert hash_of(commented) == SEED_HASH


def test_reformatting_does_not_change_the_hash() -> None:
    flow = SEED_TRADAI.replace(
        '    symbols:\n      - "BTC/USDT:USDT"\n      - "ETH/USDT:USDT"\n',
        "    symbols: ['BTC/USDT:USDT', ETH/USDT:USDT]\n",
    ).replace("  ecs:\n    cpu: 512\n    memory: 1024\n", "  ecs: {cpu: 512, memory: 1024}\n")
    assert flow != SEED_TRADAI
    assert hash_of(flow) == SEED_HASH
    reindented = SEED_TRADAI.replace("\n  ", "\n    ").replace("\n      ", "\n        ")
    assert hash_of(reindented) == SEED_HASH


def test_key_order_does_not_change_the_hash() -> None:
    sections = SEED_TRADAI.strip().split("\n\n")
    reordered = "\n\n".join(reversed(sections)) + "\n"
    reordered = reordered.replace(
        '  name: "MyStrategy"\n  version: "1.0.0"\n', '  version: "1.0.0"\n  name: "MyStrategy"\n'
    )
    assert hash_of(reordered) == SEED_HASH


def test_value_change_changes_the_hash() -> None:
    assert hash_of(SEED_TRADAI.replace("stake_amount: 1000", "stake_amount: 1001")) != SEED_HASH
    assert hash_of(SEED_TRADAI.replace("walk_forward: true", "walk_forward: false")) != SEED_HASH
    # The string "512" is not the number 512.
    assert hash_of(SEED_TRADAI.replace("cpu: 512", 'cpu: "512"')) != SEED_HASH


def test_interpolation_is_hashed_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://elsewhere:5000")
    assert hash_of(SEED_TRADAI) == SEED_HASH
    assert "${MLFLOW_TRACKING_URI:-http://localhost:5001}" in str(load_yaml(SEED_TRADAI.encode(), "t").data)
    assert hash_of(SEED_TRADAI.replace("localhost:5001", "localhost:5002")) != SEED_HASH


def test_config_id() -> None:
    assert len(SEED_HASH) == 64
    assert config_id(3, SEED_HASH) == f"v3-{SEED_HASH[:8]}"
