"""rollback: restore pins from an earlier commit or deployment, in a real git repo in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine_helpers import TAG, make_repo, push_tag, register_mlflow
from helpers import copy_project_repo, git, invoke
from tradai_release.core.errors import GitError, InputError
from tradai_release.core.settings import Settings
from tradai_release.engine.actions import SetAlias
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.hub.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.registry.lifecycle import current_lifecycle
from tradai_release.repository.environments import environment
from tradai_release.repository.manifest_edit import edit_manifest
from tradai_release.workflows.promote import promote
from tradai_release.workflows.rollback import Rollback, rollback

P3 = "releases/prod/profile-3.yaml"
PIN = "strategies.PascalStrategy.model.production"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Commit A (this project's releases) then commit B: prod profile 3 runs PascalStrategy v2."""
    repo = copy_project_repo(tmp_path / "repo", "A: initial")
    with edit_manifest(repo / P3) as editor:
        editor.set_production("PascalStrategy", 2)
        editor.set_override("PascalStrategy", "alice", "approved in review")
    git(repo, "commit", "-qam", "B: promote PascalStrategy v2 in prod profile 3")
    monkeypatch.setenv("TRADAI_REPO", str(repo))
    return repo


def commits(repo: Path) -> tuple[str, str]:
    return git(repo, "rev-parse", "HEAD^"), git(repo, "rev-parse", "HEAD")


def snapshot(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): p.read_text() for p in sorted((repo / "releases").rglob("*.yaml"))}


def run(repo: Path, **kwargs: object) -> Rollback:
    return rollback(
        Settings(), environment(Settings(), str(kwargs.pop("env", "prod"))), repo=repo, plan=False, **kwargs
    )  # type: ignore[arg-type]


def record_deployments(*entries: tuple[str, str, str]) -> None:
    """Write deployment records (id, commit, outcome) into prod's release-state table, as apply does."""
    from tradai_release.engine.release_table import Deployment, ReleaseTable
    from tradai_release.engine.state import EngineBackends

    table = EngineBackends.from_settings(Settings(), environment(Settings(), "prod")).releases
    for deployment_id, commit, outcome in entries:
        record = Deployment(env="prod", commit=commit, deployment_id=deployment_id, outcome=outcome,
                            actor="ci", trace_id="t", started_at="2026-11-01T00:00:00+00:00")
        ReleaseTable(table, "prod").save_deployment(record)


def test_rollback_to_a_ref_restores_the_pins_and_keeps_comments(repo: Path) -> None:
    first, head = commits(repo)
    original = git(repo, "show", f"{first}:{P3}") + "\n"
    result = run(repo, to="HEAD~1")
    assert (repo / P3).read_text() == original  # same pins and the same comments as before
    assert result.source == first and result.head == head and result.profiles == (3,)
    assert [c.to_dict() for c in result.changes] == [
        {"path": P3, "field": PIN, "old": 2, "new": 1},
        {"path": P3, "field": "strategies.PascalStrategy.model.override", "old": "alice", "new": None},
    ]
    assert git(repo, "status", "--porcelain") == f"M {P3}"


def test_rollback_one_strategy_with_commit_on_a_new_branch(repo: Path) -> None:
    first, head = commits(repo)
    result = run(repo, profile="3", strategy="PascalStrategy", to=first, commit=True)
    branch = f"rollback/prod-p3-PascalStrategy-to-{first[:7]}"
    assert result.branch == branch and git(repo, "rev-parse", "--abbrev-ref", "HEAD") == branch
    assert git(repo, "rev-parse", "main") == head  # main never receives the commit
    assert git(repo, "rev-parse", "HEAD^") == head
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith(f"Roll back prod profile 3 PascalStrategy to {first[:12]} ({first})\n")
    assert f"from {head[:12]} to {first[:12]}" in message
    assert f"{P3}: {PIN} 2 -> 1" in message
    assert git(repo, "diff", "--name-only", first, "HEAD") == ""  # the branch pins exactly what A pinned


def test_default_is_the_previous_deployment(repo: Path) -> None:
    first, head = commits(repo)
    record_deployments(("d20261101T000000Z-aaaaaa", first, "succeeded"),
                       ("d20261102T000000Z-bbbbbb", first, "failed"),
                       ("d20261103T000000Z-cccccc", head, "succeeded"))
    result = run(repo)
    assert (result.source, result.deployment_id) == (first, "d20261101T000000Z-aaaaaa")
    assert result.ref == "deployment d20261101T000000Z-aaaaaa"
    assert result.changes[0].to_dict() == {"path": P3, "field": PIN, "old": 2, "new": 1}


def test_named_deployment_and_unknown_one(repo: Path) -> None:
    first, head = commits(repo)
    record_deployments(("d20261101T000000Z-aaaaaa", first, "succeeded"),
                       ("d20261103T000000Z-cccccc", head, "succeeded"))
    result = run(repo, deployment="d20261101T000000Z-aaaaaa", profile="3")
    assert result.source == first
    before = snapshot(repo)
    with pytest.raises(InputError, match="no deployment d-nope in prod"):
        run(repo, deployment="d-nope")
    assert snapshot(repo) == before


def test_nothing_to_roll_back(repo: Path) -> None:
    before = snapshot(repo)
    with pytest.raises(InputError, match="nothing to roll back"):
        run(repo, to="HEAD")
    with pytest.raises(InputError, match="nothing to roll back: prod has no successful deployment"):
        run(repo)
    record_deployments(("d20261103T000000Z-cccccc", git(repo, "rev-parse", "HEAD"), "succeeded"))
    with pytest.raises(InputError, match="no deployment before d20261103T000000Z-cccccc"):
        run(repo)
    assert snapshot(repo) == before


def test_whole_env_restores_the_hub_tag_and_strategy_set(repo: Path) -> None:
    first, _ = commits(repo)
    for profile in (4, 5):
        with edit_manifest(repo / f"releases/prod/profile-{profile}.yaml") as editor:
            editor.set_artifacts("v20261201", "1" * 64)
            editor.remove_strategy("MyStrategy")
    with edit_manifest(repo / "releases/prod/profile-1.yaml") as editor:
        editor.add_strategy("KeplerStrategy", "f" * 64, 1)
    git(repo, "commit", "-qam", "C: new tag, MyStrategy retired in 4 and 5, Kepler added to 1")
    result = run(repo, to=first)
    assert result.profiles == (1, 3, 4, 5)
    restored = snapshot(repo)
    assert restored == {path: git(repo, "show", f"{first}:{path}") + "\n" for path in restored}


def test_bad_inputs_change_nothing(repo: Path) -> None:
    before = snapshot(repo)
    with pytest.raises(GitError, match="no such commit"):
        run(repo, to="no-such-ref")
    with pytest.raises(InputError, match="not both"):
        run(repo, to="HEAD~1", deployment="d1")
    with pytest.raises(InputError, match="no such strategy"):
        run(repo, strategy="Nope", to="HEAD~1")
    with pytest.raises(InputError, match="unknown profile 9"):
        run(repo, profile="9", to="HEAD~1")
    (repo / P3).write_text((repo / P3).read_text() + "# local edit\n")
    dirty = snapshot(repo)
    with pytest.raises(InputError, match="uncommitted changes"):
        run(repo, to="HEAD~1", commit=True)
    assert snapshot(repo) == dirty and git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(repo, "branch", "--list", "rollback/*") == ""
    (repo / P3).write_text(before[P3])


def test_task_json_and_one_line_errors(repo: Path) -> None:
    first, head = commits(repo)
    done = invoke(repo, "rollback", "--env", "prod", "--profile", "3", "--to", "HEAD~1", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["from"], document["to"], document["changes"][0]["new"]) == (head, first, 1)
    git(repo, "checkout", "-q", "--", P3)
    missing = invoke(repo, "rollback")
    assert missing.returncode == 1
    assert missing.stderr == "error: rollback: --env: required (dev, staging or prod)\n"
    nothing = invoke(repo, "rollback", "-e", "prod", "--to", "HEAD")
    assert nothing.returncode == 1
    assert nothing.stderr.startswith("error: rollback: --to: nothing to roll back")
    assert nothing.stderr.count("\n") == 1
    assert git(repo, "status", "--porcelain") == ""


def test_promote_apply_rollback_apply_on_the_embedded_default(tmp_path: Path) -> None:
    """The whole loop with the engine: promote on a branch, merge, apply; roll back to the previous
    deployment on a branch, merge, apply: the old version is Production again."""

    settings = Settings()
    sha = push_tag(ModelHub.from_settings(settings), tmp_path)
    registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)
    register_mlflow(registry, 2)
    repo = make_repo(tmp_path, TAG, sha)
    settings = Settings(repo=repo)

    def lifecycle() -> dict[int, str]:
        return {info.version: current_lifecycle(info) for info in registry.versions(["PascalStrategy"])[
            "PascalStrategy"]}

    first = apply_env(ReleaseContext.open(settings, "dev"))
    assert first.outcome == "succeeded" and lifecycle() == {1: "Production", 2: "None"}

    promotion = promote(settings, environment(settings, "dev"), "all", "PascalStrategy", 2, commit=True)
    assert promotion.plan is not None and not promotion.plan.empty, promotion.plan_error
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", str(promotion.branch))
    second = apply_env(ReleaseContext.open(settings, "dev"))
    assert second.outcome == "succeeded" and lifecycle() == {1: "Archived", 2: "Production"}

    restored = rollback(settings, environment(settings, "dev"), commit=True)
    assert (restored.deployment_id, restored.source) == (first.deployment_id, first.commit)
    assert restored.plan is not None and any(
        isinstance(a, SetAlias) and a.version == 1 for a in restored.plan.actions)
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", str(restored.branch))
    third = apply_env(ReleaseContext.open(settings, "dev"))
    assert third.outcome == "succeeded" and lifecycle() == {1: "Production", 2: "Archived"}
    assert apply_env(ReleaseContext.open(settings, "dev")).outcome == "noop"


def test_one_strategy_rollback_restores_its_binaries_in_the_hub_tag(tmp_path: Path) -> None:
    """The profile's tag must run the rolled-back version's files: the source tag when the other
    strategies' files agree, else a tag spliced from the current one (only this strategy's files)."""
    hub = ModelHub.from_settings(Settings())
    sha_a = push_tag(hub, tmp_path, "v20261101", seed=0)
    sha_c = push_tag(hub, tmp_path, "v20261201", seed=1)
    sha_b = hub.splice("v20261101", "v20261201", ["PascalStrategy"], tag="v20261115")
    repo = make_repo(tmp_path, "v20261101", sha_a)
    first = git(repo, "rev-parse", "HEAD")
    for profile, (tag, sha) in ((3, ("v20261115", sha_b)), (4, ("v20261201", sha_c))):
        with edit_manifest(repo / f"releases/prod/profile-{profile}.yaml") as editor:
            editor.set_artifacts(tag, sha)
            editor.set_production("PascalStrategy", 2)
    git(repo, "commit", "-qam", "PascalStrategy v2 in prod 3 and 4")

    result = rollback(
        Settings(repo=repo),
        environment(Settings(repo=repo), "prod"),
        strategy="PascalStrategy",
        to=first,
        plan=False,
    )
    assert result.profiles == (3, 4)
    tags = {c.path: c.new for c in result.changes if c.field == "artifacts.tag"}
    spliced = "v20261201_PascalStrategy-from-v20261101"
    assert tags == {"releases/prod/profile-3.yaml": "v20261101", "releases/prod/profile-4.yaml": spliced}
    text = (repo / "releases/prod/profile-4.yaml").read_text()
    assert f"tag: {spliced}" in text and hub.tag_sha256(spliced) in text

    def files(tag: str, strategy: str) -> dict[str, object]:
        return {rel: e for rel, e in hub.read_tag(tag).files.items() if rel.startswith(strategy + "/")}

    assert files(spliced, "PascalStrategy") == files("v20261101", "PascalStrategy")
    assert files(spliced, "KeplerStrategy") == files("v20261201", "KeplerStrategy")
    assert files("v20261101", "KeplerStrategy") != files("v20261201", "KeplerStrategy")
