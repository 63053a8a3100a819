"""Bootstrap on a clone of this repository: the committed pins are exactly what it produces."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tradai_release.core.errors import HubError
from tradai_release.core.settings import Settings
from tradai_release.engine.context import ReleaseContext
from tradai_release.workflows.bootstrap import BOOTSTRAP_TAG, bootstrap

REPO_ROOT = Path(__file__).resolve().parents[1]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(target)], check=True)
    return target


@pytest.mark.slow  # trains every strategy
def test_committed_pins_are_what_bootstrap_produces_and_all_envs_apply(clone: Path, tmp_path: Path) -> None:
    from tradai_release.engine.plan import plan_env

    settings = Settings(repo=clone, state_dir=tmp_path / "state")
    result = bootstrap(settings)

    assert result.changed == [], "committed pins disagree with bootstrap: run `invoke bootstrap` and commit"
    assert result.pushed and result.tag == BOOTSTRAP_TAG
    assert result.versions == {env: dict.fromkeys(result.metrics, 1) for env in ("dev", "staging", "prod")}
    assert {env: applied["outcome"] for env, applied in result.applied.items()} == {
        "dev": "succeeded",
        "staging": "succeeded",
        "prod": "succeeded",
    }
    for env in ("dev", "staging", "prod"):
        assert plan_env(ReleaseContext.open(settings, env)).empty
    assert _git(clone, "status", "--porcelain") == ""

    again = bootstrap(settings, envs=["prod"])
    assert again.reused == sorted(result.metrics)  # nothing changed: no strategy is trained again
    assert again.metrics == result.metrics
    assert not again.pushed and again.sha256 == result.sha256
    assert again.versions == {"prod": result.versions["prod"]}  # reused, not registered twice
    assert again.applied["prod"]["actions"] == []


@pytest.mark.slow  # trains every strategy
def test_changed_strategy_rewrites_pins_under_a_new_tag_and_refuses_to_reuse_the_old_tag(
    clone: Path, tmp_path: Path
) -> None:
    settings = Settings(repo=clone, state_dir=tmp_path / "state")
    bootstrap(settings, envs=["dev"], apply=False)

    data = clone / "strategies" / "KeplerStrategy" / "data" / "eth_usdt_1h.csv"
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:-200]) + "\n")  # retrain on a shorter history
    _git(clone, "commit", "-q", "-am", "Kepler: drop the last 200 candles")

    with pytest.raises(HubError, match="exists with other content"):
        bootstrap(settings, envs=["dev"], apply=False)  # Kepler trained again, the other two reused

    result = bootstrap(settings, envs=["dev"], tag="v20261102", commit=True)
    assert result.reused == sorted(result.metrics)  # the failed run stored Kepler
    assert result.pushed and result.versions["dev"]["KeplerStrategy"] == 2
    assert result.changed == [f"releases/dev/profile-{n}.yaml" for n in range(1, 6)]
    assert result.committed == _git(clone, "rev-parse", "HEAD").strip()
    assert "v20261102" in (clone / "releases" / "dev" / "profile-3.yaml").read_text()
    assert result.applied["dev"]["outcome"] == "succeeded"


def test_unknown_env_is_refused_before_anything_is_trained_or_pushed(tmp_path: Path) -> None:
    from tradai_release.core.errors import SettingsError

    settings = Settings(repo=REPO_ROOT, state_dir=tmp_path / "state")
    with pytest.raises(SettingsError, match="unknown environment 'nope'"):
        bootstrap(settings, envs=["dev", "nope"])
    assert not (tmp_path / "state").exists()
