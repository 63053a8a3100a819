"""Training refuses bad inputs with file, field and reason, and leaves the previous models untouched."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tradai_release.core.errors import InputError
from tradai_release.training import train_strategy
from training_helpers import file_hashes, make_training_repo

STRATEGY = "MyStrategy"
DATA = f"strategies/{STRATEGY}/data/btc_usdt_1h.csv"
ML_CONFIG = f"strategies/{STRATEGY}/ml_config.json"


pytestmark = pytest.mark.slow  # every test starts from a trained bundle


@pytest.fixture(scope="module")
def trained_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = make_training_repo(tmp_path_factory.mktemp("repo"), (STRATEGY,))
    train_strategy(repo, STRATEGY, repo / "models")
    return repo


@pytest.fixture
def repo(trained_repo: Path, tmp_path: Path) -> Path:
    """A fresh copy of a repo whose models/ already holds a trained bundle."""
    copy = tmp_path / "repo"
    shutil.copytree(trained_repo, copy, symlinks=True)
    return copy


def _edit_csv(transform: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    def edit(repo: Path) -> None:
        path = repo / DATA
        path.write_text("\n".join(transform(path.read_text().splitlines())) + "\n")

    return edit


def _set_row(row: int, column: int, value: str) -> Callable[[list[str]], list[str]]:
    def transform(lines: list[str]) -> list[str]:
        cells = lines[row].split(",")
        cells[column] = value
        lines[row] = ",".join(cells)
        return lines

    return transform


def _ml_config(**changes: object) -> Callable[[Path], None]:
    def edit(repo: Path) -> None:
        path = repo / ML_CONFIG
        data = json.loads(path.read_text())
        data.update(changes)
        path.write_text(json.dumps(data))

    return edit


def _swap_rows(lines: list[str]) -> list[str]:
    lines[100], lines[101] = lines[101], lines[100]
    return lines


CASES: dict[str, tuple[Callable[[Path], None], str, str, str]] = {
    # name: (edit, file, field, reason fragment)
    "empty csv": (lambda r: (r / DATA).write_text(""), DATA, "(file)", "empty file"),
    "header only": (_edit_csv(lambda lines: lines[:1]), DATA, "rows", "no candles"),
    "short csv": (_edit_csv(lambda lines: lines[:300]), DATA, "rows", "usable rows"),
    "missing column": (
        _edit_csv(lambda lines: [",".join(line.split(",")[:5]) for line in lines]),
        DATA,
        "header",
        "missing column(s) volume",
    ),
    "NaN close": (_edit_csv(_set_row(500, 4, "NaN")), DATA, "line 501: close", "not a finite number: 'NaN'"),
    "empty volume": (_edit_csv(_set_row(42, 5, "")), DATA, "line 43: volume", "not a finite number"),
    "text price": (_edit_csv(_set_row(7, 1, "abc")), DATA, "line 8: open", "not a finite number: 'abc'"),
    "bad timestamp": (_edit_csv(_set_row(9, 0, "yesterday")), DATA, "line 10: timestamp", "not a timestamp"),
    "time goes back": (_edit_csv(_swap_rows), DATA, "line 102: timestamp", "strictly increasing"),
    "negative price": (_edit_csv(_set_row(12, 4, "-5")), DATA, "line 13: close", "prices must be positive"),
    "no csv": (lambda r: (r / DATA).unlink(), f"strategies/{STRATEGY}/data", "(dir)", "no candles"),
    "two csvs": (
        lambda r: shutil.copy(r / DATA, r / f"strategies/{STRATEGY}/data/eth.csv"),
        f"strategies/{STRATEGY}/data",
        "(dir)",
        "found 2",
    ),
    "unknown feature": (
        _ml_config(features=["ret_1", "moon_phase"]),
        ML_CONFIG,
        "features[1]",
        "unknown feature 'moon_phase'",
    ),
    "one label class": (
        _ml_config(signal={"horizon": 3, "threshold": 0.9}),
        ML_CONFIG,
        "signal",
        "only one signal label class",
    ),
    "schema": (_ml_config(test_fraction=0.9), ML_CONFIG, "test_fraction", ""),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_input_error_and_models_stay(repo: Path, case: str) -> None:
    edit, file, field, reason = CASES[case]
    edit(repo)
    before = file_hashes(repo / "models")
    with pytest.raises(InputError) as raised:
        train_strategy(repo, STRATEGY, repo / "models")
    error = raised.value
    assert (error.file, error.field) == (file, field), str(error)
    assert reason in error.reason
    assert "\n" not in str(error)
    assert file_hashes(repo / "models") == before
    assert not [p.name for p in repo.iterdir() if p.name.startswith(".") and p.name != ".git"], (
        "staging dir left"
    )


def test_unknown_strategy_names_the_known_ones(repo: Path) -> None:
    with pytest.raises(
        InputError, match=r"strategies/Nope: --strategy: no such strategy \(known: MyStrategy\)"
    ):
        train_strategy(repo, "Nope", repo / "models")


def test_a_new_training_replaces_the_bundle_whole(repo: Path) -> None:
    stale = repo / "models" / STRATEGY / "signal" / "stale.bin"
    stale.write_bytes(b"from an older layout")
    other = repo / "models" / "OtherStrategy"
    other.mkdir()
    (other / "keep.txt").write_text("another strategy's bundle")
    train_strategy(repo, STRATEGY, repo / "models")
    assert not stale.exists()
    assert (other / "keep.txt").read_text() == "another strategy's bundle"
