"""Provisioning: create an env's AWS tables and buckets once, idempotently (embedded backends need none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradai_release.configs.table import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from tradai_release.engine.release_table import (
    RELEASE_PARTITION_KEY,
    RELEASE_SORT_KEY,
    RELEASE_TTL_ATTRIBUTE,
)

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.repository.environments import Environment


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


def provision(settings: Settings, env: Environment) -> Provisioned:
    """Create every ``dynamodb://`` table and ``s3://`` bucket the env's settings name, when missing,
    and the ECS cluster (``ecs://<cluster>``) when the env's deployment target is ``ecs``.

    Re-running is harmless: existing resources are reported, not changed (except that TTL is
    switched on for a config table that lacks it).
    """
    from tradai_release.stores.dynamodb import ensure_table
    from tradai_release.stores.s3 import ensure_bucket

    backends = env.backends
    tables = [
        TableSpec(backends.config_table_uri, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE),
        TableSpec(backends.release_table_uri, RELEASE_PARTITION_KEY, RELEASE_SORT_KEY, RELEASE_TTL_ATTRIBUTE),
    ]
    created: list[str] = []
    existing: list[str] = []
    aws = settings.aws()
    for spec in tables:
        if spec.uri.startswith("dynamodb://"):
            name = spec.uri[len("dynamodb://") :]
            made = ensure_table(
                aws, name, spec.partition_key, spec.sort_key, ttl_attribute=spec.ttl_attribute
            )
            (created if made else existing).append(spec.uri)
    buckets = [(backends.config_store_uri, aws)]
    if backends.hub_uri.startswith("s3://"):
        buckets.append((backends.hub_uri, settings.hub_aws()))
    for uri, options in buckets:
        if uri.startswith("s3://"):
            bucket = uri[len("s3://") :].split("/", 1)[0]
            made = ensure_bucket(options, bucket)
            (created if made else existing).append(f"s3://{bucket}")
    if settings.deploy_target_of(env.name) == "ecs":
        from tradai_release.stores.ecs import EcsApi

        cluster = settings.fill(settings.ecs_cluster, "ecs_cluster", env=env.name)
        api = EcsApi(aws)
        made = not api.cluster_exists(cluster)
        if made:
            api.create_cluster(cluster)
        (created if made else existing).append(f"ecs://{cluster}")
    return Provisioned(env.name, tuple(created), tuple(existing))
