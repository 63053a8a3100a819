"""Provisioning an env's AWS resources: creates what is missing, reports what exists, re-runs cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.settings import EnvOverrides, Settings
from tradai_release.repository.environments import environment
from tradai_release.stores.aws import client
from tradai_release.workflows.provision import provision

AWS = AwsOptions(region="us-east-1")


@pytest.fixture
def aws_settings() -> Iterator[Settings]:
    from moto import mock_aws

    with mock_aws():
        yield Settings(
            aws_region="us-east-1",
            envs={
                "staging": EnvOverrides(
                    config_table_uri="dynamodb://tradai-config-versions-staging",
                    release_table_uri="dynamodb://tradai-releases-staging",
                    config_store_uri="s3://tradai-configs-staging",
                )
            },
        )


def test_provision_creates_tables_with_ttl_and_the_bucket_then_is_idempotent(aws_settings: Settings) -> None:
    first = provision(aws_settings, environment(aws_settings, "staging"))
    assert sorted(first.created) == [
        "dynamodb://tradai-config-versions-staging",
        "dynamodb://tradai-releases-staging",
        "s3://tradai-configs-staging",
    ]
    dynamodb = client(AWS, "dynamodb")
    ttl = dynamodb.describe_time_to_live(TableName="tradai-config-versions-staging")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    keys = dynamodb.describe_table(TableName="tradai-config-versions-staging")["Table"]["KeySchema"]
    assert [k["AttributeName"] for k in keys] == ["strategy_name", "config_id"]

    again = provision(aws_settings, environment(aws_settings, "staging"))
    assert again.created == () and len(again.existing) == 3


def test_provisioned_backends_serve_the_config_registry(aws_settings: Settings) -> None:
    from tradai_release.configs.service import ConfigVersionService

    provision(aws_settings, environment(aws_settings, "staging"))
    service = ConfigVersionService.for_env(environment(aws_settings, "staging"), aws_settings)
    version = service.create_version(strategy_name="PascalStrategy", config_data={"a": 1.0}, description="x")
    service.activate("PascalStrategy", version.config_id)
    active = service.get_active("PascalStrategy")
    assert active is not None and active.config_data == {"a": 1.0}


def test_embedded_env_needs_no_provisioning(aws_settings: Settings) -> None:
    done = provision(aws_settings, environment(aws_settings, "dev"))
    assert done.created == () and done.existing == ()


def test_unreachable_endpoint_is_one_backend_error_naming_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from tradai_release.core.errors import BackendError

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    settings = Settings(
        aws_endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        envs={"prod": EnvOverrides(config_table_uri="dynamodb://tradai-config-versions-prod")},
    )
    with pytest.raises(BackendError, match=r"dynamodb://tradai-config-versions-prod: cannot provision"):
        provision(settings, environment(settings, "prod"))


def test_provision_task_needs_an_env() -> None:
    import os
    from pathlib import Path

    from forked_cli import run_invoke

    root = Path(__file__).resolve().parents[1]
    done = run_invoke(["provision"], root, dict(os.environ), 60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: provision: --env: required (dev, staging or prod)"]
