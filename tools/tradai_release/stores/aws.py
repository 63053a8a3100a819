"""boto3 clients for the S3 and DynamoDB stores, built from AwsOptions on demand (never at import time)."""

from __future__ import annotations

import threading
from typing import Any

from tradai_release.core.endpoints import AwsOptions

_CLIENT_LOCK = threading.Lock()
# botocore's data loader (service models, endpoints), shared by every session made here: a new session
# would otherwise parse the service's JSON models again (0.13 s of CPU per client here instead of 0.02).
_LOADER: Any = None


def client(options: AwsOptions, service: str, **config: Any) -> Any:
    """A boto3 client for ``service`` (``"s3"``, ``"dynamodb"``); ``config`` goes to botocore's Config.

    The timeouts and retry budget of ``options`` apply unless ``config`` sets its own: a dead
    endpoint fails a call within about ``attempts x timeout`` instead of botocore's 60 s timeouts.
    """
    from botocore.config import Config

    config = _bounded(options, config)

    # boto3's default session is not thread-safe while it builds a client; one session per
    # client, built under a lock, is (clients themselves are safe to share once built).
    with _CLIENT_LOCK:
        return _session().client(
            service,
            endpoint_url=options.endpoint_url,
            region_name=options.region or "us-east-1",
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=options.secret_access_key,
            config=Config(**config) if config else None,
        )


def _session() -> Any:
    """A new boto3 session (its own credential chain, read from the environment now) on the shared loader."""
    import boto3
    import botocore.session

    global _LOADER
    core = botocore.session.Session()
    if _LOADER is None:
        _LOADER = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core)


def error_code(err: Any) -> str:
    """The AWS error code of a botocore ClientError (``""`` when it carries none)."""
    return str(err.response.get("Error", {}).get("Code", ""))


def _bounded(options: AwsOptions, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the options' timeouts and attempts filled in where it leaves them open."""
    bounded = dict(config)
    if options.timeout_seconds is not None:
        bounded.setdefault("connect_timeout", options.timeout_seconds)
        bounded.setdefault("read_timeout", options.timeout_seconds)
    if options.attempts is not None:
        retries = {"mode": "standard", **dict(bounded.get("retries") or {})}
        if "max_attempts" not in retries:  # botocore's max_attempts counts retries, total_ the first try too
            retries.setdefault("total_max_attempts", options.attempts)
        bounded["retries"] = retries
    return bounded


def unreachable(options: AwsOptions, err: Exception) -> str:
    """What to say when an endpoint did not answer: where, after how many attempts, and why."""
    where = options.endpoint_url or "the AWS endpoint"
    attempts = f" after {options.attempts} attempts" if options.attempts is not None else ""
    return f"cannot reach {where}{attempts} ({err})"
