"""boto3 clients for the S3 and DynamoDB stores, built from AwsOptions on demand (never at import time)."""

from __future__ import annotations

import threading
from typing import Any

from tradai_release.endpoints import AwsOptions

_CLIENT_LOCK = threading.Lock()


def client(options: AwsOptions, service: str, **config: Any) -> Any:
    """A boto3 client for ``service`` (``"s3"``, ``"dynamodb"``); ``config`` goes to botocore's Config."""
    import boto3
    from botocore.config import Config

    # boto3's default session is not thread-safe while it builds a client; one session per
    # client, built under a lock, is (clients themselves are safe to share once built).
    with _CLIENT_LOCK:
        return boto3.session.Session().client(
            service,
            endpoint_url=options.endpoint_url,
            region_name=options.region or "us-east-1",
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=options.secret_access_key,
            config=Config(**config) if config else None,
        )


def error_code(err: Any) -> str:
    """The AWS error code of a botocore ClientError (``""`` when it carries none)."""
    return str(err.response.get("Error", {}).get("Code", ""))
