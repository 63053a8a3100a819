"""Semantic diff between two commits of a real git repository, read from git objects."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import ML_CONFIG, commit_all, git, make_release_repo
from tradai_release.domain.diff import FieldChange, PinDiff, diff_refs


def test_diff_between_two_commits(tmp_path: Path) -> None:
    repo = make_release_repo(tmp_path / "repo")
    base = git(repo, "rev-parse", "HEAD")
    prod = repo / "releases" / "prod" / "profile-1.yaml"
    old_pin = next(line.split()[1] for line in prod.read_text().splitlines() if "config:" in line)

    tradai = repo / "strategies" / "MyStrategy" / "tradai.yaml"
    tradai.write_text(tradai.read_text().replace("stake_amount: 1000", "stake_amount: 1500"))
    ml_config = repo / "strategies" / "MyStrategy" / "ml_config.json"
    ml_config.write_text(json.dumps(dict(ML_CONFIG, features=["ret_1", "atr_14"])))
    new_strategy = repo / "strategies" / "KeplerStrategy"
    new_strategy.mkdir()
    (new_strategy / "tradai.yaml").write_text(
        (repo / "strategies" / "PascalStrategy" / "tradai.yaml").read_text()
    )
    (new_strategy / "ml_config.json").write_text(json.dumps(ML_CONFIG))
    text = (
        prod.read_text().replace("production: 1", "production: 4", 1).replace("v20260415-p1", "v20260501-p1")
    )
    text = text.replace(
        "  MyStrategy:\n    config: ", "  MyStrategy:\n    config: " + "b" * 64 + "  # was ", 1
    )
    prod.write_text(text.replace("      production: 1\n", "      production: 1\n      staging: 2\n", 1))
    (repo / "releases" / "dev" / "profile-2.yaml").unlink()
    (repo / "releases" / "staging").mkdir()
    dev_text = (repo / "releases" / "dev" / "profile-1.yaml").read_text()
    staging_text = dev_text.replace("environment: dev", "environment: staging")
    (repo / "releases" / "staging" / "profile-1.yaml").write_text(staging_text)
    head = commit_all(repo, "second release")
    # The working tree changes after the commit; diff must read git objects, not files.
    tradai.write_text("garbage: [\n")

    diff = diff_refs(repo, base, "HEAD")
    assert diff.problems == ()
    assert diff.head.endswith(f"({head[:12]})")

    kinds = {change.name: change.kind for change in diff.strategies}
    assert kinds == {"KeplerStrategy": "added", "MyStrategy": "changed"}
    my = next(change for change in diff.strategies if change.name == "MyStrategy")
    assert (
        FieldChange("strategies/MyStrategy/tradai.yaml", "strategy_service.defaults.stake_amount", 1000, 1500)
        in my.fields
    )
    assert (
        FieldChange(
            "strategies/MyStrategy/ml_config.json",
            "features",
            ML_CONFIG["features"],
            ["ret_1", "atr_14"],
        )
        in my.fields
    )
    assert len(my.fields) == 2

    manifests = {(change.environment, change.profile): change.kind for change in diff.manifests}
    assert manifests == {("dev", 2): "removed", ("prod", 1): "changed", ("staging", 1): "added"}
    prod_change = next(change for change in diff.manifests if change.environment == "prod")
    assert [(field.field, field.old, field.new) for field in prod_change.fields] == [
        ("artifacts.tag", "v20260415-p1", "v20260501-p1")
    ]

    prod_pins = {
        (pin.strategy, pin.field): (pin.old, pin.new) for pin in diff.pins if pin.environment == "prod"
    }
    assert prod_pins == {
        ("MyStrategy", "config"): (old_pin, "b" * 64),
        ("MyStrategy", "model.production"): (1, 4),
        ("PascalStrategy", "model.staging"): (None, 2),
    }
    assert PinDiff("dev", 2, "PascalStrategy", "model.production", 1, None) in diff.pins

    as_json = json.loads(json.dumps(diff.to_dict()))
    assert {
        "environment": "prod",
        "profile": 1,
        "strategy": "MyStrategy",
        "field": "model.production",
        "old": 1,
        "new": 4,
    } in as_json["pins"]


def test_comment_and_formatting_changes_are_not_semantic(tmp_path: Path) -> None:
    repo = make_release_repo(tmp_path / "repo")
    tradai = repo / "strategies" / "MyStrategy" / "tradai.yaml"
    reformatted = tradai.read_text().replace(
        "  ecs:\n    cpu: 512\n    memory: 1024\n", "  ecs: {memory: 1024, cpu: 512}\n"
    )
    tradai.write_text("# MyStrategy: reformatted, same content\n" + reformatted)
    commit_all(repo, "comment and flow style only")
    diff = diff_refs(repo, "HEAD~1", "HEAD")
    assert diff.is_empty()
    assert diff.to_dict()["strategies"] == []
