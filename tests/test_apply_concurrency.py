"""Concurrent apply: the same end state, journal and deployment record as a sequential one; phase
order kept; a failure mid-phase stops the apply cleanly and a re-run converges."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine_helpers import World, commit_all, make_world, set_production
from fake_registry import FakeRegistry
from tradai_release.core.errors import ApplyFailed, RegistryError
from tradai_release.engine import actions as A
from tradai_release.engine.apply import phases
from tradai_release.engine.release_table import Deployment, ReleaseTable


class SlowRegistry(FakeRegistry):
    """A FakeRegistry whose alias and tag writes take a while, counting how many run at once."""

    def __init__(self, delay: float = 0.01) -> None:
        super().__init__()
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_alias: tuple[str, str] | None = None  # (model, alias) whose set_alias fails once

    def _slow(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._slow()
        if self.fail_alias == (name, alias):
            self.fail_alias = None
            raise RegistryError(f"{name} alias {alias}", "injected failure")
        super().set_alias(name, alias, version)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self._slow()
        super().set_version_tag(name, version, key, value)


def slow_world(tmp_path: Path, state: Path, name: str, template: World | None = None) -> World:
    world = make_world(tmp_path / name, state / name, template=template)
    slow = SlowRegistry()
    slow._models = world.registry._models  # the versions make_world registered
    world.registry = slow
    world.counted.backends.registry = slow
    return world


@pytest.fixture
def template(tmp_path: Path, isolated_environment: Path) -> World:
    return make_world(tmp_path / "template", isolated_environment / "template")


def journal_set(world: World, deployment: Deployment) -> set[tuple[int, str, str, str]]:
    assert deployment.deployment_id is not None
    entries = ReleaseTable(world.counted.backends.releases, "dev").journal(deployment.deployment_id)
    return {(e.index, e.action.kind, e.action.target, e.status) for e in entries}


def record_of(world: World, deployment: Deployment) -> list[tuple[Any, ...]]:
    stored = next(
        d for d in ReleaseTable(world.counted.backends.releases, "dev").deployments()
        if d.deployment_id == deployment.deployment_id
    )
    return [(a["kind"], a["target"], a["status"]) for a in stored.actions]


def test_concurrent_apply_matches_sequential_state_journal_and_record(
    template: World, tmp_path: Path, isolated_environment: Path
) -> None:
    worlds = {
        workers: slow_world(tmp_path, isolated_environment, f"w{workers}", template) for workers in (1, 8)
    }
    results: dict[int, list[tuple[Deployment, set[Any], list[Any]]]] = {1: [], 8: []}
    for step in range(2):
        for workers, world in worlds.items():
            if step == 1:  # a second commit moves aliases and archives the replaced versions
                set_production(world.repo, "dev", "PascalStrategy", 2)
                set_production(world.repo, "dev", "KeplerStrategy", 2, profiles=(1, 2))
                commit_all(world.repo, "promote v2")
            deployment = world.apply(concurrency=workers)
            assert deployment.outcome == "succeeded"
            journaled, recorded = journal_set(world, deployment), record_of(world, deployment)
            results[workers].append((deployment, journaled, recorded))
            assert world.plan().empty
    sequential, concurrent = worlds[1], worlds[8]
    assert concurrent.live() == sequential.live()
    for (seq, seq_journal, seq_record), (con, con_journal, con_record) in zip(
        results[1], results[8], strict=True
    ):
        shape = [[(a["kind"], a["target"], a["status"]) for a in d.actions] for d in (con, seq)]
        assert shape[0] == shape[1]  # the same actions (details differ only in timestamps)
        assert con_journal == seq_journal and len(con_journal) == len(seq.actions)
        assert con_record == seq_record and {status for *_, status in con_record} == {"done"}
    assert sequential.registry.most_in_flight == 1
    assert 1 < concurrent.registry.most_in_flight <= 8
    kinds = [kind for _, kind, *_ in sorted(results[8][1][1])]
    assert A.ArchiveVersion.kind in kinds and A.SetAlias.kind in kinds  # the second apply demoted versions


def test_phases_finish_in_plan_order_and_one_key_keeps_its_order(
    template: World, tmp_path: Path, isolated_environment: Path
) -> None:
    world = slow_world(tmp_path, isolated_environment, "order", template)
    plan = world.plan()
    cut = phases(plan.actions)
    phase_of = {index: number for number, phase in enumerate(cut) for index, _ in phase}
    assert [i for phase in cut for i, _ in phase] == list(range(len(plan.actions)))
    assert len(cut) >= 6  # upload, create, activate, verify, lifecycle, alias, pointer, record
    completed: list[int] = []
    world.apply(concurrency=8, after_action=lambda index, action: completed.append(index))
    assert sorted(completed) == list(range(len(plan.actions)))
    assert [phase_of[i] for i in completed] == sorted(phase_of[i] for i in completed)
    by_key: dict[str, list[int]] = {}
    for index in completed:
        by_key.setdefault(plan.actions[index].key, []).append(index)
    assert all(indexes == sorted(indexes) for indexes in by_key.values())
    assert any(len(indexes) > 1 for indexes in by_key.values())  # e.g. p1..p5 aliases of one model


def test_a_failure_mid_phase_stops_the_apply_records_it_and_a_rerun_converges(
    template: World, tmp_path: Path, isolated_environment: Path
) -> None:
    reference = slow_world(tmp_path, isolated_environment, "ref", template)
    reference.apply(concurrency=1)
    world = slow_world(tmp_path, isolated_environment, "fail", template)
    plan = world.plan()
    aliases = [a for a in plan.actions if isinstance(a, A.SetAlias)]
    failing = aliases[len(aliases) // 2]
    world.registry.fail_alias = (failing.model, failing.alias)

    with pytest.raises(ApplyFailed) as caught:
        world.apply(concurrency=8)
    assert "injected failure" in str(caught.value)
    table = world.counted.backends.releases
    failed = ReleaseTable(table, "dev").deployments()[0]
    assert failed.outcome == "failed" and "injected failure" in str(failed.error)
    statuses = {(a["kind"], a["target"]): a["status"] for a in failed.actions}
    assert statuses[(failing.kind, failing.target)] == "failed"
    assert list(statuses.values()).count("failed") == 1
    # nothing of a later phase started; every earlier phase finished
    assert all(statuses[(a.kind, a.target)] == "pending" for a in plan.actions if a.phase == "pointer")
    assert all(
        statuses[(a.kind, a.target)] == "done"
        for a in plan.actions
        if isinstance(a, A.UploadConfig | A.CreateConfigVersion | A.ActivateConfig | A.VerifyArtifacts)
    )
    # the journal holds exactly the actions that ran, with the status the record gives them
    assert failed.deployment_id is not None
    journaled = {
        (e.action.kind, e.action.target): e.status
        for e in ReleaseTable(table, "dev").journal(failed.deployment_id)
    }
    assert journaled == {key: status for key, status in statuses.items() if status != "pending"}
    assert ReleaseTable(table, "dev").lease() is None

    rerun = world.apply(concurrency=8)
    assert rerun.outcome == "succeeded"
    assert world.plan().empty
    assert world.live() == reference.live()


def test_concurrency_is_a_setting_and_one_means_plan_order(
    template: World, tmp_path: Path, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradai_release.core.settings import Settings

    monkeypatch.setenv("TRADAI_APPLY_CONCURRENCY", "1")
    world = slow_world(tmp_path, isolated_environment, "one", template)
    world.settings = Settings(repo=world.repo)
    assert world.settings.apply_concurrency == 1
    completed: list[int] = []
    world.apply(after_action=lambda index, action: completed.append(index))
    assert completed == sorted(completed) and world.registry.most_in_flight == 1
    monkeypatch.setenv("TRADAI_APPLY_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="apply_concurrency"):
        Settings()
