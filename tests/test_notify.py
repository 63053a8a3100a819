"""The webhook notifier against a real HTTP server on 127.0.0.1: payload, retries, timeout, no secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from tradai_release.core.redact import REDACTED
from tradai_release.core.settings import Settings
from tradai_release.domain.notify import EVENTS, build_payload, notify
from webhook_server import Webhook, serve


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serve() as server:
        yield server


def settings_for(url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "notify_attempts": 3, "notify_backoff_seconds": 0.01, "notify_timeout_seconds": 2.0
    }
    values.update(overrides)
    return Settings(webhook_url=SecretStr(url) if url else None, **values)


def test_payload_shape(webhook: Webhook) -> None:
    sent = notify(
        settings_for(webhook.url),
        "drift_found",
        "PascalStrategy: significant drift in prod",
        {"env": "prod", "strategies": ["PascalStrategy"], "max_psi": 0.41, "table": "a | b\n1 | 2"},
    )
    assert sent is True
    assert len(webhook.bodies) == 1
    body = webhook.bodies[0]
    assert webhook.paths == ["/services/T000/B000/s3cr3tWebhookToken"]
    assert body["text"] == "Drift found: PascalStrategy: significant drift in prod"
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds[0] == "header" and kinds[-1] == "context"
    assert body["blocks"][0]["text"]["text"] == EVENTS["drift_found"]
    fields = [f["text"] for block in body["blocks"] if "fields" in block for f in block["fields"]]
    assert "*env*\nprod" in fields
    assert "*strategies*\nPascalStrategy" in fields
    assert "*max_psi*\n0.41" in fields
    sections = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section" and "text" in b]
    table = [text for text in sections if text.startswith("*table*")]
    assert table and "```\na | b\n1 | 2\n```" in table[0]
    assert "`drift_found`" in body["blocks"][-1]["elements"][0]["text"]


def gaps(webhook: Webhook) -> list[float]:
    """Seconds between consecutive requests the webhook received."""
    return [later - earlier for earlier, later in zip(webhook.times, webhook.times[1:], strict=False)]


def test_retries_on_500_then_succeeds(webhook: Webhook) -> None:
    webhook.statuses = [500, 503]
    settings = settings_for(webhook.url, notify_backoff_seconds=0.2)
    assert notify(settings, "apply_succeeded", "prod applied") is True
    assert len(webhook.bodies) == 3
    first, second = gaps(webhook)
    assert first >= 0.2 and second >= 0.4  # exponential backoff: the first wait, then twice it
    assert webhook.bodies[0] == webhook.bodies[2]


def test_retry_after_is_honoured(webhook: Webhook) -> None:
    webhook.statuses = [429]
    webhook.retry_after = "1"
    assert notify(settings_for(webhook.url), "drift_found", "x") is True
    assert len(webhook.bodies) == 2
    assert gaps(webhook)[0] >= 1.0  # the webhook's wish, not the 0.01 s backoff


def test_retry_after_is_capped(webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from tradai_release.domain import notify as notify_module

    monkeypatch.setattr(notify_module, "_MAX_RETRY_AFTER", 1)
    webhook.statuses = [503]
    webhook.retry_after = "3600"
    started = time.monotonic()
    assert notify(settings_for(webhook.url), "drift_found", "x") is True
    assert 1.0 <= time.monotonic() - started < 10


def test_gives_up_after_attempts_without_raising(webhook: Webhook, caplog: pytest.LogCaptureFixture) -> None:
    webhook.statuses = [500] * 10
    with caplog.at_level(logging.INFO):
        assert notify(settings_for(webhook.url), "apply_failed", "prod failed") is False
    assert len(webhook.bodies) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["notify apply_failed: not sent after 3 attempts (HTTP 500)"]


def test_client_error_is_not_retried(webhook: Webhook) -> None:
    webhook.statuses = [404]
    webhook.retry_after = "1"  # a hint on a refusal does not make it retryable
    assert notify(settings_for(webhook.url), "apply_failed", "x") is False
    assert len(webhook.bodies) == 1


def test_timeout_is_honoured_and_retried(webhook: Webhook, caplog: pytest.LogCaptureFixture) -> None:
    webhook.delay = 0.6  # three times the client timeout: every attempt is abandoned, not answered
    settings = settings_for(webhook.url, notify_timeout_seconds=0.2, notify_attempts=2)
    with caplog.at_level(logging.DEBUG):
        assert notify(settings, "rollback_applied", "prod profile 3 rolled back") is False
    # One line says it was given up on; none of them shows the webhook URL (its path is the secret).
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "not sent after 2 attempts" in warnings[0]
    assert not any("s3cr3tWebhookToken" in r.getMessage() for r in caplog.records)
    # Both attempts reached the server and were abandoned at the client's timeout, not answered.
    assert len(webhook.bodies) == 2


def test_unreachable_webhook_returns_false() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = settings_for(f"http://127.0.0.1:{port}/hook")
    assert notify(settings, "drift_found", "x") is False


def test_no_url_is_a_no_op() -> None:
    assert notify(settings_for(None), "drift_found", "nothing to send") is False


def test_non_http_url_is_refused(tmp_path: Any) -> None:
    target = tmp_path / "hook"
    assert notify(settings_for(f"file://{target}"), "drift_found", "x") is False
    assert not target.exists()


def test_nothing_unexpected_escapes(webhook: Webhook) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    assert notify(settings_for(webhook.url), "drift_found", "x", {"bad": Unprintable()}) is False


def test_no_secret_in_the_payload(webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_0123456789abcdef")
    settings = settings_for(webhook.url, r2_secret_access_key=SecretStr("r2-secret-value-xyz"))
    details = {
        "r2_secret_access_key": "r2-secret-value-xyz",
        "api_token": "plain-token",
        "access_key_id": "AKIAEXAMPLE",
        "password": "hunter2hunter2",
        "credential": SecretStr("wrapped"),
        "note": "the job used ghs_0123456789abcdef and r2-secret-value-xyz",
        "mlflow": "https://alice:pa55word@mlflow.example.com/api",
        "nested": {"session_token": "abc", "tag": "v20261101"},
        "webhook": settings.webhook_url,
    }
    assert notify(settings, "apply_failed", f"posted to {webhook.url}", details) is True
    raw = json.dumps(webhook.bodies[0])
    for secret in ("r2-secret-value-xyz", "plain-token", "AKIAEXAMPLE", "hunter2hunter2", "wrapped",
                   "ghs_0123456789abcdef", "pa55word", "s3cr3tWebhookToken", '"abc"'):
        assert secret not in raw, secret
    assert REDACTED in raw
    assert "v20261101" in raw  # ordinary values are kept


def test_unknown_event_is_sent_under_its_name() -> None:
    payload = build_payload("custom_event", "hello", None)
    assert payload["text"] == "custom_event: hello"


def test_dotted_event_names_are_the_same_events() -> None:
    payload = build_payload("apply.failed", "prod failed", None)
    assert payload["text"] == "Apply failed: prod failed"
    assert "`apply_failed`" in payload["blocks"][-1]["elements"][0]["text"]
