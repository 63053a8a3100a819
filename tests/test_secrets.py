"""Secrets stay out of everything a person or a page sees: error lines, deployment records, notifications,
the release board; a `.env` cannot redirect CI; the webhook's secret path travels over https only."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from engine_helpers import World, embedded_repo, make_world
from helpers import commit_all, invoke
from tradai_release.core.redact import REDACTED, scrub_text
from tradai_release.core.settings import Settings
from tradai_release.domain.notify import notify, webhook_allowed
from tradai_release.engine.release_table import ReleaseTable
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.workflows.validate import validate_repository
from webhook_server import Webhook, serve

PASSWORD = "S3cretPassw0rd"
HOOK_SECRET = "T0pSecretHookPath"
LEAKY_URI = f"http://ci-bot:{PASSWORD}@127.0.0.1:9"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serve() as server:
        yield server


def every_byte(root: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())


def test_no_password_reaches_a_page_a_record_a_line_or_a_notification(
    tmp_path: Path, webhook: Webhook
) -> None:
    repo = embedded_repo(tmp_path, 2)
    variables = {
        "TRADAI_ENVS__DEV__MLFLOW_TRACKING_URI": LEAKY_URI,  # nothing listens there
        "TRADAI_BACKEND_TIMEOUT_SECONDS": "1",
        "TRADAI_BACKEND_RETRIES": "0",
        "TRADAI_WEBHOOK_URL": f"{webhook.url}/{HOOK_SECRET}",
        "TRADAI_NOTIFY_ATTEMPTS": "1",
    }
    plan = invoke(repo, "plan", "--env", "dev", env=variables)
    apply = invoke(repo, "apply", "--env", "dev", env=variables)
    site = tmp_path / "site"
    report = invoke(repo, "report", "--out", str(site), "--env", "dev", env=variables)
    assert plan.returncode == apply.returncode == 1 and plan.stderr.startswith("error: mlflow: http://***@")
    assert report.returncode == 0, report.stderr
    board = (site / "index.html").read_text()
    assert "cannot read dev: RegistryError" in board  # the public page names the class only

    written = [plan.stdout, plan.stderr, apply.stdout, apply.stderr, report.stdout, report.stderr]
    state = Path(os.environ["TRADAI_STATE_DIR"])
    seen = "".join(written).encode() + every_byte(site) + every_byte(state)
    seen += json.dumps(webhook.bodies).encode()
    assert PASSWORD.encode() not in seen and HOOK_SECRET.encode() not in seen


def test_a_failed_apply_records_and_notifies_no_secret(
    world: World, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-" + PASSWORD)
    settings = world.settings.model_copy(
        update={"webhook_url": SecretStr(f"{webhook.url}/{HOOK_SECRET}"), "notify_attempts": 1}
    )
    world.settings = settings

    def leak(index: int, action: object) -> None:  # a bug whose message carries both (not a TradaiError)
        raise RuntimeError(f"lost {LEAKY_URI} with token tok-{PASSWORD}")

    with pytest.raises(RuntimeError):
        world.apply(after_action=leak)
    failed = ReleaseTable(world.counted.backends.releases, "dev").deployments()[0]
    assert failed.outcome == "failed" and failed.error is not None
    assert PASSWORD not in json.dumps(failed.to_record()) and "http://***@127.0.0.1:9" in failed.error
    assert webhook.bodies and PASSWORD not in json.dumps(webhook.bodies)
    assert HOOK_SECRET not in json.dumps(webhook.bodies)


def test_the_scrubber_and_reprs() -> None:
    assert scrub_text(f"see {LEAKY_URI}/api and https://token@host/x") == (
        "see http://***@127.0.0.1:9/api and https://***@host/x"
    )
    assert scrub_text("key abcdefgh1234 here", frozenset({"abcdefgh1234"})) == f"key {REDACTED} here"
    assert PASSWORD not in repr(MlflowRegistry(LEAKY_URI))


def test_a_tracked_env_file_fails_validate(tmp_path: Path) -> None:
    repo = embedded_repo(tmp_path, 1)
    (repo / ".env").write_text("TRADAI_ENVS__PROD__MLFLOW_TRACKING_URI=https://elsewhere.example/\n")
    commit_all(repo, "a .env slipped in")
    report = validate_repository(repo, offline=True)
    assert [(p.file, p.field) for p in report.problems] == [(".env", "(file)")]
    done = invoke(repo, "validate", "--offline")
    assert done.returncode == 1
    assert done.stderr.startswith("error: .env: (file): a .env file is tracked in git")


def test_ci_never_reads_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADAI_ACTOR", raising=False)
    (tmp_path / ".env").write_text("TRADAI_ACTOR=from-dotenv\n")
    monkeypatch.delenv("CI", raising=False)
    assert Settings().actor == "from-dotenv"  # a developer's checkout: read
    monkeypatch.setenv("CI", "true")
    assert Settings().actor != "from-dotenv"  # any CI runner: ignored


def test_the_webhook_is_https_or_loopback_only(webhook: Webhook) -> None:
    assert webhook_allowed("https://hooks.example/T0/B1")
    assert webhook_allowed(f"{webhook.url}/x") and webhook_allowed("http://localhost:8080/x")
    assert not webhook_allowed("http://hooks.example/T0/B1") and not webhook_allowed("ftp://x")
    settings = Settings(webhook_url=SecretStr("http://hooks.example/T0/B1"))
    assert notify(settings, "apply_failed", "not sent: plain http to a remote host") is False


@pytest.fixture
def world(tmp_path: Path, isolated_environment: Path) -> World:
    return make_world(tmp_path, isolated_environment)
