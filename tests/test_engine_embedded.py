"""The release loop on the embedded default (SQLite, local directories, MLflow on SQLite), end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine_helpers import (
    commit_all,
    counted_from_settings,
    embedded_repo,
    git,
    set_production,
)
from helpers import invoke
from tradai_release.core.settings import Settings
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.deployments import list_deployments
from tradai_release.engine.plan import plan_env
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.registry.lifecycle import current_lifecycle
from tradai_release.repository.environments import environment
from tradai_release.workflows.validate import validate_repository


def lifecycle_of(registry: MlflowRegistry, name: str) -> dict[int, tuple[str, str, tuple[str, ...]]]:
    return {i.version: (current_lifecycle(i), i.stage, i.aliases) for i in registry.versions([name])[name]}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return embedded_repo(tmp_path, 2)


def test_apply_revert_and_drift_on_the_embedded_default(repo: Path) -> None:
    settings = Settings(repo=repo)
    registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)

    report = validate_repository(repo, offline=False, settings=settings)
    dev_problems = [p for p in report.problems if "/dev/" in p.file]
    assert dev_problems == []  # staging/prod registries are empty here, dev is complete

    first = apply_env(ReleaseContext.open(settings, "dev"), actor="ci")
    assert first.outcome == "succeeded"
    assert plan_env(ReleaseContext.open(settings, "dev")).empty
    counted = counted_from_settings(settings, "dev")
    again = apply_env(ReleaseContext.open(settings, "dev", backends=counted.backends))
    assert again.outcome == "noop" and counted.writes == 0
    assert lifecycle_of(registry, "PascalStrategy")[1][:2] == ("Production", "Production")

    set_production(repo, "dev", "PascalStrategy", 2)
    promoted = commit_all(repo, "promote PascalStrategy v2 in dev")
    apply_env(ReleaseContext.open(settings, "dev"))
    state = lifecycle_of(registry, "PascalStrategy")
    assert state[2][:2] == ("Production", "Production") and "p1" in state[2][2]
    assert state[1][:2] == ("Archived", "Archived") and state[1][2] == ()

    git(repo, "revert", "--no-edit", promoted)
    apply_env(ReleaseContext.open(settings, "dev"))
    state = lifecycle_of(registry, "PascalStrategy")
    assert state[1][:2] == ("Production", "Production") and "p1" in state[1][2]
    assert state[2][:2] == ("Archived", "Archived")

    registry.set_alias("PascalStrategy", "p1", 2)  # someone moves the alias in the MLflow UI
    plan = plan_env(ReleaseContext.open(settings, "dev"))
    assert [(d.kind, d.target) for d in plan.drift] == [("alias", "PascalStrategy@p1")]
    apply_env(ReleaseContext.open(settings, "dev"))
    assert "p1" in lifecycle_of(registry, "PascalStrategy")[1][2]
    assert plan_env(ReleaseContext.open(settings, "dev")).empty

    history = list_deployments(settings, environment(settings, "dev"))
    assert [d.outcome for d in history] == ["succeeded"] * 4
    assert history[-1].deployment_id == first.deployment_id and history[-1].actor == "ci"


def test_plan_and_apply_tasks(repo: Path) -> None:
    done = invoke(repo, "plan", "--env", "dev", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {"env", "commit", "actions", "drift", "orphans", "prune"} and data["actions"]

    done = invoke(repo, "apply", "--env", "dev", "--dry-run")
    assert done.returncode == 0 and "activate_config" in done.stdout
    # the dry run wrote nothing (checked in this process: the tasks' own output is what is under test)
    settings = Settings(repo=repo)
    replanned = plan_env(ReleaseContext.open(settings, "dev")).to_dict()
    assert targets(replanned) == targets(data)

    done = invoke(repo, "apply", "--env", "dev", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"env", "commit", "deployment_id", "outcome", "actions"}
    assert result["outcome"] == "succeeded"

    assert plan_env(ReleaseContext.open(settings, "dev")).empty
    done = invoke(repo, "plan", "--env", "dev", "--format", "markdown")
    assert "In sync" in done.stdout

    done = invoke(repo, "apply", "--env", "qa")
    assert done.returncode == 1 and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
    done = invoke(repo, "plan", "--env", "dev", "--format", "yaml")
    assert done.returncode == 1 and "--format" in done.stderr
    done = invoke(repo, "apply", "--env", "dev", "--commit", "no-such-ref")
    assert done.returncode == 1 and done.stderr.startswith("error: git: no-such-ref")


def targets(plan: dict[str, Any]) -> list[tuple[str, str]]:
    return [(action["kind"], action["target"]) for action in plan["actions"]]
