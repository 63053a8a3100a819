"""A training is reused only while its inputs, code and libraries are byte-identical, and only whole."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from tradai_release.training import TrainingResult, reuse
from tradai_release.training.reuse import train_all_reusing
from training_helpers import file_hashes, make_training_repo


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tradai-release" / "training"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_training_repo(tmp_path / "repo", ("MyStrategy",))


def _entries(cache: Path) -> list[str]:
    return sorted(p.relative_to(cache).parts[0] for p in cache.glob("*/*"))


def _same(a: object, b: object) -> bool:
    """Equal apart from what is the caller's (the bundle's place, the commit, the trace id)."""
    ignored = {"model_dir": None, "git_commit": None, "trace_id": ""}
    return dataclasses.replace(a, **ignored) == dataclasses.replace(b, **ignored)  # type: ignore[type-var]


def _seed(cache: Path, repo: Path, trained_models: tuple[Path, list[TrainingResult]]) -> Path:
    """The run's MyStrategy training (conftest's trained_models) stored as this repository's entry."""
    (result,) = [r for r in trained_models[1] if r.strategy_name == "MyStrategy"]
    entry = cache / "MyStrategy" / reuse._key(repo, "MyStrategy", reuse._environment_digest())
    reuse._keep(entry, result)
    return entry


@pytest.mark.slow  # trains a strategy
def test_a_training_is_stored_and_reused_whole_with_the_callers_commit(
    repo: Path, cache: Path, tmp_path: Path
) -> None:
    (trained,), reused = train_all_reusing(repo, tmp_path / "a", git_commit="one")
    assert reused == [] and _entries(cache) == ["MyStrategy"]

    (again,), reused = train_all_reusing(repo, tmp_path / "b", git_commit="two")
    assert reused == ["MyStrategy"]
    assert file_hashes(tmp_path / "b") == file_hashes(tmp_path / "a")
    assert _same(again, trained)
    assert again.git_commit == "two" and again.trace_id != trained.trace_id
    assert again.model_dir == tmp_path / "b" / "MyStrategy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "cache", "repo"]  # no staging left


def test_the_key_changes_with_candles_strategy_code_tradai_yaml_and_libraries(repo: Path) -> None:
    folder = repo / "strategies" / "MyStrategy"
    keys = {reuse._key(repo, "MyStrategy", "libraries"), reuse._key(repo, "MyStrategy", "other libraries")}
    data = next((folder / "data").glob("*.csv"))
    data.write_text("\n".join(data.read_text().splitlines()[:-50]) + "\n")
    keys.add(reuse._key(repo, "MyStrategy", "libraries"))
    code = next(folder.rglob("*.py"))
    code.write_text(code.read_text() + "\n# a comment is a change\n")
    keys.add(reuse._key(repo, "MyStrategy", "libraries"))
    tradai = folder / "tradai.yaml"
    tradai.write_text(tradai.read_text() + "\n")
    keys.add(reuse._key(repo, "MyStrategy", "libraries"))
    assert len(keys) == 5
    assert reuse._key(repo, "MyStrategy", "libraries") == reuse._key(repo, "MyStrategy", "libraries")
    assert reuse._environment_digest() == reuse._environment_digest()


@pytest.mark.slow  # trains a strategy
def test_a_damaged_entry_or_fresh_trains_again_and_replaces_it(
    repo: Path, cache: Path, tmp_path: Path, trained_models: tuple[Path, list[TrainingResult]]
) -> None:
    entry = _seed(cache, repo, trained_models)
    assert train_all_reusing(repo, tmp_path / "a")[1] == ["MyStrategy"]
    (entry / "result.json").write_text("{")  # damaged outside this program
    assert train_all_reusing(repo, tmp_path / "b")[1] == []
    assert json.loads((entry / "result.json").read_text())["features"]  # stored again, whole
    assert train_all_reusing(repo, tmp_path / "c")[1] == ["MyStrategy"]
    assert file_hashes(tmp_path / "c") == file_hashes(tmp_path / "a")
    # a file the store never writes marks the old entry: an inode number would not, since the file
    # system may hand the deleted entry's number to the new one
    (entry / "old-entry").touch()
    assert train_all_reusing(repo, tmp_path / "d", fresh=True)[1] == []  # fresh: trained, stored anew
    assert not (entry / "old-entry").exists() and (entry / "result.json").is_file()
    assert file_hashes(tmp_path / "d") == file_hashes(tmp_path / "a")


def test_only_the_newest_entries_of_a_strategy_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "MyStrategy"
    for age in range(reuse.KEPT + 2):
        entry = folder / f"key{age}"
        entry.mkdir(parents=True)
        os.utime(entry, ns=(10**18 - age * 10**9, 10**18 - age * 10**9))
    (folder / ".writing-xyz").mkdir()  # another process storing an entry: not touched
    reuse._evict(folder)
    newest = [f"key{n}" for n in range(reuse.KEPT)]
    assert sorted(p.name for p in folder.iterdir()) == [".writing-xyz", *newest]


@pytest.mark.slow  # trains a strategy
def test_an_unwritable_cache_only_means_training(repo: Path, tmp_path: Path, unwritable_cache: Path) -> None:
    (result,), reused = train_all_reusing(repo, tmp_path / "a")
    assert reused == [] and (result.model_dir / "signal").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "not-a-directory", "repo"]
