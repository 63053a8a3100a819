"""A backend dying in the middle of an apply: exit within the configured budget, one error naming the
backend, the lease released (or, when the release table itself is gone, left to expire), and a re-run
converges once the backend is back. Real loopback servers."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine_helpers import server_release_repo, server_settings
from servers import free_port, start_mlflow
from tradai_release.core.clock import use_clock
from tradai_release.core.errors import ApplyFailed, LockHeld
from tradai_release.core.settings import Settings
from tradai_release.engine.actions import Action
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.plan import plan_env
from tradai_release.engine.release_table import ReleaseTable
from tradai_release.engine.state import EngineBackends
from tradai_release.repository.environments import environment
from tradai_release.stores.aws import client

pytestmark = pytest.mark.e2e

TIMEOUT = 2.0
RETRIES = 1
# What one call may take against a dead backend with the settings above: every attempt timing out,
# plus MLflow's back-off (none before the first retry, up to 1 s jitter). Actions running when the
# backend dies end within the same budget, in parallel.
BUDGET = (RETRIES + 1) * TIMEOUT + 1.0
SLACK = 10.0  # a loaded 2-core test machine; the default client took over 4 minutes here


def bounded(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"backend_timeout_seconds": TIMEOUT, "backend_retries": RETRIES, "apply_concurrency": 4}
    )


def test_mlflow_killed_mid_apply_fails_within_budget_releases_the_lease_and_a_rerun_converges(
    moto_server: str, tmp_path: Path
) -> None:
    workdir = tmp_path / "mlflow"
    workdir.mkdir()
    server = start_mlflow(workdir)  # this test's own server: the shared one is not ours to kill
    try:
        uid = uuid.uuid4().hex[:8]
        settings = bounded(server_settings(moto_server, server.url, tmp_path / "repo", uid))
        server_release_repo(settings, moto_server, tmp_path, uid)
        killed: list[float] = []

        def kill_mlflow(index: int, action: Action) -> None:
            if not killed:
                server.kill()
                killed.append(time.monotonic())

        with pytest.raises(ApplyFailed) as caught:
            apply_env(ReleaseContext.open(settings, "prod"), after_action=kill_mlflow)
        elapsed = time.monotonic() - killed[0]
        message = str(caught.value)
        print(f"mlflow killed: apply failed {elapsed:.1f}s later: {message}")  # shown with -rP
        assert f"mlflow: {server.url}: cannot reach the server after {RETRIES + 1} attempts" in message
        assert message.endswith("Connection refused)")
        assert elapsed < BUDGET + SLACK, f"{elapsed:.1f}s"
        releases = EngineBackends.from_settings(settings, environment(settings, "prod")).releases
        assert ReleaseTable(releases, "prod").lease() is None
        failed = ReleaseTable(releases, "prod").deployments()[0]
        assert failed.outcome == "failed"
        statuses = {a["status"] for a in failed.actions}
        assert {"done", "failed"} <= statuses

        port = int(server.url.rsplit(":", 1)[1])
        server = start_mlflow(workdir, port=port)  # the same registry, back at the same URL
        assert apply_env(ReleaseContext.open(settings, "prod")).outcome == "succeeded"
        assert plan_env(ReleaseContext.open(settings, "prod")).empty
    finally:
        server.stop()


def test_release_table_refusing_connections_fails_within_budget_and_the_lease_expires(
    moto_server: str, mlflow_server: str, tmp_path: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    settings = bounded(server_settings(moto_server, mlflow_server, tmp_path / "repo", uid))
    server_release_repo(settings, moto_server, tmp_path, uid)
    backends = EngineBackends.from_settings(settings, environment(settings, "prod"))
    table = backends.releases
    closed = replace(settings.aws(), endpoint_url=f"http://127.0.0.1:{free_port()}")
    cut: list[float] = []

    def refuse_table(index: int, action: Action) -> None:
        if not cut:  # from now on the release table's endpoint refuses every connection
            table.aws = closed  # type: ignore[attr-defined]
            table._client = client(closed, "dynamodb")  # type: ignore[attr-defined]
            cut.append(time.monotonic())

    with pytest.raises(ApplyFailed) as caught:
        apply_env(ReleaseContext.open(settings, "prod", backends=backends), after_action=refuse_table)
    elapsed = time.monotonic() - cut[0]
    message = str(caught.value)
    print(f"table refused: apply failed {elapsed:.1f}s later: {message}")  # shown with -rP
    assert f"dynamodb://tradai-releases-prod-{uid}: cannot reach {closed.endpoint_url} after 2 attempts" in (
        message
    )
    assert "the release table is unreachable" in message and "expires at" in message
    assert elapsed < BUDGET + SLACK, f"{elapsed:.1f}s"

    live = EngineBackends.from_settings(
        settings, environment(settings, "prod")
    )  # the table is reachable again
    lock = ReleaseTable(live.releases, "prod").lease()
    assert lock is not None  # could not be released: it expires by itself
    with pytest.raises(LockHeld):
        apply_env(ReleaseContext.open(settings, "prod"))
    ahead = datetime.fromtimestamp(lock.expires_at + 1, UTC) - datetime.now(UTC)
    with use_clock(lambda: datetime.now(UTC) + ahead):  # the lease's 15 minutes have passed
        assert apply_env(ReleaseContext.open(settings, "prod")).outcome == "succeeded"
        assert plan_env(ReleaseContext.open(settings, "prod")).empty
    assert ReleaseTable(live.releases, "prod").lease() is None
