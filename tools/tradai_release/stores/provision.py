"""Create an environment's AWS tables and buckets once, idempotently (embedded backends need nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradai_release.endpoints import AwsOptions
from tradai_release.errors import BackendError
from tradai_release.stores.aws import client as make_client

if TYPE_CHECKING:
    from tradai_release.settings import Settings


RELEASE_PARTITION_KEY = "pk"
RELEASE_SORT_KEY = "sk"


@dataclass(frozen=True)
class TableSpec:
    """Key schema (and optional TTL attribute) of one DynamoDB table."""

    uri: str
    partition_key: str
    sort_key: str
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class Provisioned:
    """What provisioning created and what it found already there (names like ``dynamodb://t``)."""

    env: str
    created: tuple[str, ...]
    existing: tuple[str, ...]


def provision(settings: Settings, env: str) -> Provisioned:
    """Create every ``dynamodb://`` table and ``s3://`` bucket the env's settings name, when missing.

    Re-running is harmless: existing resources are reported, not changed (except that TTL is
    switched on for a config table that lacks it).
    """
    from tradai_release.configs.service import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

    backends = settings.backends(env)
    tables = [
        TableSpec(backends.config_table_uri, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE),
        TableSpec(backends.release_table_uri, RELEASE_PARTITION_KEY, RELEASE_SORT_KEY, "expires_at"),
    ]
    created: list[str] = []
    existing: list[str] = []
    aws = settings.aws()
    for spec in tables:
        if spec.uri.startswith("dynamodb://"):
            made = _ensure_table(aws, spec)
            (created if made else existing).append(spec.uri)
    buckets = [(backends.config_store_uri, aws)]
    if backends.hub_uri.startswith("s3://"):
        buckets.append((backends.hub_uri, settings.hub_aws()))
    for uri, options in buckets:
        if uri.startswith("s3://"):
            bucket = uri[len("s3://") :].split("/", 1)[0]
            made = _ensure_bucket(options, bucket)
            (created if made else existing).append(f"s3://{bucket}")
    return Provisioned(env, tuple(created), tuple(existing))


def _ensure_table(aws: AwsOptions, spec: TableSpec) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    name = spec.uri[len("dynamodb://") :]
    client = make_client(aws, "dynamodb")
    made = False
    try:
        try:
            client.describe_table(TableName=name)
        except ClientError as err:
            if _code(err) != "ResourceNotFoundException":
                raise
            client.create_table(
                TableName=name,
                KeySchema=[
                    {"AttributeName": spec.partition_key, "KeyType": "HASH"},
                    {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": spec.partition_key, "AttributeType": "S"},
                    {"AttributeName": spec.sort_key, "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            client.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
            made = True
        if spec.ttl_attribute:
            ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                client.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
                )
    except (ClientError, BotoCoreError) as err:
        raise BackendError(spec.uri, f"cannot provision: {err}") from err
    return made


def _ensure_bucket(aws: AwsOptions, bucket: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    client = make_client(aws, "s3")
    try:
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as err:
            if _code(err) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        extra: dict[str, Any] = {}
        region = aws.region or "us-east-1"
        if region not in ("us-east-1", "auto") and not aws.endpoint_url:
            extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
        client.create_bucket(Bucket=bucket, **extra)
    except (ClientError, BotoCoreError) as err:
        raise BackendError(f"s3://{bucket}", f"cannot provision: {err}") from err
    return True


def _code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
