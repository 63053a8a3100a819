"""Read views (models, rollback-candidates) on the fake registry, and the invoke tasks on SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fake_registry import FakeRegistry
from helpers import invoke
from registry_helpers import apply, training_result
from tradai_release.core.settings import Settings
from tradai_release.registry.lifecycle import (
    ENTERED_TAG,
    LEFT_TAG,
    LIFECYCLE_TAG,
    ProfilePin,
    derive_lifecycle,
)
from tradai_release.registry.registrar import register_training
from tradai_release.registry.views import model_versions, rollback_candidates
from tradai_release.repository.environments import environment

REPO = Path(__file__).resolve().parent.parent


def history() -> FakeRegistry:
    """Versions 1..4; 1 and 2 were Production (2 left later), 3 is Production, 4 never was."""
    registry = FakeRegistry()
    for number in range(1, 5):
        tags = {LIFECYCLE_TAG: "None", "r2_tag": f"s/v{number}", "git_commit": "c" * 40}
        registry.add_version("s", tags=tags, metrics={"sharpe_ratio": float(number)})
    for day, pinned in ((1, 1), (2, 2), (3, 3)):
        desired = derive_lifecycle([ProfilePin(1, "s", pinned)], registry.versions(["s"]),
                                   now=datetime(2026, 1, day, tzinfo=UTC))
        apply(registry, desired)
    return registry


def test_model_versions_newest_first_with_lifecycle_and_aliases() -> None:
    views = model_versions(history(), "s", "prod")
    assert [(v.version, v.lifecycle, v.aliases) for v in views] == [
        (4, "None", ()), (3, "Production", ("p1",)), (2, "Archived", ()), (1, "Archived", ())]
    assert views[0].r2_tag == "s/v4" and views[0].metrics == {"sharpe_ratio": 4.0}
    assert views[1].to_dict()["aliases"] == ["p1"]


def test_rollback_candidates_most_recently_retired_first() -> None:
    candidates = rollback_candidates(history(), "s", "prod")
    assert [(c.version, c.left_at) for c in candidates] == [
        (2, "2026-01-03T00:00:00+00:00"), (1, "2026-01-02T00:00:00+00:00")]
    assert candidates[0].entered_at == "2026-01-02T00:00:00+00:00"
    assert candidates[0].to_dict()["production_left_at"] == "2026-01-03T00:00:00+00:00"


def test_views_of_an_unknown_model_are_empty() -> None:
    assert model_versions(FakeRegistry(), "nothing", "dev") == ()
    assert rollback_candidates(FakeRegistry(), "nothing", "dev") == ()


def test_a_live_version_is_not_a_rollback_candidate() -> None:
    registry = FakeRegistry()
    registry.add_version("s", tags={ENTERED_TAG: "2026-01-01T00:00:00+00:00", LIFECYCLE_TAG: "Production"})
    registry.add_version("s", tags={ENTERED_TAG: "2026-01-01T00:00:00+00:00", LEFT_TAG: "x",
                                    LIFECYCLE_TAG: "Archived"})
    assert [c.version for c in rollback_candidates(registry, "s", "dev")] == [2]


def test_models_and_rollback_candidates_tasks(tmp_path: Path, isolated_environment: Path) -> None:
    settings = Settings()
    assert settings.state_dir == isolated_environment
    result = training_result(tmp_path)
    register_training(settings, result, r2_tag="t-1", envs=[environment(settings, "dev")])

    listed = invoke(REPO, "models", "--strategy", result.strategy_name, "--env", "dev", "--json")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert [(v["env"], v["version"], v["lifecycle"], v["r2_tag"]) for v in document["versions"]] == [
        ("dev", 1, "None", "t-1")]
    assert document["versions"][0]["metrics"]["total_trades"] == 42.0

    table = invoke(REPO, "models", "--strategy", result.strategy_name)
    assert table.returncode == 0, table.stderr
    assert "t-1" in table.stdout and "None" in table.stdout

    empty = invoke(REPO, "rollback-candidates", "--strategy", result.strategy_name, "--env", "dev", "--json")
    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout)["candidates"] == []
    text = invoke(REPO, "rollback-candidates", "--strategy", result.strategy_name, "--env", "prod")
    assert "no rollback candidates" in text.stdout
    assert not (isolated_environment / "prod" / "mlflow.db").exists()  # reading created nothing


def test_tasks_reject_bad_input() -> None:
    missing = invoke(REPO, "models")
    assert missing.returncode == 1 and missing.stderr == "error: models: --strategy: required " \
        "(the strategy whose model versions to list)\n"
    bad_env = invoke(REPO, "rollback-candidates", "--strategy", "s", "--env", "qa")
    assert bad_env.returncode == 1 and bad_env.stderr.startswith("error: settings: env: unknown environment")
    no_env = invoke(REPO, "rollback-candidates", "--strategy", "s")
    assert no_env.returncode == 1 and "--env: required" in no_env.stderr
