"""Where an S3-API or DynamoDB backend is reached: endpoint, region and credentials, as one plain value.

A leaf module (no vendor import), so settings can build these values and stores can consume them
without either depending on the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AwsOptions:
    """How to reach an S3-API or DynamoDB endpoint; None fields fall back to boto3's defaults.

    The secret is kept out of ``repr`` so it never reaches a log line.
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    timeout_seconds: float | None = None  # connect and read timeout of each request
    retries: int | None = None  # retries after the first attempt (botocore standard mode)

    @property
    def attempts(self) -> int | None:
        """Attempts per call (the first one and its retries), None for botocore's default."""
        return None if self.retries is None else self.retries + 1
