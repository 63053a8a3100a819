"""The ``ecs`` target: one service per bot in the environment's cluster, running a task definition whose
container environment is exactly the bot's pins.

Task definitions are tagged with the SHA-256 of their content; a spec equal to an existing revision
reuses it (so a revert returns the service to the previous revision without registering one).
Services are updated with the deployment circuit breaker and rollback on; ``wait`` polls them
until their rollout completes, fails, or the wait setting runs out. Which apply deployed is a tag
on the service, never part of the definition. Retiring a bot (prune) scales its service to zero and
keeps it, so a strategy that comes back is an update of the same service.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tradai_release.bot.config import KEY_VARIABLE, SECRET_VARIABLE
from tradai_release.core.errors import DeploymentFailed, SettingsError
from tradai_release.repository.bots import BOT_COMMAND, CHALLENGER_ROLE, PRODUCTION_ROLE, VARIABLES, BotKey
from tradai_release.targets import DeployStamp, RunningBot

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.repository.bots import BotSpec
    from tradai_release.stores.ecs import EcsApi

CONTENT_TAG = "tradai:content-sha256"
DEPLOYMENT_TAG = "tradai:deployment-id"  # on every service apply created or updated
CONTAINER = "bot"

Waiter = Callable[["EcsApi", str, Mapping[str, str], float], None]
RolloutReader = Callable[[Mapping[str, Any]], tuple[str, str]]
"""(COMPLETED | IN_PROGRESS | FAILED, detail) of a described service: :func:`rollout_state`, or in tests
a stand-in (moto's services never run tasks)."""
"""``wait(api, cluster, {service: bot}, timeout_seconds)``: returns once stable, raises DeploymentFailed."""


@dataclass(frozen=True)
class EcsNames:
    """How a bot's cluster, service and task definition family are named (templates from settings)."""

    cluster: str
    service_template: str

    def service(self, key: BotKey) -> str:
        """The template's name for the profile's bot; a challenger's is that plus ``-challenger``."""
        name = self.service_template.format(env=key.env, strategy=key.strategy, profile=key.profile)
        return name if key.role == PRODUCTION_ROLE else f"{name}-{key.role}"

    def bot(self, env: str, service: str) -> BotKey | None:
        """The bot of ``env`` whose service is named ``service`` (None: not a name the template makes)."""
        role = PRODUCTION_ROLE
        if service.endswith(f"-{CHALLENGER_ROLE}"):
            role, service = CHALLENGER_ROLE, service.removesuffix(f"-{CHALLENGER_ROLE}")
        fields = {
            "env": re.escape(env),
            "strategy": "(?P<strategy>[A-Za-z][A-Za-z0-9_]{0,63})",
            "profile": "(?P<profile>[1-9][0-9]*)",
        }
        pattern, seen = "", set()
        for literal, name, _, _ in string.Formatter().parse(self.service_template):
            pattern += re.escape(literal)
            if name is not None:
                repeated = name in seen and name != "env"
                pattern += f"(?P={name})" if repeated else fields.get(name, "(?!)")
                seen.add(name)
        match = re.fullmatch(pattern, service)
        if match is None or "strategy" not in match.groupdict() or "profile" not in match.groupdict():
            return None
        return BotKey(env, int(match.group("profile")), match.group("strategy"), role)


@dataclass
class EcsTarget:
    """The ECS services of one environment."""

    api: EcsApi
    names: EcsNames
    launch_type: str = "EC2"
    desired_count: int = 1
    registry: str = ""
    subnets: Sequence[str] = ()
    security_groups: Sequence[str] = ()
    execution_role_arn: str | None = None
    exchange_keys_secret_arn: str | None = None  # set only where the bots trade live
    reuse_depth: int = 10
    wait_seconds: float = 900.0
    waiter: Waiter | None = None
    rollouts: RolloutReader | None = None
    name: str = "ecs"
    waits: bool = True
    _services: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, env: str, *, api: EcsApi | None = None) -> EcsTarget:
        from tradai_release.stores.ecs import EcsApi

        cluster = settings.fill(settings.ecs_cluster, "ecs_cluster", env=env)
        settings.fill(settings.ecs_service, "ecs_service", env=env, strategy="S", profile=1)  # checked early
        poll = settings.deploy_poll_seconds
        keys_arn = None
        if settings.live_trading_of(env):
            if not settings.exchange_keys_secret_arn:
                raise SettingsError(
                    "exchange_keys_secret_arn",
                    f"{env} trades live: name the Secrets Manager secret of its exchange keys",
                )
            keys_arn = settings.fill(settings.exchange_keys_secret_arn, "exchange_keys_secret_arn", env=env)
        return cls(
            api=api or EcsApi(settings.aws()),
            names=EcsNames(cluster, settings.ecs_service),
            launch_type=settings.launch_type_of(env),
            desired_count=settings.ecs_desired_count,
            registry=settings.ecr_registry,
            subnets=tuple(settings.ecs_subnets),
            security_groups=tuple(settings.ecs_security_groups),
            execution_role_arn=settings.ecs_execution_role_arn,
            exchange_keys_secret_arn=keys_arn,
            reuse_depth=settings.ecs_reuse_depth,
            wait_seconds=settings.deploy_wait_seconds,
            waiter=lambda api, cluster, services, timeout: poll_until_stable(
                api, cluster, services, timeout, poll_seconds=poll
            ),
        )

    # --- the definition --------------------------------------------------------------------------------

    @property
    def awsvpc(self) -> bool:
        return self.launch_type == "FARGATE" or bool(self.subnets)

    def definition(self, spec: BotSpec) -> dict[str, Any]:
        """The task definition of ``spec`` (register_task_definition's arguments, without tags)."""
        pins = spec.pins
        image = f"{self.registry.rstrip('/')}/{pins.image}" if self.registry else pins.image
        variables = pins.variables()
        definition: dict[str, Any] = {
            "family": self.names.service(spec.key),
            "requiresCompatibilities": [self.launch_type],
            "networkMode": "awsvpc" if self.awsvpc else "bridge",
            "cpu": str(spec.cpu),
            "memory": str(spec.memory),
            "containerDefinitions": [
                {
                    "name": CONTAINER,
                    "image": image,
                    "essential": True,
                    "command": list(BOT_COMMAND),
                    "environment": [{"name": name, "value": variables[name]} for name in VARIABLES
                                    if name in variables],
                }
            ],
        }
        if self.exchange_keys_secret_arn and not spec.key.challenger:  # a challenger only ever dry-runs
            # A reference, never a value: ECS reads the secret when the task starts (JSON keys "key" and
            # "secret"), so neither the definition nor any record holds the keys.
            definition["containerDefinitions"][0]["secrets"] = [
                {"name": variable, "valueFrom": f"{self.exchange_keys_secret_arn}:{json_key}::"}
                for variable, json_key in ((KEY_VARIABLE, "key"), (SECRET_VARIABLE, "secret"))
            ]
        if self.execution_role_arn:
            definition["executionRoleArn"] = self.execution_role_arn
        return definition

    def definition_hash(self, spec: BotSpec) -> str:
        """Of what the bot runs (its pins' identity): a definition that only names another tag holding
        the same files of the strategy hashes the same, so it is neither registered nor rolled out."""
        identity = replace(spec, pins=spec.pins.identity())
        canonical = json.dumps(self.definition(identity), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    # --- read --------------------------------------------------------------------------------------------

    def read(
        self, keys: Sequence[BotKey], *, known: Mapping[str, str], variables: bool = False
    ) -> dict[BotKey, RunningBot]:
        """describe_services 10 at a time; a task definition is described only when its content hash
        is not already known (a revision the last apply did not set, or ``variables`` asked for)."""
        by_service = {self.names.service(key): key for key in keys}
        if not by_service:
            return {}
        self._services = self.api.describe_services(self.names.cluster, sorted(by_service))
        found: dict[BotKey, RunningBot] = {}
        for service_name, service in self._services.items():
            key = by_service[service_name]
            arn = str(service["taskDefinition"])
            content = known.get(arn)
            values: dict[str, str] | None = None
            if content is None or variables:
                definition, tags = self.api.describe_task_definition(arn)
                content = tags.get(CONTENT_TAG) or f"untagged:{arn}"
                values = _container_variables(definition)
            where = f"{self.names.cluster}/{service_name}"
            retired = int(service.get("desiredCount", 1)) == 0
            state, detail = ("COMPLETED", "") if retired or self.wait_seconds <= 0 else self._rollout(service)
            found[key] = RunningBot(
                key, arn, content, values, where=where, retired=retired, rollout=state, rollout_detail=detail
            )
        return found

    def _rollout(self, service: Mapping[str, Any]) -> tuple[str, str]:
        return (self.rollouts or rollout_state)(service)

    def undeclared(self, env: str, declared: Collection[BotKey]) -> dict[BotKey, RunningBot]:
        """Services of the cluster named like a bot of ``env``, tagged by an apply, not scaled to zero and
        not declared: one listing per 100 services, one describe per 10 candidates."""
        names = {self.names.service(key) for key in declared}
        candidates = {
            service: key
            for service in self.api.service_names(self.names.cluster)
            if service not in names and (key := self.names.bot(env, service)) is not None
        }
        if not candidates:
            return {}
        found: dict[BotKey, RunningBot] = {}
        described = self.api.describe_services(self.names.cluster, sorted(candidates))
        for service_name, service in described.items():
            tags = {str(t["key"]): str(t["value"]) for t in service.get("tags") or []}
            if DEPLOYMENT_TAG not in tags or int(service.get("desiredCount", 0)) == 0:
                continue
            key = candidates[service_name]
            where = f"{self.names.cluster}/{service_name}"
            found[key] = RunningBot(key, str(service["taskDefinition"]), "", None, where=where)
        return found

    def retire(self, key: BotKey, stamp: DeployStamp) -> None:
        """Scale the bot's service to zero and tag it with the apply that did."""
        service = self.api.update_service(self.names.cluster, self.names.service(key), desiredCount=0)
        self.api.tag(str(service["serviceArn"]), _stamp_tags(stamp))
        self._services[self.names.service(key)] = service

    # --- deploy ------------------------------------------------------------------------------------------

    def deploy(self, spec: BotSpec, stamp: DeployStamp) -> RunningBot:
        key = spec.key
        service_name = self.names.service(key)
        digest = self.definition_hash(spec)
        arn = self._reusable(spec, digest) or self.api.register_task_definition(
            self.definition(spec),
            {CONTENT_TAG: digest, "tradai:env": key.env, "tradai:bot": key.name},
        )
        stamp_tags = _stamp_tags(stamp)
        settings = {
            "taskDefinition": arn,
            "desiredCount": self.desired_count,
            "deploymentConfiguration": {
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
            },
        }
        if self.awsvpc:
            settings["networkConfiguration"] = {
                "awsvpcConfiguration": {
                    "subnets": list(self.subnets),
                    "securityGroups": list(self.security_groups),
                    "assignPublicIp": "DISABLED",
                }
            }
        existing = self._services.get(service_name)
        if existing is None:
            existing = self.api.describe_services(self.names.cluster, [service_name]).get(service_name)
        if existing is None:
            service = self.api.create_service(
                self.names.cluster,
                service_name,
                launchType=self.launch_type,
                propagateTags="SERVICE",
                enableECSManagedTags=True,
                tags=[{"key": k, "value": v} for k, v in sorted(stamp_tags.items())],
                **settings,
            )
        else:
            service = self.api.update_service(self.names.cluster, service_name, **settings)
            self.api.tag(str(service["serviceArn"]), stamp_tags)
        self._services[service_name] = service
        where = f"{self.names.cluster}/{service_name}"
        return RunningBot(key, arn, digest, spec.pins.variables(), where=where)

    def _reusable(self, spec: BotSpec, digest: str) -> str | None:
        """The newest revision of the bot's family with this content (searched ``reuse_depth`` deep)."""
        family = self.names.service(spec.key)
        revisions = self.api.task_definition_arns(family, self.reuse_depth)
        for arn in sorted(revisions, key=_revision, reverse=True):
            _, tags = self.api.describe_task_definition(arn)
            if tags.get(CONTENT_TAG) == digest:
                return arn
        return None

    def wait(self, keys: Sequence[BotKey]) -> None:
        if self.wait_seconds <= 0 or not keys:
            return
        services = {self.names.service(key): str(key) for key in keys}
        waiter = self.waiter or poll_until_stable
        waiter(self.api, self.names.cluster, services, self.wait_seconds)


def poll_until_stable(
    api: EcsApi,
    cluster: str,
    services: Mapping[str, str],
    timeout_seconds: float,
    *,
    poll_seconds: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until every service's rollout completed (ECS's COMPLETED, or one deployment with all its
    tasks running); a FAILED rollout (the circuit breaker rolled it back) or the timeout is
    DeploymentFailed naming the bot."""
    deadline = clock() + timeout_seconds
    pending = dict(services)
    while True:
        live = api.describe_services(cluster, sorted(pending))
        for name in sorted(pending):
            service = live.get(name)
            if service is None:
                raise DeploymentFailed(pending[name], f"service {name} is gone from cluster {cluster}")
            state, detail = rollout_state(service)
            if state == "FAILED":
                raise DeploymentFailed(pending[name], f"rollout failed and was rolled back: {detail}")
            if state == "COMPLETED":
                del pending[name]
        if not pending:
            return
        if clock() >= deadline:
            name = sorted(pending)[0]
            _, detail = rollout_state(live[name])
            more = f" (and {len(pending) - 1} more)" if len(pending) > 1 else ""
            raise DeploymentFailed(
                pending[name], f"not stable within {timeout_seconds:g} s: {detail}{more}"
            )
        sleep(max(0.0, min(poll_seconds, deadline - clock())))


def rollout_state(service: Mapping[str, Any]) -> tuple[str, str]:
    """(COMPLETED | FAILED | IN_PROGRESS, a readable detail) of a service's primary deployment."""
    deployments = list(service.get("deployments") or [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None:
        return "IN_PROGRESS", "no primary deployment"
    running, desired = int(primary.get("runningCount", 0)), int(primary.get("desiredCount", 0))
    detail = f"{running} of {desired} tasks running ({primary.get('rolloutState', 'no rollout state')})"
    state = str(primary.get("rolloutState") or "")
    if state == "FAILED":
        return "FAILED", str(primary.get("rolloutStateReason") or detail)
    if state == "COMPLETED" or (len(deployments) == 1 and running == desired):
        return "COMPLETED", detail
    return "IN_PROGRESS", detail


def _stamp_tags(stamp: DeployStamp) -> dict[str, str]:
    return {
        "tradai:commit": stamp.commit,
        DEPLOYMENT_TAG: stamp.deployment_id,
        "tradai:trace-id": stamp.trace_id,
    }


def _container_variables(definition: Mapping[str, Any]) -> dict[str, str]:
    containers = list(definition.get("containerDefinitions") or [])
    chosen = next((c for c in containers if c.get("name") == CONTAINER), containers[0] if containers else {})
    return {str(e["name"]): str(e.get("value", "")) for e in chosen.get("environment") or []}


def _revision(arn: str) -> int:
    tail = arn.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
