"""Shared fixtures: every test runs with fake AWS credentials, a temporary HOME and state dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tradai_release.bots import VARIABLES

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """No test can reach a real account, the developer's home or the repo's own .tradai/."""
    home = tmp_path_factory.mktemp("home")
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TRADAI_STATE_DIR", str(state))
    for var in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "TRADAI_AWS_ENDPOINT_URL",
        "TRADAI_HUB_URI",
        "TRADAI_HUB_ENDPOINT_URL",
        "TRADAI_HUB_REGION",
        "TRADAI_WEBHOOK_URL",
        "TRADAI_TRACE_ID",
        "TRADAI_REPO",
        "TRADAI_ACTOR",
        "TRADAI_DEPLOY_TARGET",
        *VARIABLES,  # a bot's pins (a deployment's variables)
        "MLFLOW_TRACKING_URI",
        "CF_R2_ACCESS_KEY_ID",
        "CF_R2_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "tradai-test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "tradai-test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.invalid")
    yield state


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real moto_server (S3 + DynamoDB) on 127.0.0.1, one per test run.

    Tests sharing it must use unique bucket/table names (e.g. from ``uuid4().hex[:8]``).
    """
    from servers import start_moto

    server = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real ``mlflow server`` on SQLite at 127.0.0.1, one per test run.

    Tests sharing it must use unique registered-model names.
    """
    from servers import start_mlflow

    server = start_mlflow(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server.url
    finally:
        server.stop()


SERVER_FIXTURES = frozenset({"moto_server", "mlflow_server"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Ask ``pytest -n 2 --dist loadgroup`` to run every test that needs a loopback server on one worker.

    pytest-xdist 3.8 does not honour the group under pytest 9 (it appends the group to ``_nodeid``,
    which pytest 9 no longer reads), so today each worker starts its own pair once per run."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("servers"))
