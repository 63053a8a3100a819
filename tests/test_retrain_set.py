"""Retraining fans out: the set across environments (each strategy once), the workflow's matrix from a
task, and ``retrain --all``'s process pool with a failed strategy that does not stop the others."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from retrain_helpers import invoke, make_live_repo, write_window
from tradai_release.core.errors import InputError
from tradai_release.core.settings import Settings
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.repository.environments import environment
from tradai_release.training.result import TrainingResult
from tradai_release.workflows.drift import check_drift
from tradai_release.workflows.retrain_all import _train, retrain_all
from tradai_release.workflows.retrain_check import check_retraining
from tradai_release.workflows.retrain_set import read_checks, retraining_set

ORDER = ("dev", "staging", "prod")


def report(env: str, **needed: list[str]) -> dict[str, Any]:
    """A retrain-check --json report: each named strategy with its reasons (none: not needed)."""
    return {"env": env, "strategies": [{"strategy": name, "needed": bool(reasons), "reasons": reasons}
                                       for name, reasons in needed.items()]}


# --- the set, from the environments' reports ---------------------------------------------------------------


def test_a_strategy_needed_in_several_environments_and_profiles_is_retrained_once() -> None:
    reports = [
        report("dev", A=["model version 3 is 9.0 days old (max 7)"], B=[]),
        report("staging", A=[], B=[]),
        # two profiles of prod run two versions of A: two entries, one strategy, each reason once
        report("prod", A=["significant drift (PSI > 0.25): rsi 0.400"], B=[], C=["requested manually"]),
    ]
    reports[2]["strategies"].append({"strategy": "A", "needed": True,
                                     "reasons": ["significant drift (PSI > 0.25): rsi 0.400"]})
    found = retraining_set(reports, ORDER)
    assert found.retrain == ["A", "C"]
    assert found.to_dict()["strategies"] == [
        {"strategy": "A", "envs": ["dev", "prod"],
         "reasons": {"dev": ["model version 3 is 9.0 days old (max 7)"],
                     "prod": ["significant drift (PSI > 0.25): rsi 0.400"]}, "requested": False},
        {"strategy": "C", "envs": ["prod"], "reasons": {"prod": ["requested manually"]}, "requested": False},
    ]
    assert found.register_env == "dev" and found.checked == ORDER
    assert found.matrix() == {"include": [{"job": "A", "strategies": "A"}, {"job": "C", "strategies": "C"}]}


def test_a_manual_request_adds_strategies_once() -> None:
    reports = [report("dev", A=["model version 3 is 9.0 days old (max 7)"]), report("prod", A=[], B=[])]
    found = retraining_set(reports, ORDER, manual=["A,B"], pinned=["A", "B", "C"])
    assert [(item.strategy, dict(item.reasons), item.requested) for item in found.strategies] == [
        ("A", {"dev": ("model version 3 is 9.0 days old (max 7)",)}, True), ("B", {}, True)]
    assert retraining_set(reports, ORDER, manual=["all"], pinned=["A", "B", "C"]).retrain == ["A", "B", "C"]
    assert retraining_set(reports, ORDER, manual=[""], pinned=["A"]).retrain == ["A"]  # an empty input
    with pytest.raises(InputError) as caught:
        retraining_set(reports, ORDER, manual=["Z"], pinned=["A", "B"])
    assert str(caught.value) == "--manual: strategy: Z is pinned in no manifest (pinned: A, B)"


def test_more_strategies_than_jobs_share_jobs_round_robin() -> None:
    names = {f"S{n:02d}": ["requested manually"] for n in range(7)}
    matrix = retraining_set([report("dev", **names)], ORDER, max_jobs=3).matrix()
    assert matrix == {"include": [
        {"job": "1-of-3", "strategies": "S00 S03 S06"},
        {"job": "2-of-3", "strategies": "S01 S04"},
        {"job": "3-of-3", "strategies": "S02 S05"},
    ]}
    assert retraining_set([report("dev", A=[])], ORDER).matrix() == {"include": []}


@pytest.mark.parametrize(("reports", "max_jobs", "message"), [
    ([report("qa")], 256, "check 1: env: 'qa' is not a declared environment (dev, staging, prod)"),
    ([report("dev"), report("dev")], 256, "check 2: env: dev is checked twice"),
    ([{"env": "dev", "strategies": "A"}], 256, "check 1: strategies: not a list"),
    ([{"env": "dev", "strategies": [{"needed": True}]}], 256, "check 1: strategies: an entry without"),
    ([report("dev")], 0, "retrain-set: --max-jobs: 0 is not between 1 and 256"),
    ([report("dev")], 257, "retrain-set: --max-jobs: 257 is not between 1 and 256"),
])
def test_a_malformed_report_is_one_error(reports: list[dict[str, Any]], max_jobs: int, message: str) -> None:
    with pytest.raises(InputError) as caught:
        retraining_set(reports, ORDER, max_jobs=max_jobs)
    assert str(caught.value).startswith(message)


def test_a_report_file_that_is_not_one(tmp_path: Path) -> None:
    broken = tmp_path / "check-dev.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match=r"check-dev.json: --check: not a JSON report"):
        read_checks([str(broken)])
    with pytest.raises(InputError, match=r"check-dev.json: --check: not a JSON report"):
        read_checks([str(tmp_path)])  # a directory: its check-*.json
    with pytest.raises(InputError, match=r"missing.json: --check: no such file"):
        read_checks([str(tmp_path / "missing.json")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: --check: no check-\*.json in the directory"):
        read_checks([str(tmp_path / "empty")])
    broken.write_text('{"env": "dev", "strategies": []}')
    assert read_checks([str(tmp_path)]) == ([{"env": "dev", "strategies": []}], [str(broken)])


# --- across real environments, and the task the workflow runs ----------------------------------------------


@pytest.fixture
def live(tmp_path: Path, trained_models: tuple[Path, list[TrainingResult]]) -> tuple[Path, Settings]:
    return make_live_repo(tmp_path, *trained_models, "dev", also=("staging", "prod"))


@pytest.mark.slow
def test_drifting_only_in_prod_and_old_only_in_dev_gives_each_strategy_once(
    live: tuple[Path, Settings], tmp_path: Path
) -> None:
    repo, settings = live
    registered = MlflowRegistry.for_env(environment(settings, "dev"), settings).get_version("MyStrategy", 1)
    assert registered.created_at is not None
    now = registered.created_at + timedelta(days=6)
    # dev's job runs with a stricter age limit (its GitHub environment sets TRADAI_RETRAIN_MAX_AGE_DAYS=5);
    # prod's job checks a recent window in which PascalStrategy's market has changed.
    strict = settings.model_copy(update={"retrain_max_age_days": 5})
    window = write_window(tmp_path / "recent.csv", rows=400, vol=0.03)
    drift = check_drift(settings, environment(settings, "prod"), data={"PascalStrategy": window}, state=False)
    checks = [
        check_retraining(strict, environment(strict, "dev"), now=now),
        check_retraining(settings, environment(settings, "staging"), now=now),
        check_retraining(settings, environment(settings, "prod"), drift=drift, now=now),
    ]
    assert [check.retrain for check in checks] == [["MyStrategy"], [], ["PascalStrategy"]]
    files = []
    for check in checks:
        path = tmp_path / f"check-{check.env}.json"
        path.write_text(json.dumps(check.to_dict()))
        files += ["--check", str(path)]

    run = invoke(repo, settings, "retrain-set", *files, "--json")
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert found["retrain"] == ["MyStrategy", "PascalStrategy"] and found["register_env"] == "dev"
    assert [(item["strategy"], item["envs"]) for item in found["strategies"]] == [
        ("MyStrategy", ["dev"]), ("PascalStrategy", ["prod"])]
    assert found["strategies"][0]["reasons"]["dev"] == [
        "model version 1 is 6.0 days old (max 5 from settings retrain_max_age_days)"]
    assert found["strategies"][1]["reasons"]["prod"][0].startswith("significant drift (PSI > 0.25): ")
    assert found["matrix"] == {"include": [{"job": "MyStrategy", "strategies": "MyStrategy"},
                                           {"job": "PascalStrategy", "strategies": "PascalStrategy"}]}
    shared = invoke(repo, settings, "retrain-set", *files, "--max-jobs", "1", "--json")
    assert json.loads(shared.stdout)["matrix"] == {
        "include": [{"job": "1-of-1", "strategies": "MyStrategy PascalStrategy"}]}

    bad = invoke(repo, settings, "retrain-set", "--check", str(tmp_path / "nope.json"))
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope.json'}: --check: no such file"]
    both = invoke(repo, settings, "retrain", "--all", "--strategy", "PascalStrategy")
    assert both.returncode == 1
    assert both.stderr.strip().splitlines() == [
        "error: retrain: --strategy: --all retrains the set the check finds; not both"]


@pytest.mark.slow
def test_retrain_all_trains_in_a_pool_and_a_failed_strategy_does_not_stop_the_others(
    live: tuple[Path, Settings], tmp_path: Path
) -> None:
    """On the committed data retraining reproduces the champions' files (training is deterministic, also in
    a pool process): unchanged, nothing registered or proposed; an unknown strategy fails alone."""
    repo, settings = live
    before = MlflowRegistry.for_env(environment(settings, "dev"), settings).versions(["PascalStrategy"])
    run = retrain_all(settings, ["KeplerStrategy", "NoSuchStrategy", "PascalStrategy"],
                      environment(settings, "dev"), workers=2, send=False)
    assert run.workers == 2
    assert [(r.strategy, r.decision, r.challenger) for r in run.results] == [
        ("KeplerStrategy", "unchanged", None), ("PascalStrategy", "unchanged", None)]
    assert list(run.failed) == ["NoSuchStrategy"]
    assert run.failed["NoSuchStrategy"].startswith("strategies/NoSuchStrategy: --strategy: no such strategy")
    after = MlflowRegistry.for_env(environment(settings, "dev"), settings).versions(["PascalStrategy"])
    assert after == before
    assert run.to_dict()["retrain"] == ["KeplerStrategy", "PascalStrategy", "NoSuchStrategy"]

    # A training that fails in a pool process comes back as one line, not as an exception.
    (repo / "strategies" / "KeplerStrategy" / "ml_config.json").unlink()
    result, error = _train(str(repo), "KeplerStrategy", str(tmp_path / "models"), "HEAD", "t-1")
    assert result is None and error and "\n" not in error
