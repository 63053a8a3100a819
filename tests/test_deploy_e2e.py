"""Releases reaching the bots against real loopback servers: ECS services on moto_server, MLflow on an
mlflow server, configs and release state on DynamoDB + S3, the hub on S3."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from engine_helpers import (
    TAG,
    commit_all,
    git,
    make_repo,
    push_tag,
    register_runs,
    rename_models,
    server_settings,
)
from tradai_release.configs.service import ConfigVersionService
from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import ApplyFailed, BackendError
from tradai_release.core.settings import Settings
from tradai_release.engine.actions import DeployBot
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.deployments import list_deployments
from tradai_release.engine.plan import plan_env
from tradai_release.engine.state import EngineBackends
from tradai_release.engine.status import IN_SYNC, bot_statuses
from tradai_release.hub.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.repository.bots import BotPins
from tradai_release.repository.environments import environment
from tradai_release.repository.manifest_edit import edit_manifest
from tradai_release.stores.aws import client
from tradai_release.stores.ecs import EcsApi
from tradai_release.targets.ecs import EcsTarget
from tradai_release.workflows.provision import provision

pytestmark = pytest.mark.e2e


def settled(api: EcsApi, cluster: str, services: Mapping[str, str], timeout: float) -> None:
    """moto_server never starts tasks: the rollouts are declared settled (the real wait is unit-tested)."""


def completed(service: Mapping[str, Any]) -> tuple[str, str]:
    """What the plan reads of a rollout on moto_server here: completed (as ``settled`` says)."""
    return "COMPLETED", "settled"


class Flaky(EcsApi):
    """An ECS that refuses one update_service in the middle of an apply, then recovers."""

    def __init__(self, aws: AwsOptions) -> None:
        super().__init__(aws)
        self.fail_next_update = False

    def update_service(self, cluster: str, service: str, **parameters: Any) -> dict[str, Any]:
        if self.fail_next_update:
            self.fail_next_update = False
            where = f"ecs: service {service} in {cluster}"
            raise BackendError(where, "update_service failed (ServerException)")
        return super().update_service(cluster, service, **parameters)


def backends(settings: Settings, api: EcsApi) -> EngineBackends:
    target = EcsTarget.from_settings(settings, "prod", api=api)
    target.waiter = settled
    target.rollouts = completed
    return dataclasses.replace(
        EngineBackends.from_settings(settings, environment(settings, "prod")), target=target
    )


def task_environment(api: EcsApi, service: Mapping[str, Any]) -> dict[str, str]:
    definition, _ = api.describe_task_definition(str(service["taskDefinition"]))
    (container,) = definition["containerDefinitions"]
    return {e["name"]: e["value"] for e in container["environment"]}


def test_ecs_services_follow_merge_revert_drift_and_a_failed_apply(
    moto_server: str, mlflow_server: str, tmp_path: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    ec2 = client(AwsOptions(endpoint_url=moto_server, region="us-east-1"), "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    settings = server_settings(moto_server, mlflow_server, tmp_path / "repo", uid).model_copy(
        update={"deploy_target": "ecs", "ecs_cluster": f"tradai-{{env}}-{uid}", "ecs_subnets": [subnet]}
    )
    cluster = f"tradai-prod-{uid}"
    client(AwsOptions(endpoint_url=moto_server), "s3").create_bucket(Bucket=f"hub-{uid}")
    assert f"ecs://{cluster}" in provision(settings, environment(settings, "prod")).created
    sha = push_tag(ModelHub.from_settings(settings), tmp_path)
    registry = MlflowRegistry.for_env(environment(settings, "prod"), settings)
    register_runs(registry, uid, (1.2, 1.4))
    repo = make_repo(tmp_path, TAG, sha)
    rename_models(repo, uid)
    commit_all(repo, "unique model names for the shared mlflow server")

    api = Flaky(settings.aws())
    assert (
        apply_env(ReleaseContext.open(settings, "prod", backends=backends(settings, api))).outcome
        == "succeeded"
    )
    arns = api.client.list_services(cluster=cluster, maxResults=100)["serviceArns"]
    assert len(arns) == 12  # prod: 1 + 2 + 3 + 3 + 3 bots
    service_name = "tradai-prod-PascalStrategy-p3"
    before = api.describe_services(cluster, [service_name])[service_name]
    assert before["launchType"] == "FARGATE"  # the seed: Fargate in prod
    v1_arn = before["taskDefinition"]

    # merge: promote v2 in profile 3 -> one new revision, one service updated, env = the manifest's pins
    with edit_manifest(repo / "releases" / "prod" / "profile-3.yaml") as editor:
        editor.set_production("PascalStrategy", 2)
    merged = commit_all(repo, "promote PascalStrategy v2 in prod profile 3")
    api.writes.clear()
    deployment = apply_env(ReleaseContext.open(settings, "prod", backends=backends(settings, api)))
    assert dict(api.writes) == {"register_task_definition": 1, "update_service": 1, "tag_resource": 1}
    after = api.describe_services(cluster, [service_name])[service_name]
    variables = task_environment(api, after)
    active = ConfigVersionService.for_env(environment(settings, "prod"), settings).get_active(
        "PascalStrategy"
    )
    assert active is not None
    assert BotPins.from_variables(variables, where="ecs") == BotPins(
        env="prod",
        profile=3,
        strategy="PascalStrategy",
        config_id=active.config_id,
        config_hash=active.config_hash,
        model_name=f"PascalStrategy_{uid}",
        model_version=2,
        hub_tag=TAG,
        hub_sha256=sha,
        image="tradai/strategies/pascalstrategy:2.3.1",
        files_sha256=variables["TRADAI_FILES_SHA256"],
    )
    assert len(variables["TRADAI_FILES_SHA256"]) == 64  # the strategy's own files in the tag, pinned
    tags = {t["key"]: t["value"] for t in after["tags"]}
    assert (tags["tradai:commit"], tags["tradai:trace-id"]) == (merged, deployment.trace_id)
    family = "tradai-prod-PascalStrategy-p3"
    assert len(api.task_definition_arns(family, 100)) == 2

    # a no-op apply: no ECS write
    api.writes.clear()
    assert (
        apply_env(ReleaseContext.open(settings, "prod", backends=backends(settings, api))).outcome == "noop"
    )
    assert sum(api.writes.values()) == 0

    # revert: the previous revision again, reused (none registered)
    git(repo, "revert", "--no-edit", "HEAD")
    api.writes.clear()
    apply_env(ReleaseContext.open(settings, "prod", backends=backends(settings, api)))
    assert api.describe_services(cluster, [service_name])[service_name]["taskDefinition"] == v1_arn
    assert "register_task_definition" not in api.writes and len(api.task_definition_arns(family, 100)) == 2

    # changed by hand: drift in the plan, repaired by apply
    v2_arn = max(api.task_definition_arns(family, 100), key=lambda arn: int(arn.rsplit(":", 1)[1]))
    api.client.update_service(cluster=cluster, service=service_name, taskDefinition=v2_arn)
    plan = plan_env(ReleaseContext.open(settings, "prod", backends=backends(settings, api)))
    assert [(d.kind, d.target) for d in plan.drift] == [("deployment", "PascalStrategy-p3")]
    assert [a.target for a in plan.actions if isinstance(a, DeployBot)] == ["prod/PascalStrategy-p3"]
    apply_env(ReleaseContext.open(settings, "prod", backends=backends(settings, api)))
    assert api.describe_services(cluster, [service_name])[service_name]["taskDefinition"] == v1_arn

    # an ECS error in the middle of an apply: a failed deployment record; the re-run converges
    with edit_manifest(repo / "releases" / "prod" / "profile-4.yaml") as editor:
        editor.set_production("KeplerStrategy", 2)
        editor.set_production("MyStrategy", 2)
    commit_all(repo, "promote KeplerStrategy and MyStrategy v2 in prod profile 4")
    api.fail_next_update = True
    with pytest.raises(ApplyFailed, match="update_service failed"):
        apply_env(ReleaseContext.open(settings, "prod", backends=backends(settings, api)))
    assert list_deployments(settings, environment(settings, "prod"))[0].outcome == "failed"
    assert (
        apply_env(ReleaseContext.open(settings, "prod", backends=backends(settings, api))).outcome
        == "succeeded"
    )
    assert plan_env(ReleaseContext.open(settings, "prod", backends=backends(settings, api))).empty
    statuses = bot_statuses(ReleaseContext.open(settings, "prod", backends=backends(settings, api)))
    assert {s.state for s in statuses} == {IN_SYNC} and len(statuses) == 12
    p4 = {s.bot: s.running for s in statuses}
    assert p4["KeplerStrategy-p4"] is not None and p4["KeplerStrategy-p4"]["TRADAI_MODEL_VERSION"] == "2"
