"""promote: pin edits in a real git repo in tmp_path against MLflow on a temporary SQLite registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import copy_project_repo, git, invoke
from registry_helpers import training_result
from tradai_release.core.errors import InputError, SettingsError
from tradai_release.core.settings import Settings
from tradai_release.engine.actions import SetAlias
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.registry.lifecycle import ENTERED_TAG
from tradai_release.registry.registrar import ModelRegistrar
from tradai_release.repository.environments import environment
from tradai_release.workflows.promote import Promotion, promote

STRATEGY = "PascalStrategy"
P3 = "releases/prod/profile-3.yaml"

# v1: the live champion (was Production); v2 beats it; v3 fails a required threshold; v4 lacks trades.
BETTER = {"total_profit": 300.0, "sharpe_ratio": 2.0, "max_drawdown": 0.08, "win_rate": 0.6,
          "total_trades": 80.0}
WORSE = {"sharpe_ratio": 0.2}
THIN = {"total_trades": 3.0}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An MLflow registry on SQLite: PascalStrategy v1..v4 (v1 was Production), the others v1."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = MlflowRegistry(uri, str(root / "artifacts"))
    registrar = ModelRegistrar(registry)
    for metrics in ({}, BETTER, WORSE, THIN):
        registrar.register(training_result(root, STRATEGY, **metrics), r2_tag="v20261101")
    for other in ("KeplerStrategy", "MyStrategy"):  # the other pins of the manifests, for the plan
        registrar.register(training_result(root, other), r2_tag="v20261101")
    registry.set_version_tag(STRATEGY, 1, ENTERED_TAG, "2026-11-01T00:00:00+00:00")
    yield uri


@pytest.fixture
def repo(tmp_path: Path, tracking: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with this project's strategies/ and releases/, one commit on main."""
    repo = copy_project_repo(tmp_path / "repo", "initial")
    monkeypatch.setenv("TRADAI_REPO", str(repo))
    monkeypatch.setenv("TRADAI_MLFLOW_TRACKING_URI", tracking)
    return repo


def snapshot(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): p.read_text() for p in sorted((repo / "releases").rglob("*.yaml"))}


def run_promote(repo: Path, **kwargs: object) -> Promotion:
    args = {"stage": "Production", "plan": False, **kwargs}
    env = str(args.pop("env", "prod"))
    profile = args.pop("profile", "3")
    version = args.pop("version", 2)
    return promote(Settings(), environment(Settings(), env), profile, STRATEGY, version, repo=repo, **args)


def test_promote_forward_in_prod_edits_the_pin_keeps_comments_and_shows_the_comparison(repo: Path) -> None:
    before = (repo / P3).read_text()
    result = run_promote(repo)
    after = (repo / P3).read_text()
    old = "      name: PascalStrategy\n      production: 1\n"
    new = "      name: PascalStrategy\n      production: 2\n"
    assert after == before.replace(old, new)
    assert after.startswith("# Release manifest: what is live for risk profile 3 in prod.")
    assert "# model-hub tag (immutable)" in after
    assert [c.to_dict() for c in result.changes] == [
        {"path": P3, "field": f"strategies.{STRATEGY}.model.production", "old": 1, "new": 2}]
    (check,) = result.checks
    assert check.comparison is not None
    seen = (check.profile, check.champion, check.challenger, check.comparison.decision)
    assert seen == (3, 1, 2, "promote")
    assert {row.metric: (row.challenger, row.champion) for row in check.comparison.rows}["sharpe_ratio"] == (
        2.0, 1.3)
    assert result.blocked is None and result.commit is None
    assert git(repo, "status", "--porcelain") == f"M {P3}"


def test_comparator_keep_blocks_and_writes_nothing(repo: Path) -> None:
    before = snapshot(repo)
    result = run_promote(repo, version=3)
    assert result.blocked is not None
    assert "the comparator says keep" in result.blocked and "--override-reason" in result.blocked
    assert result.checks[0].comparison.decision == "keep"
    assert snapshot(repo) == before


def test_insufficient_data_is_manual_review_and_blocks(repo: Path) -> None:
    result = run_promote(repo, version=4)
    assert result.checks[0].comparison.decision == "manual-review"
    assert result.blocked is not None


def test_override_records_who_and_why(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADAI_ACTOR", "alice")
    result = run_promote(repo, version=3, override_reason="regime change, approved in risk review")
    assert result.blocked is None
    text = (repo / P3).read_text()
    assert ("      production: 3\n      override:\n        approved_by: alice\n"
            "        reason: regime change, approved in risk review\n") in text
    from tradai_release.repository.tree import WorkTree, load_release_repo

    loaded = load_release_repo(WorkTree(repo))
    assert not loaded.problems
    pin = loaded.manifests[("prod", 3)].strategies[STRATEGY].model
    assert pin.override is not None and pin.override.approved_by == "alice"


def test_override_defaults_to_the_git_identity(repo: Path) -> None:
    run_promote(repo, version=3, override_reason="ok")
    assert "approved_by: tradai-test <test@example.invalid>" in (repo / P3).read_text()


def test_moving_back_to_a_former_production_version_needs_no_comparison(repo: Path) -> None:
    run_promote(repo, version=2)
    git(repo, "commit", "-qam", "v2 live")
    result = run_promote(repo, version=1)
    (check,) = result.checks
    assert check.rollback and check.comparison is None and result.blocked is None


def test_no_comparator_outside_prod_and_all_profiles(repo: Path) -> None:
    result = run_promote(repo, env="dev", profile="all", version=3)
    assert result.checks == () and result.profiles == (1, 2, 3, 4, 5)
    for profile in range(1, 6):
        assert "      name: PascalStrategy\n      production: 3\n" in (
            repo / f"releases/dev/profile-{profile}.yaml").read_text()


def test_staging_pin_then_graduating_it_removes_the_staging_pin(repo: Path) -> None:
    run_promote(repo, stage="staging", version=2)
    assert "      production: 1\n      staging: 2\n" in (repo / P3).read_text()
    result = run_promote(repo, version=2)
    fields = {c.field: (c.old, c.new) for c in result.changes}
    assert fields[f"strategies.{STRATEGY}.model.staging"] == (2, None)
    assert "staging:" not in (repo / P3).read_text()


def test_no_archive_records_the_replaced_version(repo: Path) -> None:
    run_promote(repo, version=2, no_archive=True)
    assert "      production: 2\n      keep_production: [1]\n" in (repo / P3).read_text()
    from tradai_release.repository.tree import WorkTree, load_release_repo

    loaded = load_release_repo(WorkTree(repo))
    assert not loaded.problems
    assert loaded.manifests[("prod", 3)].strategies[STRATEGY].model.keep_production == (1,)


def test_config_pins_of_the_env_are_refreshed(repo: Path) -> None:
    tradai = repo / "strategies" / STRATEGY / "tradai.yaml"
    tradai.write_text(tradai.read_text().replace("stake_amount: 2500", "stake_amount: 1500"))
    assert "stake_amount: 1500" in tradai.read_text()
    result = run_promote(repo, version=2)
    refreshed = [c.path for c in result.changes if c.field.endswith(".config")]
    assert refreshed == [f"releases/prod/profile-{p}.yaml" for p in range(1, 6)]
    assert "releases/dev/profile-1.yaml" not in git(repo, "status", "--porcelain")


def test_commit_creates_a_branch_and_never_touches_main(repo: Path) -> None:
    main = git(repo, "rev-parse", "main")
    result = run_promote(repo, version=2, commit=True)
    branch = f"release/prod-{STRATEGY}-v2-{main[:7]}"
    assert result.branch == branch
    assert git(repo, "rev-parse", "main") == main
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == branch
    assert git(repo, "rev-parse", "HEAD") == result.commit
    assert git(repo, "rev-parse", "HEAD^") == main
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith(f"Promote {STRATEGY} v2 to Production in prod profile 3\n")
    assert f"{P3}: strategies.{STRATEGY}.model.production 1 -> 2" in message
    assert "comparator, profile 3, champion v1: promote" in message
    assert git(repo, "diff", "--name-only", "main", "HEAD") == P3
    assert git(repo, "status", "--porcelain") == ""


def test_commit_refuses_a_dirty_manifest(repo: Path) -> None:
    (repo / P3).write_text((repo / P3).read_text() + "# a local note\n")
    before = snapshot(repo)
    with pytest.raises(InputError, match="uncommitted changes"):
        run_promote(repo, version=2, commit=True)
    assert snapshot(repo) == before
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(repo, "branch", "--list", "release/*") == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": 9}, "version 9 of registered model 'PascalStrategy' is not in the prod registry"),
        ({"version": "x"}, "is not a model version number"),
        ({"profile": "7"}, "unknown profile 7 (prod has profiles 1, 2, 3, 4, 5)"),
        ({"profile": "x"}, "'x' is not a profile number"),
        ({"stage": "Canary"}, "unknown stage 'Canary'"),
        ({"stage": "Staging", "no_archive": True}, "only applies to --stage Production"),
        ({"version": 1}, "already pins PascalStrategy production v1; nothing to change"),
        ({"stage": "Staging", "version": 1}, "version 1 is already the production pin"),
    ],
)
def test_bad_inputs_change_nothing(repo: Path, kwargs: dict[str, object], message: str) -> None:
    before = snapshot(repo)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_promote(repo, **kwargs)
    assert snapshot(repo) == before


def test_unknown_strategy_and_env(repo: Path) -> None:
    with pytest.raises(InputError, match="no such strategy"):
        promote(Settings(), environment(Settings(), "prod"), "3", "Nope", 2, repo=repo, plan=False)
    with pytest.raises(SettingsError, match="unknown environment"):
        promote(Settings(), environment(Settings(), "qa"), "3", STRATEGY, 2, repo=repo, plan=False)


def test_plan_of_the_edit_is_shown(repo: Path) -> None:
    result = run_promote(repo, version=2, plan=True)
    assert result.plan_error is None, result.plan_error
    plan = result.plan
    assert plan is not None and plan.env == "prod"
    assert any(isinstance(a, SetAlias) and a.alias == "p3" and a.version == 2
               for a in plan.actions)
    assert git(repo, "status", "--porcelain") == f"M {P3}"  # the preview commit moved no ref
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_task_json_and_blocked_exit(repo: Path) -> None:
    done = invoke(repo, "promote", "--env", "prod", "--profile", "3", "--strategy", STRATEGY,
                  "--version", "2", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["changes"][0]["new"] == 2 and document["comparisons"][0]["decision"] == "promote"
    assert document["written"] is True

    git(repo, "checkout", "-q", "--", P3)
    blocked = invoke(repo, "promote", "-e", "prod", "-p", "3", "-s", STRATEGY, "-v", "3")
    assert blocked.returncode == 1
    assert blocked.stderr.startswith(f"error: {P3}: strategies.{STRATEGY}.model.production: the comparator "
                                     "says keep")
    assert blocked.stderr.count("\n") == 1
    assert "sharpe_ratio" in blocked.stdout and "decision: keep" in blocked.stdout
    assert git(repo, "status", "--porcelain") == ""


def test_task_bad_input_is_one_line(repo: Path) -> None:
    done = invoke(repo, "promote", "--env", "prod", "--profile", "3", "--strategy", STRATEGY)
    assert (done.returncode, done.stderr) == (1, "error: promote: --version: required\n")
    done = invoke(repo, "promote", "-e", "prod", "-p", "3", "-s", STRATEGY, "-v", "42")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "version 42 of registered model" in done.stderr
    assert git(repo, "status", "--porcelain") == ""
