"""Live validation rules and the prod comparator gate (docs/architecture.md §4, §5), against a local hub
and a fake registry."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine_helpers import TAG, features_of, make_repo, push_tag, register_versions
from fake_registry import FakeRegistry
from hub_helpers import make_models_dir
from tradai_release.engine.checks import check_artifacts, check_registry, manifests_in_scope
from tradai_release.hub.hub import ModelHub
from tradai_release.hub.names import blob_key
from tradai_release.registry.comparator import ModelComparator
from tradai_release.repository.manifest_edit import edit_manifest
from tradai_release.repository.tree import ReleaseRepo, WorkTree, load_release_repo
from tradai_release.stores.local import LocalObjectStore
from tradai_release.workflows.validate import Changes


@pytest.fixture
def hub(tmp_path: Path) -> ModelHub:
    return ModelHub(LocalObjectStore(tmp_path / "hub"), workers=1)


@pytest.fixture
def repo(tmp_path: Path, hub: ModelHub) -> Path:
    return make_repo(tmp_path, TAG, push_tag(hub, tmp_path))


def loaded(repo: Path) -> ReleaseRepo:
    release_repo = load_release_repo(WorkTree(repo))
    assert release_repo.problems == []
    return release_repo


def of_env(release_repo: ReleaseRepo, env: str) -> list:  # type: ignore[type-arg]
    return release_repo.manifests_of(env)


def edit(repo: Path, env: str, profile: int, **changes: object) -> None:
    with edit_manifest(repo / "releases" / env / f"profile-{profile}.yaml") as editor:
        if "artifacts" in changes:
            editor.set_artifacts(*changes["artifacts"])  # type: ignore[misc]
        if "production" in changes:
            editor.set_production("PascalStrategy", changes["production"])  # type: ignore[arg-type]
        if "override" in changes:
            editor.set_override("PascalStrategy", *changes["override"])  # type: ignore[misc]


def test_a_complete_environment_has_no_live_problems(repo: Path, hub: ModelHub) -> None:
    release_repo = loaded(repo)
    registry = FakeRegistry()
    register_versions(registry, 1)
    assert check_artifacts(hub, release_repo, of_env(release_repo, "dev")) == []
    assert check_registry(registry, release_repo, of_env(release_repo, "dev"), ModelComparator()) == []
    assert registry.calls == 1  # one batched read for every model of the env


def test_hub_problems_name_the_manifest_and_field(repo: Path, hub: ModelHub, tmp_path: Path) -> None:
    edit(repo, "dev", 1, artifacts=(TAG, "a" * 64))
    edit(repo, "dev", 2, artifacts=("v29990101", "b" * 64))
    release_repo = loaded(repo)
    problems = {
        (p.file, p.field): p.reason for p in check_artifacts(hub, release_repo, of_env(release_repo, "dev"))
    }
    assert "expected " + "a" * 64 in problems[("releases/dev/profile-1.yaml", "artifacts.sha256")]
    assert "no such tag" in problems[("releases/dev/profile-2.yaml", "artifacts.tag")]

    manifest = hub.read_tag(TAG)
    entry = manifest.files["PascalStrategy/signal/ensemble_rf.pkl"]
    hub.store.delete(blob_key(entry.sha256))
    release_repo = loaded(repo)
    reasons = [p.reason for p in check_artifacts(hub, release_repo, of_env(release_repo, "dev")[2:])]
    assert any("ensemble_rf.pkl" in reason and "missing" in reason for reason in reasons)


def test_model_compat_must_match_the_strategy_features(repo: Path, hub: ModelHub, tmp_path: Path) -> None:
    models = tmp_path / "bad-models"
    make_models_dir(models, ("PascalStrategy",), size=80, features=features_of("PascalStrategy")[:-2])
    for other in ("KeplerStrategy", "MyStrategy"):
        make_models_dir(models, (other,), size=80, features=features_of(other))
    sha = hub.push(models, tag="vbadcompat").manifest_sha256
    edit(repo, "dev", 1, artifacts=("vbadcompat", sha))
    release_repo = loaded(repo)
    problems = check_artifacts(hub, release_repo, of_env(release_repo, "dev")[:1])
    assert [(p.field, "feature_count" in p.reason) for p in problems] == [("strategies.PascalStrategy", True)]


def test_registry_problems_missing_not_ready_untagged(repo: Path) -> None:
    registry = FakeRegistry()
    register_versions(registry, 1)
    registry.add_version(
        "PascalStrategy", tags={"strategy_name": "PascalStrategy"}
    )  # v2: no registration tags
    model = registry._models["KeplerStrategy"]
    model.versions[1] = replace(model.versions[1], status="PENDING_REGISTRATION")
    edit(repo, "dev", 1, production=2)
    edit(repo, "dev", 2, production=7)
    release_repo = loaded(repo)
    problems = check_registry(registry, release_repo, of_env(release_repo, "dev"), ModelComparator())
    reasons = [f"{p.file}: {p.field}: {p.reason}" for p in problems]
    assert any(
        "profile-1.yaml: strategies.PascalStrategy.model.production" in r and "lacks" in r for r in reasons
    )
    assert any("profile-2.yaml" in r and "version 7 does not exist" in r for r in reasons)
    assert any("KeplerStrategy" in r and "not READY" in r for r in reasons)


GOOD = {
    "total_profit": 100.0,
    "sharpe_ratio": 1.2,
    "max_drawdown": 0.1,
    "win_rate": 0.5,
    "total_trades": 40.0,
}


def prod_registry(challenger: dict[str, float], *, was_production: bool = False) -> FakeRegistry:
    registry = FakeRegistry()
    register_versions(registry, 1)
    tags = {
        "strategy_name": "PascalStrategy",
        "feature_count": str(len(features_of("PascalStrategy"))),
        "trace_id": "t",
        "git_commit": "0" * 40,
    }
    if was_production:
        tags["production_entered_at"] = "2026-01-01T00:00:00+00:00"
    registry.add_version("PascalStrategy", tags=tags, metrics=challenger)
    for name in ("PascalStrategy", "KeplerStrategy", "MyStrategy"):
        for profile in range(1, 6):
            registry.set_alias(name, f"p{profile}", 1)
    return registry


def gate(repo: Path, registry: FakeRegistry) -> list[str]:
    release_repo = loaded(repo)
    return [
        str(p)
        for p in check_registry(registry, release_repo, of_env(release_repo, "prod"), ModelComparator())
    ]


def test_prod_forward_move_needs_comparator_approval_or_an_override(repo: Path) -> None:
    edit(repo, "prod", 3, production=2)
    worse = prod_registry({**GOOD, "sharpe_ratio": 0.2})
    problems = gate(repo, worse)
    assert len(problems) == 1
    assert problems[0].startswith(
        "releases/prod/profile-3.yaml: strategies.PascalStrategy.model.production: "
    )
    assert "comparator says keep" in problems[0] and "override" in problems[0]

    assert (
        gate(repo, prod_registry({**GOOD, "total_profit": 150.0, "win_rate": 0.6})) == []
    )  # beats the champion
    assert gate(repo, prod_registry({**GOOD, "sharpe_ratio": 0.2}, was_production=True)) == []  # a rollback

    edit(repo, "prod", 3, override=("alice", "regime change: accept lower sharpe"))
    assert gate(repo, worse) == []


def test_the_gate_only_applies_to_prod(repo: Path) -> None:
    edit(repo, "dev", 3, production=2)
    registry = prod_registry({**GOOD, "sharpe_ratio": 0.2})
    release_repo = loaded(repo)
    assert check_registry(registry, release_repo, of_env(release_repo, "dev"), ModelComparator()) == []


def test_base_limits_the_scope_to_changed_manifests_and_strategies(repo: Path) -> None:
    release_repo = loaded(repo)
    assert len(manifests_in_scope(release_repo, None)) == 15
    assert manifests_in_scope(release_repo, Changes(frozenset(), frozenset())) == []
    only = manifests_in_scope(release_repo, Changes(frozenset(), frozenset({("prod", 3)})))
    assert [(m.environment, m.profile) for m in only] == [("prod", 3)]
    kepler = manifests_in_scope(release_repo, Changes(frozenset({"KeplerStrategy"}), frozenset()))
    assert kepler and all("KeplerStrategy" in m.strategies for m in kepler)
