"""Notifications to a Slack-compatible incoming webhook: drift, retraining proposals, apply and rollback.

``notify`` never fails the job that calls it: a missing URL makes it a no-op, a slow or broken
webhook is retried with exponential backoff (requests, with urllib3's Retry) and then given up on
(False, one warning line in the log). Nothing secret is sent: SecretStr values of the settings
(and the usual credential variables of the environment) are replaced wherever they appear, and so
is every detail whose name says it is a secret, token, key or password.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError
from urllib3.util.retry import Retry

from tradai_release.core.clock import stamp
from tradai_release.core.redact import (
    scrub,
    scrub_text,
    secret_values,
)

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings

log = logging.getLogger(__name__)

# Event name -> the headline a person sees. Unknown events are still sent, under their own name.
EVENTS: dict[str, str] = {
    "drift_found": "Drift found",
    "retraining_proposed": "Retraining proposed",
    "retraining_kept": "Retraining: champion kept, nothing proposed",
    "retraining_unchanged": "Retraining: nothing new (the champion has the same files)",
    "apply_succeeded": "Apply succeeded",
    "apply_failed": "Apply failed",
    "rollback_applied": "Rollback applied",
    "progress_held": "Progress: held",
    "progress_promoted": "Progress: challenger promoted into the next wave",
    "progress_rolled_back": "Progress: breaching production pin rolled back",
}
# Slack's limits: 10 fields per section, 2000 characters per field, 3000 per section text.
_FIELDS_PER_SECTION = 10
_FIELD_CHARS = 1900
_SECTION_CHARS = 2900
_MAX_RETRY_AFTER = 30  # seconds; a webhook asking for longer is waited on this long, not blocking the job
# 429 and every 5xx are retried; any other status is the webhook refusing the message, final.
_RETRY_STATUSES = frozenset({429, *range(500, 600)})
# urllib3 logs each retry (at WARNING for a broken connection) with the request path, which for a
# webhook is the secret; the notifier's own lines replace them while it posts.
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


def webhook_allowed(url: str) -> bool:
    """A webhook's URL is its secret: https only, or plain http to a loopback address (a local relay)."""
    from urllib.parse import urlsplit

    if url.startswith("https://"):
        return True
    host = urlsplit(url).hostname or "" if url.startswith("http://") else ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def notify(
    settings: Settings,
    event: str,
    summary: str,
    details: Mapping[str, Any] | None = None,
) -> bool:
    """Post ``event`` to ``settings.webhook_url``; True when the webhook accepted it.

    Never raises: no URL configured, an unreachable or failing webhook, or anything unexpected
    returns False (after ``settings.notify_attempts`` tries for 5xx, 429, timeouts and connection
    errors, waiting ``notify_backoff_seconds`` and doubling, or what a ``Retry-After`` header asks,
    up to 30 s). Each request times out after ``settings.notify_timeout_seconds``.
    """
    try:
        if settings.webhook_url is None or not settings.webhook_url.get_secret_value().strip():
            return False
        url = settings.webhook_url.get_secret_value().strip()
        if not webhook_allowed(url):
            log.warning("notify %s: webhook URL is not https:// (http only to loopback); not sent", event)
            return False
        payload = build_payload(event, summary, details, secrets=secret_values(settings))
        return _post(url, payload, settings, event)
    except Exception as err:  # a notification must never fail the job that sends it
        log.warning("notify %s: not sent (%s)", event, type(err).__name__)
        return False


def build_payload(
    event: str,
    summary: str,
    details: Mapping[str, Any] | None = None,
    *,
    secrets: frozenset[str] = frozenset(),
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Slack-compatible JSON: ``text`` (the fallback every client shows) plus Block Kit blocks."""
    event = canonical_event(event)
    title = EVENTS.get(event, event)
    clean_summary = scrub_text(str(summary), secrets)
    clean = scrub(dict(details or {}), secrets)
    at = stamp(now)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(clean_summary or title, _SECTION_CHARS)}},
    ]
    fields: list[dict[str, str]] = []
    long_texts: list[tuple[str, str]] = []
    for name, value in clean.items():
        text = _display(value)
        if "\n" in text:
            long_texts.append((str(name), text))
        else:
            fields.append({"type": "mrkdwn", "text": _cut(f"*{name}*\n{text}", _FIELD_CHARS)})
    for start in range(0, len(fields), _FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start : start + _FIELDS_PER_SECTION]})
    for name, text in long_texts:
        body = _cut(text, _SECTION_CHARS - len(name) - 16)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{name}*\n```\n{body}\n```"}})
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"tradai-release · `{event}` · {at}"}]}
    )
    return {"text": f"{title}: {clean_summary}" if clean_summary else title, "blocks": blocks}


def canonical_event(event: str) -> str:
    """``apply.failed`` and ``apply_failed`` are the same event (callers spell it either way)."""
    dotted = event.replace(".", "_").replace("-", "_")
    return dotted if dotted in EVENTS else event


def _display(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(not isinstance(item, dict | list) for item in value):
        return ", ".join(str(item) for item in value)
    return json.dumps(value, sort_keys=True, default=str)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Backoff(Retry):
    """urllib3's Retry on the notifier's schedule, with the webhook's own wishes taken as hints.

    The first retry waits ``backoff_factor`` and each further one twice as long (urllib3 would
    retry once at once). A ``Retry-After`` header replaces the wait (capped by ``retry_after_max``);
    one urllib3 cannot parse is ignored rather than ending the notification.
    """

    # Retry-After makes urllib3 retry these statuses even outside status_forcelist; only 429 should.
    RETRY_AFTER_STATUS_CODES = frozenset({429})

    def get_backoff_time(self) -> float:
        failures = len(self.history)
        if failures == 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (failures - 1)))

    def parse_retry_after(self, retry_after: str) -> float:
        try:
            return super().parse_retry_after(retry_after)
        except InvalidHeader:
            return 0.0  # no usable hint: the backoff applies


def _retry(settings: Settings) -> Retry:
    """Retries for one notification: ``notify_attempts`` tries in all, POST included."""
    return _Backoff(
        total=max(1, int(settings.notify_attempts)) - 1,
        redirect=0,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=frozenset({"POST"}),  # a duplicated notification is better than a lost one
        backoff_factor=max(0.0, float(settings.notify_backoff_seconds)),
        respect_retry_after_header=True,
        retry_after_max=_MAX_RETRY_AFTER,
        raise_on_status=False,  # the last response comes back, so its status can be reported
    )


def _post(url: str, payload: dict[str, Any], settings: Settings, event: str) -> bool:
    attempts = max(1, int(settings.notify_attempts))
    timeout = max(0.001, float(settings.notify_timeout_seconds))
    with requests.Session() as session, _urllib3_quiet():
        adapter = HTTPAdapter(max_retries=_retry(settings))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        try:
            response = session.post(
                url,
                data=json.dumps(payload).encode("utf-8"),
                headers={"Content-Type": "application/json", "User-Agent": "tradai-release-notify"},
                timeout=timeout,
                allow_redirects=False,  # a redirected POST becomes a GET: the message would be lost
            )
        except requests.RequestException as err:
            cause = err.args[0] if err.args else None
            if isinstance(cause, MaxRetryError):
                reason = type(cause.reason or cause).__name__
                log.warning("notify %s: not sent after %d attempts (%s)", event, attempts, reason)
            else:
                log.warning("notify %s: not sent (%s)", event, type(err).__name__)
            return False
        with response:
            status = response.status_code
        if 200 <= status < 300:
            return True
        if status in _RETRY_STATUSES:
            log.warning("notify %s: not sent after %d attempts (HTTP %d)", event, attempts, status)
        else:
            log.warning("notify %s: webhook refused it (HTTP %d); not retried", event, status)
        return False


class _SameThread(logging.Filter):
    """Drops the records of one thread (the one posting), letting other threads' records through."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread


@contextmanager
def _urllib3_quiet() -> Iterator[None]:
    """Silence urllib3's per-request log lines from this thread while the notifier posts."""
    quiet = _SameThread()
    loggers = [logging.getLogger(name) for name in _URLLIB3_LOGGERS]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
