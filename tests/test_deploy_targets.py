"""Deployment targets run by apply: env files on the embedded default, ECS services on in-process moto."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from engine_helpers import (
    TAG,
    commit_all,
    counted_from_settings,
    embedded_repo,
    features_of,
    git,
    set_production,
)
from forked_cli import run_invoke
from hub_helpers import make_models_dir
from tradai_release.configs.service import ConfigVersionService
from tradai_release.core.errors import ApplyFailed, BackendError, DeploymentFailed, SettingsError
from tradai_release.core.settings import Settings
from tradai_release.engine.actions import DeployBot, RetireBot, WaitRollout
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.deployments import list_deployments
from tradai_release.engine.plan import plan_env
from tradai_release.engine.state import EngineBackends
from tradai_release.engine.status import DIFFERS, IN_SYNC, NOT_DEPLOYED, bot_statuses
from tradai_release.hub import ModelHub
from tradai_release.render.plan import render_text
from tradai_release.repository.bots import BotKey, BotPins, parse_env_file
from tradai_release.repository.environments import environment
from tradai_release.repository.manifest_edit import edit_manifest
from tradai_release.stores.ecs import EcsApi
from tradai_release.targets.ecs import EcsTarget, poll_until_stable, rollout_state
from tradai_release.workflows.provision import provision

BOTS_PER_ENV = 12  # dev: profile 1 runs one strategy, profile 2 two, profiles 3-5 three


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return embedded_repo(tmp_path, 2)


def env_files(settings: Settings, env: str = "dev") -> dict[str, str]:
    directory = settings.state_dir / env / "bots"
    return {path.name: path.read_text() for path in sorted(directory.glob("*.env"))}


# --- env-file -------------------------------------------------------------------------------------------


def test_env_files_pin_each_bot_and_only_changed_bots_are_rewritten(repo: Path) -> None:
    settings = Settings(repo=repo)
    first = apply_env(ReleaseContext.open(settings, "dev"), actor="ci")
    assert first.outcome == "succeeded"
    files = env_files(settings)
    assert len(files) == BOTS_PER_ENV
    pinned = parse_env_file(files["PascalStrategy-p3.env"], where="p3")
    active = ConfigVersionService.for_env(environment(settings, "dev"), settings).get_active("PascalStrategy")
    assert active is not None
    assert pinned == {
        "TRADAI_ENV": "dev",
        "TRADAI_PROFILE": "3",
        "TRADAI_STRATEGY": "PascalStrategy",
        "TRADAI_CONFIG_ID": active.config_id,
        "TRADAI_CONFIG_HASH": active.config_hash,
        "TRADAI_MODEL_NAME": "PascalStrategy",
        "TRADAI_MODEL_VERSION": "1",
        "TRADAI_HUB_TAG": TAG,
        "TRADAI_HUB_SHA256": git(repo, "show", "HEAD:releases/dev/profile-3.yaml").split("sha256: ")[1][1:65],
        "TRADAI_FILES_SHA256": pinned["TRADAI_FILES_SHA256"],
        "TRADAI_IMAGE": "tradai/strategies/pascalstrategy:2.3.1",
    }
    assert len(pinned["TRADAI_FILES_SHA256"]) == 64  # Pascal's own files in the tag, by content digest
    assert BotPins.from_variables(pinned, where="p3").model_version == 1
    assert f"apply {first.deployment_id}" in files["PascalStrategy-p3.env"]  # who wrote it: a comment

    counted = counted_from_settings(settings, "dev")
    assert apply_env(ReleaseContext.open(settings, "dev", backends=counted.backends)).outcome == "noop"
    assert counted.writes == 0

    set_production(repo, "dev", "PascalStrategy", 2, profiles=[3])
    commit_all(repo, "promote PascalStrategy v2 in dev profile 3")
    plan = plan_env(ReleaseContext.open(settings, "dev"))
    deploys = [a for a in plan.actions if isinstance(a, DeployBot)]
    assert [a.target for a in deploys] == ["dev/PascalStrategy-p3"]
    assert "model_version 1 -> 2" in deploys[0].reason
    assert WaitRollout.kind not in [a.kind for a in plan.actions]  # a host's file needs no rollout wait
    apply_env(ReleaseContext.open(settings, "dev"))
    after = env_files(settings)
    changed = sorted(name for name in files if after[name] != files[name])
    assert changed == ["PascalStrategy-p3.env"]
    assert parse_env_file(after["PascalStrategy-p3.env"], where="p3")["TRADAI_MODEL_VERSION"] == "2"


def test_a_hand_edited_env_file_is_drift_that_apply_repairs(repo: Path) -> None:
    settings = Settings(repo=repo)
    apply_env(ReleaseContext.open(settings, "dev"))
    path = settings.state_dir / "dev" / "bots" / "KeplerStrategy-p2.env"
    path.write_text(path.read_text().replace("TRADAI_MODEL_VERSION=1", "TRADAI_MODEL_VERSION=2"))

    plan = plan_env(ReleaseContext.open(settings, "dev"))
    assert [(d.kind, d.target) for d in plan.drift] == [("deployment", "KeplerStrategy-p2")]
    deploy = next(a for a in plan.actions if isinstance(a, DeployBot))
    assert deploy.target == "dev/KeplerStrategy-p2" and deploy.reason.startswith("drift:")
    assert apply_env(ReleaseContext.open(settings, "dev")).outcome == "succeeded"
    assert "TRADAI_MODEL_VERSION=1" in path.read_text()
    assert plan_env(ReleaseContext.open(settings, "dev")).empty

    path.unlink()  # a host lost its file: planned again, not ignored
    assert [
        a.target for a in plan_env(ReleaseContext.open(settings, "dev")).actions if isinstance(a, DeployBot)
    ] == ["dev/KeplerStrategy-p2"]


def test_an_image_pinned_in_the_manifest_reaches_the_bot(repo: Path) -> None:
    settings = Settings(repo=repo)
    digest = "sha256:" + "ab" * 32
    with edit_manifest(repo / "releases" / "dev" / "profile-3.yaml") as editor:
        editor.set_image("MyStrategy", digest)
    commit_all(repo, "pin MyStrategy's image by digest in dev profile 3")
    apply_env(ReleaseContext.open(settings, "dev"))
    pinned = parse_env_file(env_files(settings)["MyStrategy-p3.env"], where="p3")
    assert pinned["TRADAI_IMAGE"] == f"tradai/strategies/mystrategy@{digest}"
    unpinned = parse_env_file(env_files(settings)["MyStrategy-p4.env"], where="p4")
    assert unpinned["TRADAI_IMAGE"] == "tradai/strategies/mystrategy:1.0.0"  # strategy.version


def test_target_none_deploys_nothing(repo: Path) -> None:
    settings = Settings(repo=repo, deploy_target="none")
    apply_env(ReleaseContext.open(settings, "dev"))
    assert not (settings.state_dir / "dev" / "bots").exists()
    assert plan_env(ReleaseContext.open(settings, "dev")).empty


# --- ECS on in-process moto --------------------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def stable(api: EcsApi, cluster: str, services: Mapping[str, str], timeout: float) -> None:
    """moto never runs tasks: the tests that are not about the wait say the rollouts settled."""


def settled(service: Mapping[str, Any]) -> tuple[str, str]:
    """What a plan reads of a rollout on moto, for the tests that are not about the wait: completed."""
    return "COMPLETED", "settled"


def ecs_backends(settings: Settings, env: str, api: EcsApi, waiter: Any = stable) -> EngineBackends:
    real = EngineBackends.from_settings(settings, environment(settings, env))
    target = EcsTarget.from_settings(settings, env, api=api)
    target.waiter = waiter
    if waiter is stable:
        target.rollouts = settled
    return dataclasses.replace(real, target=target)


def services(api: EcsApi, cluster: str) -> dict[str, dict[str, Any]]:
    arns = api.client.list_services(cluster=cluster, maxResults=100)["serviceArns"]
    return api.describe_services(cluster, [arn.rsplit("/", 1)[-1] for arn in arns])


def revisions(api: EcsApi, family: str) -> list[str]:
    return api.client.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]


def container_environment(api: EcsApi, arn: str) -> dict[str, str]:
    definition, _ = api.describe_task_definition(arn)
    return {e["name"]: e["value"] for e in definition["containerDefinitions"][0]["environment"]}


def test_ecs_services_follow_promote_revert_and_hand_changes(repo: Path, aws: None) -> None:
    settings = Settings(repo=repo, deploy_target="ecs")
    assert "ecs://tradai-dev" in provision(settings, environment(settings, "dev")).created
    api = EcsApi(settings.aws())
    sent: list[dict[str, Any]] = []  # moto does not echo deploymentConfiguration: look at the requests
    for operation in ("CreateService", "UpdateService"):
        api.client.meta.events.register(
            f"provide-client-params.ecs.{operation}", lambda params, **_: sent.append(dict(params))
        )
    apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    live = services(api, "tradai-dev")
    assert len(live) == BOTS_PER_ENV
    p3 = live["tradai-dev-PascalStrategy-p3"]
    assert p3["launchType"] == "EC2"
    breaker = {"enable": True, "rollback": True}
    assert all(p["deploymentConfiguration"]["deploymentCircuitBreaker"] == breaker for p in sent)
    v1_arn = p3["taskDefinition"]
    assert container_environment(api, v1_arn)["TRADAI_MODEL_VERSION"] == "1"
    definition, _ = api.describe_task_definition(v1_arn)
    assert (definition["cpu"], definition["memory"]) == ("1024", "2048")  # tradai.yaml deployment.ecs

    # promote: exactly one new revision, one service updated; the env is exactly the manifest's pins
    set_production(repo, "dev", "PascalStrategy", 2, profiles=[3])
    promoted = commit_all(repo, "promote PascalStrategy v2 in dev profile 3")
    api.writes.clear()
    deployment = apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    assert api.writes == {"register_task_definition": 1, "update_service": 1, "tag_resource": 1}
    assert sent[-1]["deploymentConfiguration"]["deploymentCircuitBreaker"] == breaker
    p3 = services(api, "tradai-dev")["tradai-dev-PascalStrategy-p3"]
    variables = container_environment(api, p3["taskDefinition"])
    pins = next(b for b in deployment.plan["actions"] if b["kind"] == DeployBot.kind)
    assert variables["TRADAI_MODEL_VERSION"] == "2" == str(pins["version"])
    assert variables["TRADAI_HUB_SHA256"] == pins["sha256"]
    assert variables["TRADAI_CONFIG_HASH"] == pins["config_hash"]
    tags = {t["key"]: t["value"] for t in p3["tags"]}
    assert tags["tradai:commit"] == promoted and tags["tradai:deployment-id"] == deployment.deployment_id
    family = "tradai-dev-PascalStrategy-p3"
    assert len(revisions(api, family)) == 2

    # a no-op apply makes no ECS write
    api.writes.clear()
    assert (
        apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api))).outcome
        == "noop"
    )
    assert sum(api.writes.values()) == 0

    # revert: the previous revision is reused, none registered
    git(repo, "revert", "--no-edit", "HEAD")
    api.writes.clear()
    apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    assert services(api, "tradai-dev")["tradai-dev-PascalStrategy-p3"]["taskDefinition"] == v1_arn
    assert len(revisions(api, family)) == 2 and "register_task_definition" not in api.writes

    # a service pointed at another revision by hand is drift; apply repairs it
    v2_arn = max(revisions(api, family))
    api.client.update_service(cluster="tradai-dev", service=family, taskDefinition=v2_arn)
    plan = plan_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    assert [(d.kind, d.target) for d in plan.drift] == [("deployment", "PascalStrategy-p3")]
    assert [a.kind for a in plan.actions] == [DeployBot.kind, WaitRollout.kind, "record_deployment"]
    apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    assert services(api, "tradai-dev")["tradai-dev-PascalStrategy-p3"]["taskDefinition"] == v1_arn
    assert plan_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api))).empty


def test_live_services_are_read_ten_at_a_time_without_describing_known_revisions(
    repo: Path, aws: None
) -> None:
    settings = Settings(repo=repo, deploy_target="ecs")
    provision(settings, environment(settings, "dev"))
    api = EcsApi(settings.aws())
    apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    api.reads.clear()
    assert plan_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api))).empty
    # 12 services, 10 per call; no task definition; one listing finds no undeclared service (prune)
    assert dict(api.reads) == {"describe_services": 2, "list_services": 1}


class FailingOnce(EcsApi):
    """ECS refusing the first update_service (throttled, a bad role...)."""

    failed = False

    def update_service(self, cluster: str, service: str, **parameters: Any) -> dict[str, Any]:
        if not FailingOnce.failed:
            FailingOnce.failed = True
            raise BackendError(f"ecs: service {service} in {cluster}", "update_service failed (Throttling)")
        return super().update_service(cluster, service, **parameters)


def test_an_ecs_error_mid_apply_fails_the_deployment_and_a_rerun_converges(repo: Path, aws: None) -> None:
    settings = Settings(repo=repo, deploy_target="ecs")
    provision(settings, environment(settings, "dev"))
    apply_env(
        ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", EcsApi(settings.aws())))
    )
    set_production(repo, "dev", "MyStrategy", 2)
    commit_all(repo, "promote MyStrategy v2 in every dev profile")
    api = FailingOnce(settings.aws())
    with pytest.raises(ApplyFailed, match="update_service failed"):
        apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    assert list_deployments(settings, environment(settings, "dev"))[0].outcome == "failed"
    assert (
        apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api))).outcome
        == "succeeded"
    )
    assert plan_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api))).empty
    live = services(api, "tradai-dev")
    assert {container_environment(api, live[f"tradai-dev-MyStrategy-p{p}"]["taskDefinition"])[
        "TRADAI_MODEL_VERSION"] for p in range(3, 6)} == {"2"}


def test_the_real_stability_wait_fails_the_apply_on_moto_where_tasks_never_run(
    repo: Path, aws: None
) -> None:
    settings = Settings(repo=repo, deploy_target="ecs", deploy_wait_seconds=0.3, deploy_poll_seconds=0.05)
    provision(settings, environment(settings, "dev"))
    backends = dataclasses.replace(
        EngineBackends.from_settings(settings, environment(settings, "dev")),
        target=EcsTarget.from_settings(settings, "dev"),  # the settings' own waiter: polls ECS
    )
    with pytest.raises(ApplyFailed, match=r"not stable within 0.3 s: 0 of 1 tasks running"):
        apply_env(ReleaseContext.open(settings, "dev", backends=backends))


def test_a_profile_tag_moved_for_one_strategy_redeploys_only_that_strategys_bot(
    repo: Path, aws: None, tmp_path: Path
) -> None:
    settings = Settings(repo=repo, deploy_target="ecs")
    provision(settings, environment(settings, "dev"))
    api = EcsApi(settings.aws())
    apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    before = {name: service["taskDefinition"] for name, service in services(api, "tradai-dev").items()}

    # Promote PascalStrategy v2 in profile 3 as promote does it: a tag spliced from the profile's tag with
    # Pascal's files replaced, so Kepler's and My's files in it are the very same.
    models = tmp_path / "pascal-v2"
    make_models_dir(models, ("PascalStrategy",), size=99, features=features_of("PascalStrategy"))
    hub = ModelHub.from_settings(settings)
    spliced = hub.compose(models, ["PascalStrategy"], source=TAG, tag="v20261102", message="Pascal v2")
    with edit_manifest(repo / "releases" / "dev" / "profile-3.yaml") as editor:
        editor.set_artifacts(spliced.tag, spliced.manifest_sha256)
        editor.set_production("PascalStrategy", 2)
    commit_all(repo, "promote PascalStrategy v2 in dev profile 3")

    api.writes.clear()
    done = apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    deployed = [a["target"] for a in done.plan["actions"] if a["kind"] == "deploy_bot"]
    assert deployed == ["dev/PascalStrategy-p3"]
    assert (api.writes["register_task_definition"], api.writes["update_service"]) == (1, 1)
    after = {name: service["taskDefinition"] for name, service in services(api, "tradai-dev").items()}
    assert {name for name in after if after[name] != before[name]} == {"tradai-dev-PascalStrategy-p3"}
    # Kepler's p3 bot keeps pulling the tag it was deployed with, which holds the same files of Kepler.
    kepler = container_environment(api, after["tradai-dev-KeplerStrategy-p3"])
    assert kepler["TRADAI_HUB_TAG"] == TAG and kepler["TRADAI_FILES_SHA256"]
    statuses = bot_statuses(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    assert {status.state for status in statuses} == {IN_SYNC}
    assert plan_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api))).empty


def test_a_rollout_left_unstable_is_waited_for_again_and_a_failed_one_deployed_again(
    repo: Path, aws: None
) -> None:
    settings = Settings(repo=repo, deploy_target="ecs", deploy_wait_seconds=0.3, deploy_poll_seconds=0.05)
    provision(settings, environment(settings, "dev"))

    def context(rollouts: Any = None) -> ReleaseContext:
        target = EcsTarget.from_settings(settings, "dev")  # the settings' own waiter: polls ECS
        target.rollouts = rollouts
        backends = dataclasses.replace(EngineBackends.from_settings(settings, environment(settings, "dev")),
                                       target=target)
        return ReleaseContext.open(settings, "dev", backends=backends)

    with pytest.raises(ApplyFailed, match=r"not stable within 0.3 s: 0 of 1 tasks running"):
        apply_env(context())
    # Every bot runs its pins now, but no rollout settled: the plan waits for them again.
    plan = plan_env(context())
    assert [action.kind for action in plan.actions] == ["wait_rollout", "record_deployment"]
    [wait] = [action for action in plan.actions if isinstance(action, WaitRollout)]
    assert len(wait.bots) == 12 and "still rolling out" in wait.reason  # dev: 1 + 2 + 3 + 3 + 3 bots
    with pytest.raises(ApplyFailed, match=r"not stable within 0.3 s"):
        apply_env(context())  # the re-run is not green while the rollouts are stuck
    assert list_deployments(settings, environment(settings, "dev"))[0].outcome == "failed"

    # A rollout the circuit breaker failed is deployed again, not taken for done.
    failed = plan_env(context(lambda service: ("FAILED", "tasks failed to start")))
    assert [a.kind for a in failed.actions].count("deploy_bot") == 12
    assert "failed (tasks failed to start); deploy it again" in failed.actions[0].reason

    # Once the rollouts settle, the re-run finishes the job and the next plan is empty.
    done = apply_env(context(settled))
    assert done.outcome == "succeeded"
    assert plan_env(context(settled)).empty


def test_poll_until_stable_reads_rollout_states() -> None:
    completed = {"deployments": [{"status": "PRIMARY", "rolloutState": "COMPLETED", "runningCount": 1,
                                  "desiredCount": 1}]}
    failed = {"deployments": [{"status": "PRIMARY", "rolloutState": "FAILED", "rolloutStateReason": "tasks "
                               "failed to start", "runningCount": 0, "desiredCount": 1}]}
    legacy = {"deployments": [{"status": "PRIMARY", "runningCount": 2, "desiredCount": 2}]}
    assert rollout_state(completed)[0] == rollout_state(legacy)[0] == "COMPLETED"
    assert rollout_state(failed) == ("FAILED", "tasks failed to start")

    class Fake:
        def __init__(self, answers: list[dict[str, Any]]) -> None:
            self.answers = answers

        def describe_services(self, cluster: str, names: list[str]) -> dict[str, dict[str, Any]]:
            return {name: self.answers.pop(0) for name in names}

    in_progress = {"deployments": [{"status": "PRIMARY", "rolloutState": "IN_PROGRESS", "runningCount": 0,
                                    "desiredCount": 1}, {"status": "ACTIVE"}]}
    poll_until_stable(Fake([in_progress, completed]), "c", {"s": "dev/S-p1"}, 5,  # type: ignore[arg-type]
                      poll_seconds=0, sleep=lambda _: None)
    with pytest.raises(DeploymentFailed, match="deploy dev/S-p1: rollout failed and was rolled back"):
        poll_until_stable(Fake([in_progress, failed]), "c", {"s": "dev/S-p1"}, 5,  # type: ignore[arg-type]
                          poll_seconds=0, sleep=lambda _: None)


def test_fargate_in_prod_and_bad_settings(repo: Path, aws: None) -> None:
    settings = Settings(repo=repo, deploy_target="ecs")
    assert settings.launch_type_of("prod") == "FARGATE" and settings.launch_type_of("dev") == "EC2"
    target = EcsTarget.from_settings(settings, "prod", api=EcsApi(settings.aws()))
    assert target.awsvpc
    with pytest.raises(SettingsError, match="ecs_launch_type: 'SPOT' is not EC2"):
        Settings(ecs_launch_type="spot").launch_type_of("dev")
    with pytest.raises(SettingsError, match="ecs_service: bad template"):
        EcsTarget.from_settings(Settings(ecs_service="svc-{region}"), "dev")


def test_live_bots_read_their_exchange_keys_from_the_secrets_store(repo: Path, aws: None) -> None:
    """The task definition names the secret (ECS injects the values at start-up); no key is in it, and a
    dry-run environment's bots get no keys at all. A live environment without the secret is refused."""
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tradai/{env}/binance"
    live = Settings(repo=repo, deploy_target="ecs", exchange_keys_secret_arn=arn,
                    envs={"dev": {"live_trading": True}})
    settings = Settings(repo=repo, deploy_target="ecs")
    assert provision(live, environment(live, "dev")).created
    api = EcsApi(live.aws())
    apply_env(ReleaseContext.open(live, "dev", backends=ecs_backends(live, "dev", api)))
    definition, _ = api.describe_task_definition(services(api, "tradai-dev")["tradai-dev-PascalStrategy-p3"]
                                                 ["taskDefinition"])
    container = definition["containerDefinitions"][0]
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tradai/dev/binance"
    assert container["secrets"] == [
        {"name": "FREQTRADE__EXCHANGE__KEY", "valueFrom": f"{secret}:key::"},
        {"name": "FREQTRADE__EXCHANGE__SECRET", "valueFrom": f"{secret}:secret::"},
    ]
    assert not any(e["name"].startswith("FREQTRADE__") for e in container["environment"])
    assert container["command"] == ["python", "-m", "tradai_release.runtime", "--exec", "freqtrade", "trade"]

    dry = EcsTarget.from_settings(live, "prod", api=api)  # prod trades in dry run: no secret named
    assert dry.exchange_keys_secret_arn is None
    with pytest.raises(SettingsError, match="exchange_keys_secret_arn: dev trades live: name the Secrets"):
        EcsTarget.from_settings(Settings(repo=repo, envs={"dev": {"live_trading": True}}), "dev", api=api)
    assert EcsTarget.from_settings(settings, "dev", api=api).exchange_keys_secret_arn is None


def test_deploy_status_compares_pins_with_what_runs(repo: Path) -> None:
    settings = Settings(repo=repo)
    assert {s.state for s in bot_statuses(ReleaseContext.open(settings, "dev"))} == {NOT_DEPLOYED}
    apply_env(ReleaseContext.open(settings, "dev"))
    path = settings.state_dir / "dev" / "bots" / "PascalStrategy-p1.env"
    path.write_text(path.read_text().replace(f"TRADAI_HUB_TAG={TAG}", "TRADAI_HUB_TAG=v19990101"))
    statuses = {s.bot: s for s in bot_statuses(ReleaseContext.open(settings, "dev"))}
    assert statuses["PascalStrategy-p1"].state == DIFFERS
    assert statuses["PascalStrategy-p1"].differences == ("TRADAI_HUB_TAG",)
    assert {s.state for name, s in statuses.items() if name != "PascalStrategy-p1"} == {IN_SYNC}
    # A tag that does not hold the bot's pinned files is drift the plan repairs (the bot refuses it).
    [deploy] = [a for a in plan_env(ReleaseContext.open(settings, "dev")).actions if isinstance(a, DeployBot)]
    assert deploy.bot == "PascalStrategy-p1" and "pulls tag v19990101, which does not hold" in deploy.reason

    root, environ = Path(__file__).resolve().parents[1], {**os.environ, "TRADAI_REPO": str(repo)}
    done = run_invoke(["deploy-status", "--env", "dev", "--json"], root, environ, 120)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["env"] == "dev" and len(listed["bots"]) == BOTS_PER_ENV
    row = next(b for b in listed["bots"] if b["bot"] == "PascalStrategy-p1")
    assert row["state"] == "differs" and row["running"]["TRADAI_HUB_TAG"] == "v19990101"
    text = run_invoke(["deploy-status", "--env", "dev"], root, environ, 120)
    assert "differs" in text.stdout and "in sync" in text.stdout
    bad = run_invoke(["deploy-status", "--env", "qa"], root, environ, 120)
    assert bad.returncode == 1 and bad.stderr.startswith("error: settings: env: unknown environment 'qa'")


def desired_counts(api: EcsApi) -> set[int]:
    live = services(api, "tradai-dev")
    return {live[f"tradai-dev-MyStrategy-p{p}"]["desiredCount"] for p in (3, 4, 5)}


def test_prune_scales_undeclared_ecs_services_to_zero_and_a_returning_strategy_scales_them_back(
    repo: Path, aws: None
) -> None:
    settings = Settings(repo=repo, deploy_target="ecs")
    provision(settings, environment(settings, "dev"))
    api = EcsApi(settings.aws())
    apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    api.client.create_service(cluster="tradai-dev", serviceName="tradai-dev-Handmade-p1", desiredCount=1,
                              taskDefinition=services(api, "tradai-dev")["tradai-dev-MyStrategy-p3"][
                                  "taskDefinition"])  # named like a bot, but no apply made it: never pruned
    for profile in (3, 4, 5):
        with edit_manifest(repo / "releases" / "dev" / f"profile-{profile}.yaml") as editor:
            editor.remove_strategy("MyStrategy")
    removed = commit_all(repo, "stop running MyStrategy in dev")
    retired = [f"dev/MyStrategy-p{p}" for p in (3, 4, 5)]

    plan = plan_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    assert [a.target for a in plan.orphans if isinstance(a, RetireBot)] == retired
    assert "scale to zero tradai-dev/tradai-dev-MyStrategy-p3" in render_text(plan)
    api.writes.clear()
    apply_env(
        ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api))
    )  # prune off: records the commit
    assert sum(api.writes.values()) == 0
    assert desired_counts(api) == {1}

    (repo / "releases" / "policy.yaml").write_text("prune: true\n")
    commit_all(repo, "prune dev")
    api.writes.clear()
    deployment = apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    assert api.writes == {"update_service": 3, "tag_resource": 3}  # three services scaled to zero, tagged
    live = services(api, "tradai-dev")
    for profile in (3, 4, 5):
        service = live[f"tradai-dev-MyStrategy-p{profile}"]
        assert service["desiredCount"] == 0
        tags = {t["key"]: t["value"] for t in service["tags"]}
        assert tags["tradai:deployment-id"] == deployment.deployment_id
    assert live["tradai-dev-Handmade-p1"]["desiredCount"] == 1
    assert plan_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api))).empty

    git(repo, "revert", "--no-edit", removed)  # MyStrategy comes back: the same services scale back up
    plan = plan_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    deploys = [a for a in plan.actions if isinstance(a, DeployBot)]
    assert [a.target for a in deploys] == retired and "scaled to zero (retired)" in deploys[0].reason
    statuses = bot_statuses(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    assert {s.state for s in statuses if s.bot.startswith("MyStrategy")} == {NOT_DEPLOYED}
    api.writes.clear()
    apply_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api)))
    assert "register_task_definition" not in api.writes  # the revision it ran before is reused
    assert desired_counts(api) == {1}
    assert plan_env(ReleaseContext.open(settings, "dev", backends=ecs_backends(settings, "dev", api))).empty


# --- a staging pin's challenger bot ------------------------------------------------------------------------


def stage(repo: Path, env: str, profile: int, strategy: str, version: int | None) -> None:
    with edit_manifest(repo / "releases" / env / f"profile-{profile}.yaml") as editor:
        editor.set_staging(strategy, version)
    commit_all(repo, f"{strategy} v{version} dry-runs in {env} p{profile}")


def tag_version(settings: Settings, strategy: str, version: int, tag: str) -> None:
    from tradai_release.registry.adapter import MlflowRegistry

    registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)
    registry.set_version_tag(strategy, version, "r2_tag", tag)


def test_a_staging_pin_runs_a_challenger_bot_beside_the_champion_until_the_pin_goes(repo: Path) -> None:
    settings = Settings(repo=repo)
    apply_env(ReleaseContext.open(settings, "dev"))
    before = env_files(settings)
    tag_version(settings, "PascalStrategy", 2, TAG)  # where training pushed v2's files
    stage(repo, "dev", 3, "PascalStrategy", 2)

    plan = plan_env(ReleaseContext.open(settings, "dev"))
    (deploy,) = [a for a in plan.actions if isinstance(a, DeployBot)]
    assert (deploy.target, deploy.version, deploy.tag) == ("dev/PascalStrategy-p3-challenger", 2, TAG)
    assert deploy.reason == "PascalStrategy-p3-challenger is not deployed to env-file yet"
    assert apply_env(ReleaseContext.open(settings, "dev")).outcome == "succeeded"
    after = env_files(settings)
    assert {name: text for name, text in after.items() if name in before} == before  # the champion stays
    pinned = parse_env_file(after["PascalStrategy-p3-challenger.env"], where="challenger")
    champion = parse_env_file(before["PascalStrategy-p3.env"], where="champion")
    assert pinned == {**champion, "TRADAI_MODEL_VERSION": "2", "TRADAI_ROLE": "challenger"}
    assert "TRADAI_ROLE" not in champion  # a production bot's file is what it was before challengers
    pins = BotPins.from_variables(pinned, where="challenger")
    assert pins.key.name == "PascalStrategy-p3-challenger" and pins.key.challenger
    statuses = {s.bot: s.state for s in bot_statuses(ReleaseContext.open(settings, "dev"))}
    assert statuses["PascalStrategy-p3-challenger"] == IN_SYNC and statuses["PascalStrategy-p3"] == IN_SYNC
    assert plan_env(ReleaseContext.open(settings, "dev")).empty

    stage(repo, "dev", 3, "PascalStrategy", None)  # the pin goes (promoted, or given up): so does its bot
    plan = plan_env(ReleaseContext.open(settings, "dev"))
    (retire,) = [a for a in plan.actions if isinstance(a, RetireBot)]
    assert retire.target == "dev/PascalStrategy-p3-challenger"
    assert retire.reason == "profile 3 no longer stages a challenger of PascalStrategy"
    apply_env(ReleaseContext.open(settings, "dev"))
    assert env_files(settings) == before


def test_a_staged_version_without_files_in_the_hub_is_one_line_before_anything_is_written(repo: Path) -> None:
    from tradai_release.core.errors import InputError

    settings = Settings(repo=repo)
    stage(repo, "dev", 3, "KeplerStrategy", 2)  # v2 names no r2_tag
    with pytest.raises(InputError) as caught:
        apply_env(ReleaseContext.open(settings, "dev"))
    assert str(caught.value) == (
        "releases/dev/profile-3.yaml: strategies.KeplerStrategy.model.staging: KeplerStrategy v2 names no "
        "model-hub tag (r2_tag): its challenger bot has no files to run")
    assert env_files(settings) == {}
    tag_version(settings, "KeplerStrategy", 2, "v20991231")
    with pytest.raises(InputError, match="the hub tag v20991231 of v2: "):
        plan_env(ReleaseContext.open(settings, "dev"))


def test_a_challenger_service_never_gets_the_exchange_keys(repo: Path, aws: None) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tradai/{env}/binance"
    live = Settings(repo=repo, deploy_target="ecs", exchange_keys_secret_arn=arn,
                    envs={"dev": {"live_trading": True}})
    provision(live, environment(live, "dev"))
    api = EcsApi(live.aws())
    tag_version(live, "PascalStrategy", 2, TAG)
    stage(repo, "dev", 3, "PascalStrategy", 2)
    apply_env(ReleaseContext.open(live, "dev", backends=ecs_backends(live, "dev", api)))
    running = services(api, "tradai-dev")
    challenger, _ = api.describe_task_definition(running["tradai-dev-PascalStrategy-p3-challenger"]
                                                 ["taskDefinition"])
    champion, _ = api.describe_task_definition(running["tradai-dev-PascalStrategy-p3"]["taskDefinition"])
    assert "secrets" not in challenger["containerDefinitions"][0]
    assert len(champion["containerDefinitions"][0]["secrets"]) == 2
    variables = {e["name"]: e["value"] for e in challenger["containerDefinitions"][0]["environment"]}
    assert (variables["TRADAI_ROLE"], variables["TRADAI_MODEL_VERSION"]) == ("challenger", "2")
    target = EcsTarget.from_settings(live, "dev", api=api)
    assert target.names.bot("dev", "tradai-dev-PascalStrategy-p3-challenger") == BotKey(
        "dev", 3, "PascalStrategy", "challenger")
    assert plan_env(ReleaseContext.open(live, "dev", backends=ecs_backends(live, "dev", api))).empty
