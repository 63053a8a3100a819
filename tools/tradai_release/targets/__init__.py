"""Deployment targets: where apply puts each bot's pins so the process that trades runs them.

See docs/architecture.md §14.

A target reads what each bot runs now (``read``), makes one bot run a spec (``deploy``) and waits
for the rollouts it started (``wait``); for prune it lists the bots it runs that the repository no
longer declares (``undeclared``) and scales one to zero (``retire``). ``none`` keeps the registries
as the only record; ``env-file`` writes one file per bot for plain hosts; ``ecs`` runs one service
per bot.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.repository.bots import BotKey, BotSpec
    from tradai_release.repository.environments import Environment


ROLLOUT_COMPLETED = "COMPLETED"
ROLLOUT_IN_PROGRESS = "IN_PROGRESS"
ROLLOUT_FAILED = "FAILED"


@dataclass(frozen=True)
class RunningBot:
    """What a target runs for one bot now.

    ``revision`` names the deployed definition (an ECS task definition ARN, an env file's content
    hash); ``content_hash`` is the target's hash of it (compared with ``definition_hash`` of a spec).
    ``variables`` are the pinned variables it carries, when they were read. ``retired``: the
    deployment is there but scaled to zero (an ECS service with desired count 0): it runs nothing.
    ``rollout``: where the target's last rollout of the bot stands; a target that does not roll out
    (an env file) or does not watch rollouts (a wait of 0 s) says COMPLETED.
    """

    key: BotKey
    revision: str
    content_hash: str
    variables: Mapping[str, str] | None = None
    where: str = ""
    retired: bool = False
    rollout: str = "COMPLETED"  # COMPLETED | IN_PROGRESS | FAILED: the target's last rollout of the bot
    rollout_detail: str = ""

    @property
    def rolling_out(self) -> bool:
        """True while the last rollout is neither stable nor failed (apply must see it through)."""
        return self.rollout == ROLLOUT_IN_PROGRESS

    @property
    def rollout_failed(self) -> bool:
        """True when the last rollout failed (the bot does not run what was deployed)."""
        return self.rollout == ROLLOUT_FAILED


@dataclass(frozen=True)
class DeployStamp:
    """Which apply deploys: recorded beside the definition (service tags, file comments), not in it."""

    commit: str
    deployment_id: str
    trace_id: str


class DeploymentTarget(Protocol):
    """One environment's deployment target."""

    name: str
    waits: bool  # deploy starts a rollout that ``wait`` must see through

    def definition_hash(self, spec: BotSpec) -> str:
        """The content hash the target's definition of ``spec`` has (equal specs, equal hash)."""
        ...

    def read(
        self, keys: Sequence[BotKey], *, known: Mapping[str, str], variables: bool = False
    ) -> dict[BotKey, RunningBot]:
        """What runs for each of ``keys`` (absent: nothing deployed). ``known`` maps revisions to content
        hashes already known (the last apply's record), so they are not read again; ``variables`` asks
        for every bot's variables too."""
        ...

    def deploy(self, spec: BotSpec, stamp: DeployStamp) -> RunningBot:
        """Make the bot run ``spec`` (reusing an identical definition); does not wait for the rollout."""
        ...

    def wait(self, keys: Sequence[BotKey]) -> None:
        """Return once every bot of ``keys`` runs its new definition; raise DeploymentFailed otherwise."""
        ...

    def undeclared(self, env: str, declared: Collection[BotKey]) -> dict[BotKey, RunningBot]:
        """The bots of ``env`` this target runs that are not in ``declared`` (retired ones excluded):
        what prune retires. Only deployments this tool made are listed."""
        ...

    def retire(self, key: BotKey, stamp: DeployStamp) -> None:
        """Scale the bot's deployment to zero (a later ``deploy`` brings it back); safe to repeat."""
        ...


@dataclass
class NoTarget:
    """``none``: apply stops at registries, aliases and pointers (bots read the live state themselves)."""

    name: str = "none"
    waits: bool = False

    def definition_hash(self, spec: BotSpec) -> str:
        return ""

    def read(
        self, keys: Sequence[BotKey], *, known: Mapping[str, str], variables: bool = False
    ) -> dict[BotKey, RunningBot]:
        return {}

    def deploy(self, spec: BotSpec, stamp: DeployStamp) -> RunningBot:
        from tradai_release.core.errors import DeploymentFailed

        raise DeploymentFailed(str(spec.key), "the environment's deployment target is 'none'")

    def wait(self, keys: Sequence[BotKey]) -> None:
        return None

    def undeclared(self, env: str, declared: Collection[BotKey]) -> dict[BotKey, RunningBot]:
        return {}

    def retire(self, key: BotKey, stamp: DeployStamp) -> None:
        from tradai_release.core.errors import DeploymentFailed

        raise DeploymentFailed(str(key), "the environment's deployment target is 'none'")


def open_target(settings: Settings, env: Environment) -> DeploymentTarget:
    """The deployment target ``settings`` select for ``env`` (``deploy_target``, per-env overrides)."""
    name = env.name
    kind = settings.deploy_target_of(name)
    if kind == "env-file":
        from tradai_release.targets.envfile import EnvFileTarget

        return EnvFileTarget.from_settings(settings, name)
    if kind == "ecs":
        from tradai_release.targets.ecs import EcsTarget

        return EcsTarget.from_settings(settings, name)
    return NoTarget()
