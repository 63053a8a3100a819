"""Retraining: the check (drift, age, manual) and retrain -> compare -> propose, end to end in git repos."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from fake_registry import FakeRegistry
from retrain_helpers import (
    BETTER,
    CREATED_AT,
    TAG,
    WORSE,
    append_shifted,
    commit_all,
    data_path,
    git,
    invoke,
    make_live_repo,
    with_metrics,
)
from tradai_release.core.clock import parse_stamp, stamp
from tradai_release.core.errors import InputError
from tradai_release.core.settings import Settings
from tradai_release.domain.monitor.scores import SIGNIFICANT
from tradai_release.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.repository.environments import environment
from tradai_release.repository.gitrepo import GitTree
from tradai_release.repository.tree import load_release_repo
from tradai_release.training.result import TrainingResult
from tradai_release.workflows.drift import check_drift, monitor
from tradai_release.workflows.retrain import DECISION_TAG, parse_profiles, retrain
from tradai_release.workflows.retrain_check import check_retraining
from webhook_server import Webhook, serve


@pytest.fixture(scope="module")
def trained(trained_models: tuple[Path, list[TrainingResult]]) -> tuple[Path, list[TrainingResult]]:
    """Every strategy trained once per run (conftest's trained_models; read-only)."""
    return trained_models


@pytest.fixture
def live(tmp_path: Path, trained: tuple[Path, list[TrainingResult]]) -> tuple[Path, Settings]:
    repo, settings = make_live_repo(tmp_path, *trained)
    return repo, settings.model_copy(update={"notify_backoff_seconds": 0.01})


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with serve() as server:
        yield server


def trainer(**metrics: float) -> Any:
    from tradai_release.training import train_strategy

    return with_metrics(train_strategy, **metrics)


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--list", "retrain/*", "--format=%(refname:short)").split()


def hooked(settings: Settings, hook: Webhook) -> Settings:
    return settings.model_copy(update={"webhook_url": SecretStr(hook.url)})


# --- end to end --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_shifted_data_drift_retrain_proposes_a_branch(live: tuple[Path, Settings], hook: Webhook) -> None:
    repo, settings = live
    settings = hooked(settings, hook)
    append_shifted(repo, "PascalStrategy", rows=600, vol=0.02)
    base = commit_all(repo, "PascalStrategy: 600 new candles (a volatile regime)")
    hub = ModelHub.from_settings(settings)
    latest_before = hub.get_latest()

    report = monitor(settings, environment(settings, "dev"), state=False)
    pascal = next(item for item in report.strategies if item.strategy == "PascalStrategy")
    assert pascal.level == SIGNIFICANT and report.notified
    check = check_retraining(settings, environment(settings, "dev"), drift=report)
    assert "PascalStrategy" in check.retrain
    reasons = next(item for item in check.strategies if item.strategy == "PascalStrategy").reasons
    assert any(reason.startswith("significant drift (PSI > 0.25): ") for reason in reasons)

    result = retrain(settings, "PascalStrategy", environment(settings, "dev"), trainer=trainer(**BETTER))

    assert result.proposed and result.challenger == 2
    assert result.branch == "retrain/dev-PascalStrategy-v2"
    assert branches(repo) == ["retrain/dev-PascalStrategy-v2"]
    assert result.promoted_profiles == [1, 2, 3, 4, 5]
    # Nothing checked out moved: HEAD, branch, index and working tree are as they were.
    assert git(repo, "rev-parse", "HEAD") == base
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(repo, "status", "--porcelain") == ""
    # The branch is one commit on top of main that moves the pins and nothing else.
    assert git(repo, "rev-parse", f"{result.branch}~1") == base
    changed = git(repo, "diff", "--name-only", base, result.branch).split()
    assert changed == [f"releases/dev/profile-{n}.yaml" for n in range(1, 6)]
    diff = git(repo, "diff", base, result.branch, "--", "releases/dev/profile-3.yaml")
    new_tag, new_sha = result.tags[TAG]
    assert "-      production: 1\n+      production: 2" in diff
    assert f"+  tag: {new_tag}" in diff and f'+  sha256: "{new_sha}"' in diff
    assert diff.count("production:") == 2  # Kepler and MyStrategy keep their pins
    with GitTree(repo, result.branch) as tree:
        proposed = load_release_repo(tree)
    proposed.require_valid()
    pin = proposed.manifests[("dev", 3)].strategies
    assert pin["PascalStrategy"].model.production == 2 and pin["KeplerStrategy"].model.production == 1
    # The commit message is the pull-request body: title and the comparison table.
    message = git(repo, "log", "-1", "--format=%B", result.branch)
    assert message.startswith("retrain: promote PascalStrategy v2 in dev (profiles 1, 2, 3, 4, 5)\n")
    assert "| metric | challenger | champion | threshold | required | pass |" in message
    assert "| total_profit | 200.00 % |" in message and "-> **promote**" in message
    assert "challenger beats champion on weighted score" in message

    # The new tag holds the challenger's files for Pascal and the source tag's files for the others.
    source, composed = hub.read_tag(TAG), hub.read_tag(new_tag, expected_sha256=new_sha)
    assert composed.source_tag == TAG and set(composed.files) == set(source.files)
    for path, entry in composed.files.items():
        same = source.files[path] == entry
        if path.startswith("PascalStrategy/") and path.endswith(("metadata.json", ".onnx")):
            assert not same, path
        elif not path.startswith("PascalStrategy/"):
            assert same, path
    assert hub.verify_tag(new_tag, new_sha) == []
    assert hub.get_latest() == latest_before  # a proposal does not become `latest`

    version = MlflowRegistry.for_env(environment(settings, "dev"), settings).get_version("PascalStrategy", 2)
    assert version.tags["r2_tag"] == new_tag and version.tags[DECISION_TAG] == "promote"
    assert version.metrics["total_profit"] == BETTER["total_profit"]

    events = [body["text"].split(":", 1)[0] for body in hook.bodies]
    assert events == ["Drift found", "Retraining proposed"]
    assert result.branch in json.dumps(hook.bodies[-1])


@pytest.mark.slow
def test_worse_challenger_is_not_proposed(live: tuple[Path, Settings], hook: Webhook) -> None:
    repo, settings = live
    settings = hooked(settings, hook)
    result = retrain(settings, "KeplerStrategy", environment(settings, "dev"), trainer=trainer(**WORSE))
    assert not result.proposed and result.branch is None and result.commit is None
    assert branches(repo) == []
    assert [v.comparison.decision for v in result.verdicts] == ["keep"] * 4
    assert (
        result.reasons[0]
        == "profiles 2, 3, 4, 5 (champion v1): keep: total_profit = -0.6 fails total_profit > 0"
    )
    data = result.to_dict()
    assert data["proposed"] is False and data["promoted_profiles"] == [] and data["reasons"] == result.reasons
    version = MlflowRegistry.for_env(environment(settings, "dev"), settings).get_version("KeplerStrategy", 2)
    assert version.tags[DECISION_TAG] == "keep"
    assert "total_profit = -0.6 fails" in version.tags["retrain.reasons"]
    assert len(hook.bodies) == 1
    assert hook.bodies[0]["text"].startswith("Retraining: champion kept, nothing proposed: KeplerStrategy v2")
    assert "max_drawdown = 0.65 fails" in json.dumps(hook.bodies[0])


@pytest.mark.slow
def test_too_few_trades_is_manual_review_and_not_proposed(live: tuple[Path, Settings]) -> None:
    repo, settings = live
    result = retrain(
        settings,
        "MyStrategy",
        environment(settings, "dev"),
        profiles=[3],
        trainer=trainer(**{**BETTER, "total_trades": 4.0}),
    )
    assert not result.proposed and branches(repo) == []
    assert [(v.profile, v.comparison.decision) for v in result.verdicts] == [(3, "manual-review")]
    assert "insufficient data" in result.reasons[0]


@pytest.mark.slow
def test_one_profile_only_and_the_same_proposal_again(live: tuple[Path, Settings], hook: Webhook) -> None:
    repo, settings = live
    settings = hooked(settings, hook)
    result = retrain(
        settings, "PascalStrategy", environment(settings, "dev"), profiles=[2], trainer=trainer(**BETTER)
    )
    assert result.promoted_profiles == [2] and result.challenger == 2 and not result.duplicate
    assert git(repo, "diff", "--name-only", "HEAD", str(result.branch)).split() == [
        "releases/dev/profile-2.yaml"
    ]
    assert "(profile 2)" in result.message.splitlines()[0]
    assert len(hook.bodies) == 1

    # The branch is not merged yet and the next run trains the same files: the challenger is v2 again
    # (a duplicate, no v3) and its branch is left as it is, not written twice nor refused.
    again = retrain(
        settings, "PascalStrategy", environment(settings, "dev"), profiles=[2], trainer=trainer(**BETTER)
    )
    assert again.challenger == 2 and again.duplicate and again.already_proposed
    assert (again.branch, again.commit) == (result.branch, result.commit)
    assert branches(repo) == [result.branch]
    assert again.message == result.message and again.to_dict()["already_proposed"] is True
    pascal = MlflowRegistry.for_env(environment(settings, "dev"), settings).versions(["PascalStrategy"])[
        "PascalStrategy"
    ]
    assert [v.version for v in pascal] == [1, 2]
    assert not again.notified and len(hook.bodies) == 1  # the first proposal was notified


@pytest.mark.slow
def test_retrain_moves_pins_with_promotes_rules(live: tuple[Path, Settings]) -> None:
    """The proposal is the edit ``promote`` makes for the same move: the champion's override is dropped
    with its pin, keep_production follows promote's rule, and the strategy's config pin is refreshed in
    every manifest of the environment that pins it."""
    from tradai_release.repository.manifest_edit import edit_manifest
    from tradai_release.workflows.promote import promote

    repo, settings = live
    tradai = repo / "strategies" / "KeplerStrategy" / "tradai.yaml"
    tradai.write_text(tradai.read_text().replace("stake_amount: 1500", "stake_amount: 900"))
    assert "stake_amount: 900" in tradai.read_text()  # config pins are now stale: neither edit ignores them
    with edit_manifest(repo / "releases/dev/profile-3.yaml") as editor:
        editor.set_override("KeplerStrategy", "alice", "v1 approved in the November review")
        editor.set_keep_production("KeplerStrategy", [1])
    base = commit_all(repo, "Kepler: smaller stakes; profile 3 keeps a note and an approval of v1")

    result = retrain(
        settings,
        "KeplerStrategy",
        environment(settings, "dev"),
        profiles=[3],
        trainer=trainer(**BETTER),
        send=False,
    )
    assert result.proposed and result.promoted_profiles == [3]
    proposed = git(repo, "diff", "--name-only", base, result.branch).split()
    pinning = [f"releases/dev/profile-{n}.yaml" for n in range(1, 6)
               if "KeplerStrategy" in (repo / f"releases/dev/profile-{n}.yaml").read_text()]
    assert proposed == pinning and len(pinning) > 1  # the config pin, in every profile pinning Kepler

    # The same move by promote, in the working tree (v2 is registered now, its tag is the challenger's).
    moved = promote(
        settings, environment(settings, "dev"), 3, "KeplerStrategy", result.challenger, plan=False
    )
    assert moved.blocked is None
    for path in proposed:
        assert (repo / path).read_text().strip() == git(repo, "show", f"{result.branch}:{path}"), path
    text = (repo / "releases/dev/profile-3.yaml").read_text()
    assert "override" not in text and "keep_production: [1]" in text
    fields = {c.field for c in moved.changes if c.path.endswith("profile-3.yaml")}
    assert "strategies.KeplerStrategy.model.override" in fields


def registry_state(settings: Settings) -> dict[str, list[tuple[int, dict[str, str]]]]:
    names = ["KeplerStrategy", "MyStrategy", "PascalStrategy"]
    listed = MlflowRegistry.for_env(environment(settings, "dev"), settings).versions(names)
    return {name: [(v.version, dict(v.tags)) for v in versions] for name, versions in listed.items()}


@pytest.mark.slow
def test_retrain_on_committed_data_is_unchanged(live: tuple[Path, Settings], hook: Webhook) -> None:
    """Training on the committed candles reproduces the champion's files byte for byte: nothing is
    pushed, registered, tagged or proposed, and the outcome says so."""
    repo, settings = live
    settings = hooked(settings, hook)
    hub = ModelHub.from_settings(settings)
    tags_before, latest_before = hub.list_tags(), hub.get_latest()
    registry_before = registry_state(settings)

    result = retrain(settings, "KeplerStrategy", environment(settings, "dev"))

    assert result.decision == "unchanged" and result.challenger is None and not result.duplicate
    assert result.tags == {} and not result.proposed and branches(repo) == []
    assert [(v.profile, v.decision, v.champion, v.comparison) for v in result.verdicts] == [
        (n, "unchanged", 1, None) for n in (2, 3, 4, 5)
    ]
    assert result.unchanged_profiles == [2, 3, 4, 5] and result.promoted_profiles == []
    assert result.reasons == [
        "profiles 2, 3, 4, 5 (champion v1): unchanged: "
        f"the retrained files are the champion's (hub tag {TAG}): nothing new"
    ]
    assert hub.list_tags() == tags_before and hub.get_latest() == latest_before
    assert registry_state(settings) == registry_before  # no version, and no decision tag on the champion
    assert git(repo, "status", "--porcelain") == ""
    data = result.to_dict()
    assert data["decision"] == "unchanged" and data["challenger"] is None and data["tags"] == {}
    assert data["unchanged_profiles"] == [2, 3, 4, 5] and data["branch"] is None
    assert data["verdicts"][0]["decision"] == "unchanged" and data["verdicts"][0]["metrics"] == []
    assert result.notified and len(hook.bodies) == 1
    assert hook.bodies[0]["text"].startswith(
        "Retraining: nothing new (the champion has the same files): KeplerStrategy in dev: retraining "
        "reproduced the champion's files; nothing pushed, registered or proposed"
    )


@pytest.mark.slow
def test_partly_unchanged_registers_the_duplicate_and_compares_the_rest(
    live: tuple[Path, Settings], trained: tuple[Path, list[TrainingResult]]
) -> None:
    """Profile 2 runs another Kepler bundle (v2); the others run the committed one (v1). Retraining on the
    committed data leaves profiles 3-5 unchanged, composes a tag for profile 2 only, and the challenger
    is v1 again (same files: a duplicate, no new version), compared against profile 2's champion."""
    import shutil
    from dataclasses import replace

    from retrain_helpers import record_metrics
    from tradai_release.registry.registrar import register_training
    from tradai_release.repository.manifest_edit import edit_manifest

    repo, settings = live
    hub = ModelHub.from_settings(settings)
    models = repo.parent / "other-models"
    trained_models, results = trained
    shutil.copytree(trained_models / "KeplerStrategy", models / "KeplerStrategy")
    record_metrics(models / "KeplerStrategy", WORSE)
    other = hub.compose(models, ["KeplerStrategy"], source=TAG, message="another Kepler",
                        created_at="2026-11-02T00:00:00Z")
    kepler = next(r for r in results if r.strategy_name == "KeplerStrategy")
    v2 = register_training(
        settings, replace(kepler, model_dir=models / "KeplerStrategy", metrics={**kepler.metrics, **WORSE}),
        r2_tag=other.tag, envs=[environment(settings, "dev")],
    )["dev"]
    assert v2.version == 2 and v2.created
    with edit_manifest(repo / "releases/dev/profile-2.yaml") as editor:
        editor.set_artifacts(other.tag, other.manifest_sha256)
        editor.set_production("KeplerStrategy", 2)
    commit_all(repo, "profile 2 runs Kepler v2")
    tags_before = [info.tag for info in hub.list_tags()]

    result = retrain(settings, "KeplerStrategy", environment(settings, "dev"), send=False)

    assert result.challenger == 1 and result.duplicate
    assert result.unchanged_profiles == [3, 4, 5]
    profile_2 = result.verdicts[0]
    assert (profile_2.profile, profile_2.champion, profile_2.tag) == (2, 2, other.tag)
    assert profile_2.decision in ("promote", "keep", "manual-review") and profile_2.comparison is not None
    assert list(result.tags) == [other.tag]  # a challenger tag only on top of profile 2's tag
    assert sorted([info.tag for info in hub.list_tags()]) == sorted([*tags_before, result.tags[other.tag][0]])
    assert [
        v.version
        for v in MlflowRegistry.for_env(environment(settings, "dev"), settings).versions(["KeplerStrategy"])[
            "KeplerStrategy"
        ]
    ] == [1, 2]
    assert any(reason.startswith("profiles 3, 4, 5 (champion v1): unchanged: ") for reason in result.reasons)
    assert result.to_dict()["duplicate"] is True


# --- bad inputs: one clear error, nothing trained, pushed or written ----------------------------------------


def never_train(*args: object, **kwargs: object) -> TrainingResult:
    raise AssertionError("must not train")


@pytest.mark.parametrize(
    ("strategy", "profiles", "match"),
    [
        ("NoSuchStrategy", None, "no such strategy"),
        ("MyStrategy", [1], "MyStrategy is not pinned in profile 1 of dev"),
    ],
)
@pytest.mark.slow
def test_bad_input_trains_nothing(
    live: tuple[Path, Settings], strategy: str, profiles: list[int] | None, match: str
) -> None:
    repo, settings = live
    hub = ModelHub.from_settings(settings)
    tags = [info.tag for info in hub.list_tags()]
    with pytest.raises(InputError, match=match):
        retrain(settings, strategy, environment(settings, "dev"), profiles=profiles, trainer=never_train)
    assert [info.tag for info in hub.list_tags()] == tags and branches(repo) == []


@pytest.mark.slow
def test_uncommitted_data_is_refused(live: tuple[Path, Settings]) -> None:
    repo, settings = live
    append_shifted(repo, "PascalStrategy", rows=10)
    with pytest.raises(InputError, match="uncommitted change"):
        retrain(settings, "PascalStrategy", environment(settings, "dev"), trainer=never_train)
    assert data_path(repo, "PascalStrategy").relative_to(repo).as_posix() in git(
        repo, "status", "--porcelain"
    )


def test_parse_profiles() -> None:
    assert parse_profiles("all") is None and parse_profiles(None) is None
    assert parse_profiles("3") == [3] and parse_profiles("4,2") == [2, 4]
    for bad in ("0", "x", "3,y"):  # which profiles exist is the environment's to say (retrain checks it)
        with pytest.raises(InputError, match="--profile"):
            parse_profiles(bad)


# --- the retraining check -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_age_from_registry_against_tradai_yaml_and_settings(live: tuple[Path, Settings]) -> None:
    _, settings = live
    registered = (
        MlflowRegistry.for_env(environment(settings, "dev"), settings)
        .get_version("PascalStrategy", 1)
        .created_at
    )
    assert registered is not None
    check = check_retraining(settings, environment(settings, "dev"), now=registered + timedelta(days=8))
    by_name = {item.strategy: item for item in check.strategies}
    assert check.retrain == ["PascalStrategy"]  # max_age_days 7 in its tradai.yaml
    assert (
        by_name["PascalStrategy"]
        .reasons[0]
        .startswith("model version 1 is 8.0 days old (max 7 from strategies/")
    )
    assert by_name["PascalStrategy"].created_source == "registry"
    assert by_name["KeplerStrategy"].max_age_days == 14 and not by_name["KeplerStrategy"].needed
    assert by_name["MyStrategy"].max_age_source == "settings retrain_max_age_days"
    strict = settings.model_copy(update={"retrain_max_age_days": 5})
    later = check_retraining(strict, environment(strict, "dev"), now=registered + timedelta(days=6))
    assert later.retrain == ["MyStrategy"]
    assert later.to_dict()["strategies"][1]["reasons"] == [
        "model version 1 is 6.0 days old (max 5 from settings retrain_max_age_days)"
    ]


@pytest.mark.slow
def test_age_falls_back_to_the_hub_tag(live: tuple[Path, Settings]) -> None:
    _, settings = live
    from datetime import datetime

    created = datetime.fromisoformat(CREATED_AT.replace("Z", "+00:00"))
    check = check_retraining(
        settings, environment(settings, "dev"), registry=FakeRegistry(), now=created + timedelta(days=10)
    )
    pascal = next(item for item in check.strategies if item.strategy == "PascalStrategy")
    assert pascal.created_source == "hub tag" and pascal.created_at == stamp(parse_stamp(CREATED_AT))
    assert pascal.age_days == pytest.approx(10.0)
    assert check.retrain == ["PascalStrategy"]


@pytest.mark.slow
def test_manual_request(live: tuple[Path, Settings]) -> None:
    _, settings = live
    check = check_retraining(settings, environment(settings, "dev"), manual=["KeplerStrategy"])
    assert check.retrain == ["KeplerStrategy"]
    assert check.to_dict()["needed"] is True
    assert check_retraining(settings, environment(settings, "dev"), manual=["all"]).retrain == [
        "KeplerStrategy",
        "MyStrategy",
        "PascalStrategy",
    ]
    with pytest.raises(InputError, match="NoSuch is not pinned"):
        check_retraining(settings, environment(settings, "dev"), manual=["NoSuch"])


@pytest.mark.slow
def test_nothing_needed(live: tuple[Path, Settings]) -> None:
    _, settings = live
    report = check_drift(settings, environment(settings, "dev"), strategies=["KeplerStrategy"], state=False)
    check = check_retraining(
        settings, environment(settings, "dev"), drift=report, strategies=["KeplerStrategy"]
    )
    assert not check.needed and check.retrain == [] and check.strategies[0].reasons == ()


# --- tasks ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_retrain_check_and_retrain_tasks(live: tuple[Path, Settings]) -> None:
    repo, settings = live
    check = invoke(
        repo,
        settings,
        "retrain-check",
        "--env",
        "dev",
        "--strategy",
        "KeplerStrategy",
        "--manual",
        "KeplerStrategy",
        "--json-file",
        str(repo.parent / "check.json"),
    )
    assert check.returncode == 0, check.stderr
    data = json.loads((repo.parent / "check.json").read_text())  # one check, both forms (drift.yml)
    assert data["retrain"] == ["KeplerStrategy"] and data["strategies"][0]["reasons"] == [
        "requested manually"
    ]
    assert check.stdout.splitlines()[0] == "dev: retraining needed for KeplerStrategy"
    assert "    - requested manually" in check.stdout.splitlines()
    shown = invoke(
        repo, settings, "retrain", "--strategy", "KeplerStrategy", "--env", "dev", "--profile", "2",
        "--json-file", str(repo.parent / "retrain.json"),
    )
    assert shown.returncode == 0, shown.stderr
    # one retrain, both forms (drift.yml): the committed data reproduces the champion, unchanged
    outcome = json.loads((repo.parent / "retrain.json").read_text())
    assert outcome["decision"] == "unchanged" and outcome["proposed"] is False
    assert outcome["challenger"] is None and outcome["tags"] == {} and outcome["unchanged_profiles"] == [2]
    assert outcome["reasons"] == [
        f"profile 2 (champion v1): unchanged: the retrained files are the champion's (hub tag {TAG}): "
        "nothing new"
    ]
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("KeplerStrategy: retraining reproduced the champion's files")
    assert "  profile 2: champion v1 -> unchanged" in lines
    assert lines[-1] == "unchanged: nothing pushed, registered or proposed"
    kepler = MlflowRegistry.for_env(environment(settings, "dev"), settings).versions(["KeplerStrategy"])[
        "KeplerStrategy"
    ]
    assert [v.version for v in kepler] == [1]
    bad = invoke(repo, settings, "retrain", "--strategy", "KeplerStrategy", "--env", "dev", "--profile", "9")
    assert bad.returncode == 1
    expected = "error: --profile: profile: unknown profile 9 (dev has profiles 1, 2, 3, 4, 5)"
    assert bad.stderr.strip() == expected
    missing = invoke(repo, settings, "retrain", "--env", "dev")
    assert missing.returncode == 1 and missing.stderr.startswith("error: retrain: --strategy: required")


# --- ModelHub.compose: a challenger tag from an existing tag plus one strategy's new files ---------------


def test_compose_replaces_one_strategy_and_uploads_only_its_new_blobs(tmp_path: Path) -> None:
    from hub_helpers import MemoryStore, make_models_dir
    from tradai_release.core.errors import TagExists

    hub = ModelHub(MemoryStore(), workers=1)
    make_models_dir(tmp_path / "old", ("AlphaStrategy", "BetaStrategy"))
    base = hub.push(tmp_path / "old", tag="v1", created_at="2026-11-01T00:00:00Z")
    make_models_dir(tmp_path / "new", ("BetaStrategy",), accuracy=0.7)
    before = set(hub.store.objects)  # type: ignore[attr-defined]

    made = hub.compose(
        tmp_path / "new",
        ["BetaStrategy"],
        source="v1",
        source_sha256=base.manifest_sha256,
        tag="v2",
        message="challenger",
        git_commit="abc",
    )

    old, new = hub.read_tag("v1"), hub.read_tag("v2", expected_sha256=made.manifest_sha256)
    assert new.source_tag == "v1" and new.message == "challenger" and new.git_commit == "abc"
    assert {p: e for p, e in new.files.items() if p.startswith("AlphaStrategy/")} == {
        p: e for p, e in old.files.items() if p.startswith("AlphaStrategy/")
    }
    assert all(
        new.files[p] != old.files[p] for p in new.files if p.startswith("BetaStrategy/signal/ensemble_")
    )
    assert new.metadata["AlphaStrategy"] == old.metadata["AlphaStrategy"]
    assert new.metadata["BetaStrategy"]["signal"]["accuracy"] == 0.7
    added = set(hub.store.objects) - before  # type: ignore[attr-defined]
    assert added == {
        f"blobs/sha256/{e.sha256}" for p, e in new.files.items() if e not in old.files.values()
    } | {"tags/v2.json"}
    assert made.uploaded_files == len(added) - 1
    assert hub.get_latest() is not None and hub.get_latest().tag == "v1"  # type: ignore[union-attr]
    assert hub.verify_tag("v2", made.manifest_sha256) == []
    with pytest.raises(TagExists):
        hub.compose(tmp_path / "new", ["BetaStrategy"], source="v1", tag="v2")
    with pytest.raises(InputError, match="no files for GammaStrategy"):
        hub.compose(tmp_path / "new", ["GammaStrategy"], source="v1", tag="v3")
    auto = hub.compose(tmp_path / "new", ["BetaStrategy"], source="v1", created_at="2026-11-23T00:00:00Z")
    assert auto.tag == "v20261123" and auto.uploaded_files == 0
