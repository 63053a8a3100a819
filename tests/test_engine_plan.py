"""Plan and apply on the embedded storage with an in-memory registry: order, drift, no-op, guards, crashes."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine_helpers import (
    STRATEGIES,
    TAG,
    World,
    commit_all,
    git,
    make_world,
    push_tag,
    set_production,
)
from tradai_release.core.clock import use_clock
from tradai_release.core.errors import ApplyFailed, ArtifactsRefused, LockHeld, StaleCommit, ValidationFailed
from tradai_release.engine import actions as A
from tradai_release.engine.lock import acquire
from tradai_release.engine.plan import Plan
from tradai_release.engine.release_table import ReleaseTable


@pytest.fixture
def world(tmp_path: Path, isolated_environment: Path) -> World:
    return make_world(tmp_path, isolated_environment)


def kinds(plan: Plan) -> list[str]:
    return [action.kind for action in plan.actions]


def test_first_plan_orders_actions_safely_and_renders_the_json_contract(world: World) -> None:
    plan = world.plan()
    order = kinds(plan)
    assert order[-1] == A.RecordDeployment.kind
    # the hub tag verified before any write, then configs, aliases, pointers last (before the record)
    verify = order.index(A.VerifyArtifacts.kind)
    first_config = order.index(A.UploadConfig.kind)
    last_config = max(i for i, k in enumerate(order) if k == A.ActivateConfig.kind)
    first_alias = order.index(A.SetAlias.kind)
    first_pointer = order.index(A.WriteProfilePointer.kind)
    assert verify == 0 and verify < first_config < last_config < first_alias < first_pointer
    assert all(k in (A.WriteProfilePointer.kind, A.RecordDeployment.kind) for k in order[first_pointer:])
    assert order.count(A.WriteProfilePointer.kind) == 5
    assert order.count(A.CreateConfigVersion.kind) == len(STRATEGIES)
    data = json.loads(json.dumps(plan.to_dict()))
    assert set(data) == {"env", "commit", "actions", "drift", "orphans", "prune"}
    assert data["orphans"] == [] and data["prune"] is False
    assert data["commit"] == git(world.repo, "rev-parse", "HEAD")
    assert all({"kind", "target", "reason"} <= set(action) for action in data["actions"])
    assert data["drift"] == []
    assert not plan.empty
    with pytest.raises(AttributeError):
        plan.env = "prod"  # type: ignore[misc]


def test_apply_converges_then_replan_is_empty_and_a_second_apply_writes_nothing(world: World) -> None:
    deployment = world.apply()
    assert deployment.outcome == "succeeded"
    assert deployment.to_dict().keys() == {"env", "commit", "deployment_id", "outcome", "actions"}
    assert all(action["status"] == "done" for action in deployment.actions)
    assert world.plan().empty
    assert world.plan().to_dict()["actions"] == []

    world.counted.reset()
    again = world.apply()
    assert again.outcome == "noop" and again.deployment_id is None
    assert world.counted.writes == 0

    live = world.live()
    assert live["pointers"] == {p: (TAG, world.sha) for p in range(1, 6)}
    assert ("p3", 1) in live["aliases"]["PascalStrategy"]  # type: ignore[index]
    history = ReleaseTable(world.counted.backends.releases, "dev").deployments()
    assert [d.deployment_id for d in history] == [deployment.deployment_id]
    assert history[0].actor == "tester" and history[0].plan["commit"] == deployment.commit
    journal = ReleaseTable(world.counted.backends.releases, "dev").journal(str(deployment.deployment_id))
    assert len(journal) == len(deployment.actions) and {e.status for e in journal} == {"done"}
    assert [e.action for e in journal] == [action for action, _ in deployment.steps()]  # typed, both ways


def test_plan_reads_a_constant_number_of_times_whatever_the_profiles(world: World) -> None:
    world.apply()
    world.counted.reset()
    before = world.registry.calls
    plan = world.plan()
    assert plan.empty
    config_table, release_table = world.counted.tables
    config_store, hub_store = world.counted.stores
    # one search of the aliased models (prune looks for undeclared ones), one batched versions() call
    assert world.registry.calls - before == 2
    assert dict(config_table.reads) == {"scan": 1}
    assert dict(release_table.reads) == {"get": 2}  # the applied state and the lease
    assert dict(hub_store.reads) == {"list": 1, "get": 5}  # the env's pointers listed, each one read
    assert sum(config_store.reads.values()) == 0


def test_pin_change_moves_alias_and_archives_then_revert_restores(world: World) -> None:
    world.apply()
    set_production(world.repo, "dev", "PascalStrategy", 2)
    promoted = commit_all(world.repo, "promote PascalStrategy v2 in dev")
    plan = world.plan()
    assert A.ArchiveVersion.kind in kinds(plan)
    changes = [c for c in plan.model_changes if c.model == "PascalStrategy" and c.alias == "p1"]
    assert changes and changes[0].champion == 1 and changes[0].challenger == 2 and not changes[0].rollback
    world.apply()
    live = world.live()
    assert ("p1", 2) in live["aliases"]["PascalStrategy"]  # type: ignore[index]
    assert (1, "Archived", "Archived") in live["lifecycle"]["PascalStrategy"]  # type: ignore[index]
    assert (2, "Production", "Production") in live["lifecycle"]["PascalStrategy"]  # type: ignore[index]

    git(world.repo, "revert", "--no-edit", promoted)
    plan = world.plan()
    assert any(c.rollback for c in plan.model_changes)
    world.apply()
    live = world.live()
    assert ("p1", 1) in live["aliases"]["PascalStrategy"]  # type: ignore[index]
    assert (1, "Production", "Production") in live["lifecycle"]["PascalStrategy"]  # type: ignore[index]
    assert (2, "Archived", "Archived") in live["lifecycle"]["PascalStrategy"]  # type: ignore[index]
    assert world.plan().empty


def test_no_archive_keeps_the_replaced_version_in_production(world: World) -> None:
    from tradai_release.repository.manifest_edit import edit_manifest

    world.apply()
    set_production(world.repo, "dev", "PascalStrategy", 2)
    for profile in range(1, 6):  # what promote --no-archive records
        with edit_manifest(world.repo / "releases" / "dev" / f"profile-{profile}.yaml") as editor:
            if "PascalStrategy" in editor.strategies():
                editor.set_keep_production("PascalStrategy", [1])
    commit_all(world.repo, "promote PascalStrategy v2 in dev, keeping v1 in Production")
    assert A.ArchiveVersion.kind not in kinds(world.plan())
    world.apply()
    live = world.live()
    assert ("p1", 2) in live["aliases"]["PascalStrategy"]  # type: ignore[index]
    assert (1, "Production", "Production") in live["lifecycle"]["PascalStrategy"]  # type: ignore[index]
    assert world.plan().empty


def test_drift_is_shown_and_repaired(world: World) -> None:
    world.apply()
    configs = world.counted.backends.configs
    other = configs.create_version(
        strategy_name="PascalStrategy",
        config_data={
            **configs.get_active("PascalStrategy").config_data,  # type: ignore[union-attr]
            "deployment": {"note": "hand edit"},
        },
    )
    configs.activate("PascalStrategy", other.config_id)
    world.registry.set_alias("KeplerStrategy", "p3", 2)
    world.hub.set_profile_pointer("dev", 4, TAG, world.sha, deployment_id="by-hand")  # same values: no drift
    plan = world.plan()
    drift = {(d.kind, d.target) for d in plan.drift}
    assert ("config", "PascalStrategy") in drift
    assert ("alias", "KeplerStrategy@p3") in drift
    assert not any(d.kind == "pointer" for d in plan.drift)
    reasons = {a.target: a.reason for a in plan.actions}
    assert reasons["PascalStrategy"].startswith("drift:")
    assert reasons["KeplerStrategy@p3"].startswith("drift:")
    world.apply()
    after = world.plan()
    assert after.empty and after.drift == ()
    assert configs.get_active("PascalStrategy").config_id != other.config_id  # type: ignore[union-attr]


def test_a_rewritten_pointer_is_drift(world: World, tmp_path: Path) -> None:
    world.apply()
    other_sha = push_tag(world.hub, tmp_path, "v20261102", seed=1)
    world.hub.set_profile_pointer("dev", 2, "v20261102", other_sha)
    plan = world.plan()
    assert [(d.kind, d.target) for d in plan.drift] == [("pointer", "profile-2")]
    assert [type(a) for a in plan.actions] == [A.VerifyArtifacts, A.WriteProfilePointer, A.RecordDeployment]
    world.apply()
    assert world.plan().empty


def test_stale_commit_is_refused_naming_both_commits_and_writes_nothing(world: World) -> None:
    first = git(world.repo, "rev-parse", "HEAD")
    set_production(world.repo, "dev", "MyStrategy", 2)
    second = commit_all(world.repo, "MyStrategy v2")
    world.apply()
    world.counted.reset()
    with pytest.raises(StaleCommit) as caught:
        world.apply(commit=first)
    assert first[:12] in str(caught.value) and second[:12] in str(caught.value)
    assert world.counted.writes == 0


def test_a_held_lock_refuses_naming_holder_and_expiry_and_an_expired_one_is_taken_over(world: World) -> None:
    table = world.counted.backends.releases
    lease = acquire(table, "dev", holder="ci-run-41", deployment_id="d-other", commit="abc", seconds=600)
    with pytest.raises(LockHeld) as caught:
        world.apply()
    message = str(caught.value)
    assert "ci-run-41" in message and "d-other" in message and "until 20" in message
    lease.release()
    assert ReleaseTable(table, "dev").lease() is None

    acquire(table, "dev", holder="crashed-run", deployment_id="d-dead", commit="abc", seconds=-1)
    assert world.apply().outcome == "succeeded"  # the expired lease does not block
    assert ReleaseTable(table, "dev").lease() is None


class Crash(Exception):
    pass


def test_a_crash_after_any_action_converges_on_rerun_to_the_uninterrupted_state(
    tmp_path: Path, isolated_environment: Path
) -> None:
    template = make_world(tmp_path / "template", isolated_environment / "template")
    reference = make_world(tmp_path / "ref", isolated_environment / "ref", template=template)
    reference.apply()
    expected = reference.live()
    journals = ReleaseTable(reference.counted.backends.releases, "dev").journals()
    count = sum(len(entries) for entries in journals.values())
    assert count > 10
    for index in range(count):
        world = make_world(tmp_path / f"w{index}", isolated_environment / f"w{index}", template=template)

        def crash(at: int, action: A.Action, index: int = index) -> None:
            if at == index:
                raise Crash(f"killed after {action.kind}")

        with pytest.raises(Crash):
            world.apply(after_action=crash)
        failed = ReleaseTable(world.counted.backends.releases, "dev").deployments()[0]
        assert failed.outcome == "failed" and "killed" in str(failed.error)
        assert ReleaseTable(world.counted.backends.releases, "dev").lease() is None
        rerun = world.apply()
        assert rerun.outcome == (
            "noop" if index == count - 1 else "succeeded"
        )  # the last action is the record
        live = world.live()
        assert live["aliases"] == expected["aliases"] and live["configs"] == expected["configs"]
        assert live["pointers"] == expected["pointers"]
        assert (
            [[v[1:] for v in vs] for vs in live["lifecycle"].values()]
            == [  # type: ignore[attr-defined]
                [v[1:] for v in vs]
                for vs in expected["lifecycle"].values()  # type: ignore[attr-defined]
            ]
        )
        assert world.plan().empty


def test_two_applies_started_together_make_one_deployment(world: World) -> None:
    results: list[object] = []

    def run() -> None:
        try:
            results.append(world.apply())
        except LockHeld as err:
            results.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = sorted(getattr(r, "outcome", type(r).__name__) for r in results)
    assert outcomes in (["LockHeld", "succeeded"], ["noop", "succeeded"])
    recorded = ReleaseTable(world.counted.backends.releases, "dev").deployments()
    assert [d.outcome for d in recorded] == ["succeeded"]
    assert world.plan().empty


def test_a_pinned_version_missing_from_the_registry_is_one_clear_error(world: World) -> None:
    set_production(world.repo, "dev", "KeplerStrategy", 9)
    commit_all(world.repo, "pin a version that does not exist")
    with pytest.raises(ValidationFailed) as caught:
        world.plan()
    assert str(caught.value).startswith("releases/dev/profile-")
    assert "strategies.KeplerStrategy.model.production" in str(caught.value)


def test_an_invalid_commit_is_refused_before_any_backend_is_read(world: World) -> None:
    path = world.repo / "releases" / "dev" / "profile-1.yaml"
    path.write_text(path.read_text().replace("profile: 1", "profile: 7"))
    commit_all(world.repo, "break a manifest")
    world.counted.reset()
    with pytest.raises(ValidationFailed):
        world.apply()
    assert world.counted.reads == 0 and world.counted.writes == 0


def test_a_failing_hub_tag_stops_apply_before_any_alias_moves(world: World, tmp_path: Path) -> None:
    blobs = sorted((tmp_path / "hub" / "blobs" / "sha256").iterdir())
    blobs[0].unlink()
    with pytest.raises(ArtifactsRefused) as caught:
        world.apply()
    assert "missing" in str(caught.value)
    # A refusal writes nothing: no deployment record.
    assert ReleaseTable(world.counted.backends.releases, "dev").deployments() == []
    assert not any(w[0] == "set_alias" for w in world.registry.writes)
    assert all(p is None for p in world.live()["pointers"].values())  # type: ignore[attr-defined]


def test_apply_notifies_success_and_failure(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import tradai_release.domain.notify

    events: list[tuple[str, str]] = []

    def record(settings: object, event: str, summary: str, details: object = None) -> bool:
        events.append((event, summary))
        return True

    monkeypatch.setattr(tradai_release.domain.notify, "notify", record)

    def crash(at: int, action: A.Action) -> None:
        raise Crash("boom")

    with pytest.raises(Crash):
        world.apply(after_action=crash)
    world.apply()
    assert [event for event, _ in events] == ["apply_failed", "apply_succeeded"]
    assert "boom" in events[0][1]

    set_production(world.repo, "dev", "PascalStrategy", 2)
    promoted = commit_all(world.repo, "promote PascalStrategy v2 in dev")
    world.apply()
    git(world.repo, "revert", "--no-edit", promoted)
    world.apply()
    world.apply()  # nothing to do: no notification
    assert [event for event, _ in events][2:] == ["apply_succeeded", "rollback_applied"]
    assert events[-1][1].startswith("rolled dev back to PascalStrategy v1")


def test_a_lease_expires_on_the_injected_clock(world: World) -> None:
    table = world.counted.backends.releases
    acquire(table, "dev", holder="crashed-run", deployment_id="d-dead", commit="abc", seconds=600)
    with pytest.raises(LockHeld, match="crashed-run"):
        acquire(table, "dev", holder="next-run", deployment_id="d-next", commit="abc")
    later = datetime.now(UTC) + timedelta(seconds=601)
    with use_clock(lambda: later):
        lease = acquire(table, "dev", holder="next-run", deployment_id="d-next", commit="abc", seconds=600)
    lock = ReleaseTable(table, "dev").lease()
    assert lock is not None and lock.holder == "next-run"
    assert lock.expires_at == int(later.timestamp()) + 600
    lease.release()


def test_a_lease_taken_over_after_expiry_is_lost_by_its_first_holder(world: World) -> None:
    table = world.counted.backends.releases
    stale = acquire(table, "dev", holder="slow-run", deployment_id="d-slow", commit="abc", seconds=-1)
    fresh = acquire(table, "dev", holder="new-run", deployment_id="d-new", commit="abc", seconds=600)
    with pytest.raises(ApplyFailed) as caught:
        stale.renew_if_due()
    assert "taken over" in str(caught.value)
    stale.release()  # must not drop the new holder's lock
    lock = ReleaseTable(table, "dev").lease()
    assert lock is not None and lock.holder == "new-run"
    fresh.release()
    assert ReleaseTable(table, "dev").lease() is None
