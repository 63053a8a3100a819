"""Release history against loopback servers: deployment records in DynamoDB (moto_server), MLflow server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine_helpers import (
    PROFILES,
    TAG,
    CountingTable,
    commit_all,
    git,
    make_repo,
    push_tag,
    register_runs,
    rename_models,
    server_settings,
    set_production,
)
from tradai_release.core.clock import stamp, use_clock
from tradai_release.core.endpoints import AwsOptions
from tradai_release.engine.actions import Action
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.deployments import list_deployments
from tradai_release.engine.history import history, live_at
from tradai_release.engine.release_table import open_release_table
from tradai_release.hub.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.repository.environments import environment
from tradai_release.stores.aws import client
from tradai_release.workflows.provision import provision

pytestmark = pytest.mark.e2e
DAY = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def test_history_timeline_against_loopback_servers(
    moto_server: str, mlflow_server: str, tmp_path: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    now = [DAY]

    def clock() -> datetime:
        return now[0]

    def tick(index: int, action: Action) -> None:
        now[0] += timedelta(seconds=10)

    def day(n: int, hour: int = 10) -> datetime:
        return DAY + timedelta(days=n, hours=hour - 10)

    with use_clock(clock):
        settings = server_settings(moto_server, mlflow_server, tmp_path / "repo", uid)
        client(AwsOptions(endpoint_url=moto_server), "s3").create_bucket(Bucket=f"hub-{uid}")
        provision(settings, environment(settings, "prod"))
        sha = push_tag(ModelHub.from_settings(settings), tmp_path)
        registry = MlflowRegistry.for_env(environment(settings, "prod"), settings)
        register_runs(registry, uid, (1.2, 1.3))
        repo = make_repo(tmp_path, TAG, sha)
        rename_models(repo, uid)
        commit_all(repo, "unique model names for the shared mlflow server")
        pascal = f"PascalStrategy_{uid}"
        ids = {}

        now[0] = day(1)
        ids["first"] = apply_env(
            ReleaseContext.open(settings, "prod"), actor="release.yml", after_action=tick
        ).deployment_id
        set_production(repo, "prod", "PascalStrategy", 2, profiles=(1, 2))
        promoted = commit_all(repo, "Promote PascalStrategy v2 in prod profiles 1, 2 (#21)")
        now[0] = day(2)

        def crash(index: int, action: Action) -> None:
            tick(index, action)
            if action.kind == "set_alias":
                raise RuntimeError("runner lost")

        with pytest.raises(RuntimeError):
            apply_env(ReleaseContext.open(settings, "prod"), after_action=crash)
        ids["failed"] = list_deployments(settings, environment(settings, "prod"))[0].deployment_id
        now[0] = day(3)
        ids["promote"] = apply_env(ReleaseContext.open(settings, "prod"), after_action=tick).deployment_id
        git(repo, "revert", "--no-edit", promoted)
        now[0] = day(4)
        ids["revert"] = apply_env(ReleaseContext.open(settings, "prod"), after_action=tick).deployment_id
        now[0] = day(5, hour=9)
        registry.set_alias(pascal, "p3", 2)  # by hand
        now[0] = day(5)
        ids["repair"] = apply_env(ReleaseContext.open(settings, "prod"), after_action=tick).deployment_id

    def versions(moment: datetime) -> dict[int, int]:
        table = CountingTable(open_release_table(settings, environment(settings, "prod")))
        found = live_at(
            ReleaseContext.open(settings, "prod"), stamp(moment), strategy="PascalStrategy", table=table
        )
        assert sum(table.reads.values()) <= 2 and dict(table.reads).keys() == {"query"}
        return {h.pin.profile: h.pin.version for h in found.pins}

    ones = {p: 1 for p in PROFILES}
    assert versions(day(1, hour=9)) == {}
    assert versions(day(1, hour=12)) == ones
    failed = live_at(ReleaseContext.open(settings, "prod"), stamp(day(2, hour=12)))
    assert failed.partial is not None and failed.partial.state == "failed"
    assert failed.partial.deployment_id == ids["failed"] and len(failed.partial.done) >= 1
    moved_by_failure = {
        h.pin.profile for h in failed.pins if h.pin.strategy == "PascalStrategy" and h.pin.version == 2
    }
    assert len(moved_by_failure) == 1 and moved_by_failure <= {1, 2}
    assert versions(day(3, hour=12)) == ones | {1: 2, 2: 2}
    assert versions(day(4, hour=12)) == ones
    assert versions(day(5, hour=12)) == ones

    table = CountingTable(open_release_table(settings, environment(settings, "prod")))
    rows = history(ReleaseContext.open(settings, "prod"), table=table).rows
    assert dict(table.reads) == {"query": 3}  # deployments, journals, progress's decisions
    assert [r.deployment.deployment_id for r in rows if r.change is None] == [ids["repair"]]
    assert rows[0].note == f"repaired drift: alias {pascal}@p3"
    promote_rows = [r for r in rows if r.deployment.deployment_id == ids["promote"]]
    assert promote_rows[0].pull_request == 21
    records = {d.deployment_id: d.outcome for d in list_deployments(settings, environment(settings, "prod"))}
    assert {r.deployment.deployment_id: r.deployment.outcome for r in rows} == records
