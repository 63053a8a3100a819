"""Environments and profiles are the repository's: releases/policy.yaml and the manifest files, not code."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_helpers import TAG, commit_all, make_repo, push_tag, seed_registry
from helpers import invoke
from tradai_release.core.errors import InputError, UnknownEnvironment
from tradai_release.core.settings import Settings
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.plan import plan_env
from tradai_release.hub.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.repository.environments import environment, environments
from tradai_release.repository.tree import ReleaseTree
from tradai_release.workflows.validate import validate_repository


def copy_manifest(repo: Path, source: tuple[str, int], target: tuple[str, int]) -> None:
    """``releases/<env>/profile-<N>.yaml`` copied to another env / profile (its fields follow the path)."""
    text = (repo / "releases" / source[0] / f"profile-{source[1]}.yaml").read_text()
    text = text.replace(f"environment: {source[0]}\n", f"environment: {target[0]}\n")
    text = text.replace(f"profile: {source[1]}\n", f"profile: {target[1]}\n")
    path = repo / "releases" / target[0] / f"profile-{target[1]}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)


@pytest.fixture
def paper(tmp_path: Path) -> Path:
    """A release repository that adds a ``paper`` environment after dev and a sixth dev profile."""
    sha = push_tag(ModelHub.from_settings(Settings()), tmp_path)
    repo = make_repo(tmp_path, TAG, sha)
    (repo / "releases" / "policy.yaml").write_text(
        "# Promotion order: a change reaches dev first, then paper trading, then staging and prod.\n"
        "environments: [dev, paper, staging, prod]\n"
    )
    copy_manifest(repo, ("dev", 1), ("paper", 1))
    copy_manifest(repo, ("dev", 3), ("paper", 2))
    copy_manifest(repo, ("dev", 5), ("dev", 6))
    commit_all(repo, "paper trading between dev and staging; a sixth risk profile in dev")
    return repo


def test_the_order_and_the_profiles_come_from_the_repository(paper: Path) -> None:
    settings = Settings(repo=paper)
    assert [env.name for env in environments(settings)] == ["dev", "paper", "staging", "prod"]
    target = environment(settings, "paper")
    assert (target.position, target.previous, target.gated) == (1, "dev", False)
    assert environment(settings, "prod").gated and environment(settings, "dev").previous is None
    assert target.backends.mlflow_tracking_uri.endswith("/paper/mlflow.db")
    tree = ReleaseTree.work(paper)
    assert tree.profiles("dev") == [1, 2, 3, 4, 5, 6] and tree.profiles("paper") == [1, 2]
    with pytest.raises(InputError, match=r"unknown profile 3 \(paper has profiles 1, 2\)"):
        tree.profile("paper", "3")
    with pytest.raises(UnknownEnvironment, match=r"unknown environment 'qa' \(expected one of dev, paper"):
        environment(settings, "qa")


def test_a_declared_paper_environment_validates_plans_and_applies(paper: Path) -> None:
    settings = Settings(repo=paper)
    seed_registry(settings, "paper", 1)
    seed_registry(settings, "dev", 1)

    offline = validate_repository(paper, offline=True)
    assert offline.ok, offline.problems
    assert offline.manifests == 18
    live = validate_repository(paper, offline=False, settings=settings)
    checked = {p.file.split("/")[1] for p in live.problems}
    assert checked <= {"staging", "prod"}  # their registries are empty here; dev and paper are complete

    plan = plan_env(ReleaseContext.open(settings, "paper"))
    pointers = sorted(a.target for a in plan.actions if a.kind == "write_profile_pointer")
    assert pointers == ["paper/profile-1", "paper/profile-2"]
    deployment = apply_env(ReleaseContext.open(settings, "paper"), actor="ci")
    assert deployment.outcome == "succeeded"
    assert plan_env(ReleaseContext.open(settings, "paper")).empty
    pointer = ModelHub.from_settings(settings).get_profile_pointer("paper", 2)
    assert pointer is not None and pointer.tag == TAG
    paper_registry = MlflowRegistry.for_env(environment(settings, "paper"), settings)
    assert set(paper_registry.versions(["PascalStrategy"])["PascalStrategy"][0].aliases) == {"p1", "p2"}

    dev = apply_env(
        ReleaseContext.open(settings, "dev"), actor="ci"
    )  # the sixth profile is one more alias, nothing else
    assert dev.outcome == "succeeded"
    dev_registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)
    assert "p6" in dev_registry.versions(["PascalStrategy"])["PascalStrategy"][0].aliases


def test_an_undeclared_directory_under_releases_is_one_error_line(paper: Path) -> None:
    copy_manifest(paper, ("dev", 1), ("qa", 1))
    done = invoke(paper, "validate", "--offline")
    assert done.returncode == 1
    assert done.stderr == (
        "error: releases/qa: environment: environment 'qa' is not declared in releases/policy.yaml "
        "(dev, paper, staging, prod)\n"
    )
    planned = invoke(paper, "plan", "--env", "qa")
    assert planned.returncode == 1
    assert planned.stderr == "error: settings: env: unknown environment 'qa' (expected one of dev, paper, " \
                             "staging, prod)\n"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("environments: [dev, Prod]\n", 'releases/policy.yaml:1: environments[1]: "Prod" does not match'),
        ("environments: [dev, dev]\n", "releases/policy.yaml:1: environments: ['dev', 'dev'] has non-unique"),
        ("stages: [dev]\n", "releases/policy.yaml:1: stages: unknown key"),
        ("environments: []\n", "releases/policy.yaml:1: environments: [] should be non-empty"),
    ],
)
def test_a_bad_policy_is_one_error_line_and_nothing_runs(paper: Path, policy: str, message: str) -> None:
    (paper / "releases" / "policy.yaml").write_text(policy)
    done = invoke(paper, "validate", "--offline")
    assert done.returncode == 1 and done.stderr.startswith(f"error: {message}"), done.stderr
    planned = invoke(paper, "plan", "--env", "dev")
    assert planned.returncode == 1 and planned.stderr.count("\n") == 1
    assert planned.stderr.startswith("error: releases/policy.yaml"), planned.stderr
