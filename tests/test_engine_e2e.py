"""The release loop against real servers on loopback: moto_server (S3 + DynamoDB) and mlflow server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from engine_helpers import (
    STRATEGIES,
    TAG,
    commit_all,
    counted_from_settings,
    git,
    make_repo,
    push_tag,
    register_runs,
    rename_models,
    server_settings,
)
from tradai_release.configs.service import ConfigVersionService
from tradai_release.core.endpoints import AwsOptions
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.plan import plan_env
from tradai_release.hub.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.registry.lifecycle import current_lifecycle
from tradai_release.render.plan import render_markdown
from tradai_release.repository.environments import environment
from tradai_release.repository.manifest_edit import edit_manifest
from tradai_release.stores.aws import client
from tradai_release.workflows.provision import provision
from tradai_release.workflows.validate import validate_repository

pytestmark = pytest.mark.e2e
METRICS = {"total_profit": 100.0, "max_drawdown": 0.1, "win_rate": 0.5, "total_trades": 40.0}


def model_state(registry: MlflowRegistry, name: str) -> dict[int, tuple[str, tuple[str, ...]]]:
    return {i.version: (current_lifecycle(i), i.aliases) for i in registry.versions([name])[name]}


def test_pr_merge_apply_revert_against_loopback_servers(
    moto_server: str, mlflow_server: str, tmp_path: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    settings = server_settings(moto_server, mlflow_server, tmp_path / "repo", uid)
    # moto refuses region "auto" (what an R2 endpoint gets) for bucket creation: make the hub's first
    client(AwsOptions(endpoint_url=moto_server), "s3").create_bucket(Bucket=f"hub-{uid}")
    provision(settings, environment(settings, "prod"))
    sha = push_tag(ModelHub.from_settings(settings), tmp_path)
    registry = MlflowRegistry.for_env(environment(settings, "prod"), settings)
    register_runs(registry, uid, (1.2, 0.3))  # v2 misses the sharpe threshold: prod gate wants an override
    repo = make_repo(tmp_path, TAG, sha)
    rename_models(repo, uid)
    commit_all(repo, "unique model names for the shared mlflow server")
    pascal = f"PascalStrategy_{uid}"

    assert apply_env(ReleaseContext.open(settings, "prod")).outcome == "succeeded"
    assert plan_env(ReleaseContext.open(settings, "prod")).empty
    # what prune compares with the manifests, read over the servers' APIs (S3 listing, MLflow REST search)
    assert ModelHub.from_settings(settings).pointer_profiles("prod") == [1, 2, 3, 4, 5]
    assert registry.aliased_models()[pascal] == ["p1", "p2", "p3", "p4", "p5"]

    # a pull request promotes v2 in profile 3; its sharpe fails the comparator: the gate needs an override
    git(repo, "checkout", "-q", "-b", "promote-p3")
    with edit_manifest(repo / "releases" / "prod" / "profile-3.yaml") as editor:
        editor.set_production("PascalStrategy", 2)
    gated = validate_repository(repo, offline=False, base="main", settings=settings)
    assert [p.field for p in gated.problems] == ["strategies.PascalStrategy.model.production"]
    with edit_manifest(repo / "releases" / "prod" / "profile-3.yaml") as editor:
        editor.set_override("PascalStrategy", "alice", "shadow-traded for two weeks")
    commit_all(repo, "promote PascalStrategy v2 in prod profile 3")
    report = validate_repository(repo, offline=False, base="main", settings=settings)
    assert report.ok, report.problems
    plan = plan_env(ReleaseContext.open(settings, "prod"))
    assert ("set_alias", f"{pascal}@p3") in [(a.kind, a.target) for a in plan.actions]
    assert "### Profile 3" in render_markdown(plan, report)

    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge promote-p3", "promote-p3")
    merged = apply_env(ReleaseContext.open(settings, "prod"), actor="release.yml")
    assert merged.outcome == "succeeded"
    state = model_state(registry, pascal)
    assert state[2] == ("Production", ("p3",)) and state[1][0] == "Production"  # profiles 1, 2, 4, 5 keep v1
    configs = ConfigVersionService.for_env(environment(settings, "prod"), settings).active_by_strategy()
    assert set(configs) == set(STRATEGIES)
    pointer = ModelHub.from_settings(settings).get_profile_pointer("prod", 3)
    assert pointer is not None and (pointer.tag, pointer.sha256) == (TAG, sha)

    git(repo, "revert", "--no-edit", "-m", "1", "HEAD")
    assert apply_env(ReleaseContext.open(settings, "prod")).outcome == "succeeded"
    state = model_state(registry, pascal)
    assert "p3" in state[1][1] and state[1][0] == "Production"
    assert state[2] == ("Archived", ())

    counted = counted_from_settings(settings, "prod")
    again = apply_env(ReleaseContext.open(settings, "prod", backends=counted.backends))
    assert again.outcome == "noop" and counted.writes == 0
    assert plan_env(ReleaseContext.open(settings, "prod")).empty


def test_two_applies_racing_on_dynamodb_make_one_deployment(moto_server: str, tmp_path: Path) -> None:
    import threading
    from typing import cast

    from engine_helpers import register_versions
    from fake_registry import FakeRegistry
    from servers import OneWriteAtATime
    from tradai_release.configs.repository import ConfigRepository
    from tradai_release.configs.service import ConfigVersionService as Service
    from tradai_release.core.errors import LockHeld
    from tradai_release.engine.release_table import ReleaseTable
    from tradai_release.engine.state import EngineBackends
    from tradai_release.stores import KeyValueTable, open_object_store, open_table
    from tradai_release.stores.local import LocalObjectStore

    uid = uuid.uuid4().hex[:8]
    settings = server_settings(moto_server, "unused", tmp_path / "repo", uid)
    client(AwsOptions(endpoint_url=moto_server), "s3").create_bucket(Bucket=f"hub-{uid}")
    provision(settings, environment(settings, "prod"))
    hub = ModelHub(LocalObjectStore(tmp_path / "hub"), workers=1)
    repo = make_repo(tmp_path, TAG, push_tag(hub, tmp_path))
    registry = FakeRegistry()
    register_versions(registry, 1)
    aws = settings.aws()
    backends = settings.backends("prod")

    def engine() -> EngineBackends:  # each racer has its own clients, as two CI jobs would
        table = open_table(backends.config_table_uri, table="", partition_key="strategy_name",
                           sort_key="config_id", aws=aws)
        uri = backends.release_table_uri
        releases = open_table(uri, table="", partition_key="pk", sort_key="sk", aws=aws)
        table, releases = (cast(KeyValueTable, OneWriteAtATime(t)) for t in (table, releases))
        store = open_object_store(backends.config_store_uri, aws=aws)
        return EngineBackends("prod", Service(table, ConfigRepository(store)), registry, hub, releases)

    results: list[object] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        mine = engine()
        barrier.wait()
        try:
            results.append(apply_env(ReleaseContext.open(settings, "prod", repo=repo, backends=mine)).outcome)
        except LockHeld as err:
            results.append(type(err).__name__)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) in (["LockHeld", "succeeded"], ["noop", "succeeded"])  # type: ignore[type-var]
    assert [d.outcome for d in ReleaseTable(engine().releases, "prod").deployments()] == ["succeeded"]
    assert plan_env(ReleaseContext.open(settings, "prod", repo=repo, backends=engine())).empty
