"""The apply lease: a heartbeat keeps a live apply's lease, a killed apply's lapses within one lease and the
next run finishes the job (no unlock needed); `invoke unlock` breaks one by hand and records who and why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine_helpers import embedded_repo, server_release_repo, server_settings
from helpers import SOURCE, invoke
from tradai_release.core.clock import stamp, use_clock
from tradai_release.core.errors import InputError, LockHeld
from tradai_release.core.settings import Settings
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.deployments import FAILED, RUNNING
from tradai_release.engine.lock import acquire, unlock
from tradai_release.engine.plan import plan_env
from tradai_release.engine.release_table import Deployment, ReleaseTable, open_release_table
from tradai_release.render.plan import render_text
from tradai_release.repository.environments import environment
from tradai_release.stores import KeyValueTable

LEASE = "4"  # seconds: the default is 60; the mechanism is the same


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return embedded_repo(tmp_path, 2)


def table_of(settings: Settings, env: str) -> KeyValueTable:
    return open_release_table(settings, environment(settings, env))


def test_the_heartbeat_keeps_a_live_lease_and_a_silent_one_lapses(repo: Path) -> None:
    table = table_of(Settings(repo=repo), "dev")
    lease = acquire(table, "dev", holder="slow-apply", deployment_id="d-slow", commit="abc", seconds=2)
    first = ReleaseTable(table, "dev").lease()
    assert first is not None and first.renewed_at == ""
    lease.start_heartbeat()  # beats every third of the lease, whatever the apply is doing
    deadline = time.monotonic() + 10  # the first beat is due after 0.67 s; a loaded machine may be late
    while not (renewed := ReleaseTable(table, "dev").lease()) or not renewed.renewed_at:
        assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
        time.sleep(0.05)
    assert renewed.expires_at >= first.expires_at  # kept in whole seconds, like the TTL
    assert (renewed.acquired_at, renewed.commit) == (first.acquired_at, "abc")  # renewal keeps the rest
    held = rf"locked by slow-apply \(deployment d-slow, lease {lease.lease_id}\)"
    with pytest.raises(LockHeld, match=held):
        acquire(table, "dev", holder="next", deployment_id="d-next", commit="abc")

    lease.stop()  # the holder dies: nobody renews any more, and one lease later it has lapsed
    later = datetime.now(UTC) + timedelta(seconds=3)
    with use_clock(lambda: later):
        taken = acquire(table, "dev", holder="next", deployment_id="d-next", commit="abc", seconds=60)
    assert ReleaseTable(table, "dev").lease().holder == "next"  # type: ignore[union-attr]
    taken.release()


def held_by_a_dead_apply(settings: Settings, seconds: float = 600) -> str:
    """A lease and a running deployment record, as an apply killed mid-way leaves them; the lease id."""
    table = table_of(settings, "dev")
    lease = acquire(table, "dev", holder="ci-run-7", deployment_id="d-dead", commit="abc", seconds=seconds)
    running = Deployment("dev", "abc", "d-dead", RUNNING, "ci-run-7", "t", stamp())
    ReleaseTable(table, "dev").save_deployment(running)
    return lease.lease_id


def test_plan_shows_the_lease_and_unlock_breaks_it_recording_who_and_why(repo: Path) -> None:
    settings = Settings(repo=repo, actor="alice")
    lease_id = held_by_a_dead_apply(settings)
    table = table_of(settings, "dev")

    plan = plan_env(ReleaseContext.open(settings, "dev"))
    assert plan.to_dict()["lease"]["holder"] == "ci-run-7"
    assert f"locked: ci-run-7 holds lease {lease_id} for deployment d-dead" in render_text(plan)
    assert f"`invoke unlock --env dev --lease {lease_id}`" in render_text(plan)

    with pytest.raises(InputError, match=r"unlock: --lease: the lease of dev is .*, not nope"):
        unlock(table, "dev", "nope", actor="alice", reason="stuck")
    with pytest.raises(InputError, match=r"still renews it .* pass --force to break a live one"):
        unlock(table, "dev", lease_id, actor="alice", reason="stuck")
    assert ReleaseTable(table, "dev").lease() is not None  # refused: nothing changed

    done = invoke(repo, "unlock", "--env", "dev", "--lease", lease_id, "--reason", "runner lost", "--force",
                  "--json", env={"TRADAI_ACTOR": "alice"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["unlocked"]["by"] == "alice"
    assert ReleaseTable(table, "dev").lease() is None
    record = ReleaseTable(table, "dev").deployment("d-dead")
    assert record is not None and record.outcome == FAILED
    assert record.unlocked is not None and (record.unlocked["by"], record.unlocked["reason"]) == (
        "alice", "runner lost")
    assert record.unlocked["forced"] is True

    missing = invoke(repo, "unlock", "--env", "dev", "--lease", lease_id, "--reason", "again")
    assert missing.returncode == 1 and missing.stderr == "error: unlock: --lease: dev holds no lease lock\n"
    no_reason = invoke(repo, "unlock", "--env", "dev", "--lease", lease_id)
    assert no_reason.returncode == 1 and no_reason.stderr.startswith("error: unlock: --reason: required")


def test_a_lapsed_lease_taken_over_marks_the_dead_apply_failed(repo: Path) -> None:
    settings = Settings(repo=repo)
    held_by_a_dead_apply(settings, seconds=-1)  # lapsed already
    assert apply_env(ReleaseContext.open(settings, "dev")).outcome == "succeeded"
    dead = ReleaseTable(table_of(settings, "dev"), "dev").deployment("d-dead")
    assert dead is not None and dead.outcome == FAILED
    assert dead.error is not None and "stopped renewing the lease" in dead.error


def kill_mid_apply(repo: Path, table: KeyValueTable, env: str, variables: Mapping[str, str]) -> str:
    """Start ``invoke apply``, kill -9 it once it has started writing (its deployment record says running);
    the lease id it left."""
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(SOURCE), "apply", "--env", env],
        cwd=repo, env={**os.environ, "TRADAI_REPO": str(repo), **variables},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    releases = ReleaseTable(table, env)
    while not any(d.outcome == RUNNING for d in releases.deployments()):
        assert process.poll() is None, f"the apply ended before it could be killed: {process.stderr.read()}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the apply never took the lease"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    held = releases.lease()
    assert held is not None and held.lease_id is not None  # the dead apply never released it
    return held.lease_id


def rerun_until_it_applies(repo: Path, env: str, variables: Mapping[str, str], lease_id: str) -> float:
    """Re-run ``invoke apply`` until it succeeds; the seconds it took after the kill."""
    killed = time.monotonic()
    while True:
        done = invoke(repo, "apply", "--env", env, "--json", env=dict(variables))
        if done.returncode == 0:
            assert json.loads(done.stdout)["outcome"] == "succeeded"
            return time.monotonic() - killed
        assert f"lease {lease_id}) until" in done.stderr, done.stderr  # refused only while the lease lives
        assert time.monotonic() - killed < 90, "the dead apply's lease never lapsed"
        time.sleep(0.5)


def test_a_killed_apply_is_finished_by_a_rerun_within_one_lease_on_the_embedded_default(repo: Path) -> None:
    settings = Settings(repo=repo)
    table = table_of(settings, "dev")
    variables = {"TRADAI_LEASE_SECONDS": LEASE}
    lease_id = kill_mid_apply(repo, table, "dev", variables)
    with pytest.raises(LockHeld, match="until"):  # at once: the dead apply's lease still lives
        apply_env(ReleaseContext.open(settings, "dev"))
    took = rerun_until_it_applies(repo, "dev", variables, lease_id)
    assert took < float(LEASE) + 60  # one lease, plus the re-runs' start-up on a loaded machine
    assert plan_env(ReleaseContext.open(settings, "dev")).empty
    deployments = ReleaseTable(table, "dev").deployments()
    assert [d.outcome for d in deployments[:2]] == ["succeeded", FAILED]  # the killed one says it died


@pytest.mark.e2e
def test_a_killed_apply_is_finished_by_a_rerun_within_one_lease_on_moto_server(
    moto_server: str, mlflow_server: str, tmp_path: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    settings = server_settings(moto_server, mlflow_server, tmp_path / "repo", uid)
    repo = server_release_repo(settings, moto_server, tmp_path, uid)
    variables = {
        "TRADAI_LEASE_SECONDS": LEASE,
        "TRADAI_AWS_ENDPOINT_URL": moto_server,
        "TRADAI_HUB_URI": f"s3://hub-{uid}",
        "TRADAI_HUB_ENDPOINT_URL": moto_server,
        "TRADAI_R2_ACCESS_KEY_ID": "testing",
        "TRADAI_R2_SECRET_ACCESS_KEY": "testing",
        "TRADAI_ENVS__PROD__CONFIG_STORE_URI": f"s3://configs-{uid}",
        "TRADAI_ENVS__PROD__CONFIG_TABLE_URI": f"dynamodb://tradai-config-versions-prod-{uid}",
        "TRADAI_ENVS__PROD__RELEASE_TABLE_URI": f"dynamodb://tradai-releases-prod-{uid}",
        "TRADAI_ENVS__PROD__MLFLOW_TRACKING_URI": mlflow_server,
    }
    table = table_of(settings, "prod")
    lease_id = kill_mid_apply(repo, table, "prod", variables)
    took = rerun_until_it_applies(repo, "prod", variables, lease_id)
    assert took < float(LEASE) + 60
    assert plan_env(ReleaseContext.open(settings, "prod")).empty
    assert ReleaseTable(table, "prod").deployments()[1].outcome == FAILED
