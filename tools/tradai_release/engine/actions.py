"""The plan's vocabulary: one frozen type per kind of change apply can make to a live system.

See docs/architecture.md §7. Each type carries what executing it needs, its ``phase`` (actions of
one phase on different ``key``\\ s may run at once), what it moves (``profiles``) and its JSON form
both ways (``to_dict`` / ``Action.from_dict``; journals written before these types still read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

# The plan lists its actions in this order, and apply runs them so: what is checked first, then what is
# stored, what is pinned, what runs, what is retired, and the record of it all last.


def plain(value: Any) -> Any:
    """``value`` as JSON values: mappings with string keys, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _json(name: str) -> Any:
    """A field whose JSON key is ``name`` (a Python keyword, or a name the action already uses)."""
    return field(metadata={"json": name})


@dataclass(frozen=True, kw_only=True)
class Action:
    """One idempotent change to a live system: what (``target``), why (``reason``) and the values."""

    kind: ClassVar[str]
    phase: ClassVar[str]
    retires: ClassVar[bool] = False  # prune's: what no manifest declares any more

    target: str
    reason: str

    @property
    def key(self) -> str:
        """What the action writes to: actions on one key keep their plan order within a phase."""
        return f"{self.kind}:{self.target}"

    @property
    def profiles(self) -> tuple[int, ...]:
        """The profiles the action concerns (for per-profile rendering)."""
        return ()

    def to_dict(self) -> dict[str, Any]:
        """``{"kind", "target", "reason", ...}``: the action in plan JSON and in the journal."""
        data: dict[str, Any] = {"kind": self.kind, "target": self.target, "reason": self.reason}
        for item in fields(self):
            if item.name not in ("target", "reason"):
                data[item.metadata.get("json", item.name)] = plain(getattr(self, item.name))
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Action:
        """The action ``to_dict`` gave (or an older journal's entry); KeyError for an unknown kind."""
        cls = ACTION_TYPES[str(data["kind"])]
        values: dict[str, Any] = {}
        for item in fields(cls):
            name = item.metadata.get("json", item.name)
            if name in data:
                value = data[name]
                values[item.name] = tuple(value) if isinstance(value, list) else value
            elif item.default is MISSING and item.default_factory is MISSING:
                values[item.name] = None
        return cls._upgrade(data, values)

    @classmethod
    def _upgrade(cls, data: Mapping[str, Any], values: dict[str, Any]) -> Action:
        return cls(**values)


# --- configs --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ConfigWrite(Action):
    strategy: str
    config_hash: str

    @property
    def key(self) -> str:
        return f"strategy:{self.strategy}"


@dataclass(frozen=True, kw_only=True)
class UploadConfig(ConfigWrite):
    """Store the body of a config whose hash the store does not hold yet."""

    kind = "upload_config"
    phase = "upload"
    object_key: str = _json("key")


@dataclass(frozen=True, kw_only=True)
class CreateConfigVersion(ConfigWrite):
    """A new DRAFT config version with the committed hash."""

    kind = "create_config_version"
    phase = "create"


@dataclass(frozen=True, kw_only=True)
class ActivateConfig(ConfigWrite):
    """Make the committed config the strategy's ACTIVE one."""

    kind = "activate_config"
    phase = "activate"
    config_id: str | None  # None while the version is created by this apply
    previous: str | None


@dataclass(frozen=True, kw_only=True)
class RetireConfig(ConfigWrite):
    """Deprecate (with its TTL) the ACTIVE config of a strategy no profile runs any more."""

    kind = "retire_config"
    phase = "retire-config"
    retires = True
    config_id: str


# --- the hub --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VerifyArtifacts(Action):
    """Read-only, first: a tag whose manifest or files do not match stops apply before any write."""

    kind = "verify_artifacts"
    phase = "verify"
    tag: str
    sha256: str
    profile_list: tuple[int, ...] = _json("profiles")

    @property
    def key(self) -> str:
        return f"tag:{self.tag}"

    @property
    def profiles(self) -> tuple[int, ...]:
        return self.profile_list


@dataclass(frozen=True, kw_only=True)
class PointerWrite(Action):
    profile: int
    tag: str
    sha256: str

    @property
    def key(self) -> str:
        return f"tag:{self.tag}"

    @property
    def profiles(self) -> tuple[int, ...]:
        return (self.profile,)


@dataclass(frozen=True, kw_only=True)
class WriteProfilePointer(PointerWrite):
    """Point the profile at the pinned tag (``previous``: the (tag, sha256) it pointed at)."""

    kind = "write_profile_pointer"
    phase = "pointer"
    previous: tuple[str, str] | None


@dataclass(frozen=True, kw_only=True)
class RetirePointer(PointerWrite):
    """Delete the hub pointer of a profile that has no manifest any more."""

    kind = "retire_pointer"
    phase = "retire-pointer"
    retires = True


# --- the registry ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LifecycleWrite(Action):
    """Tag (and mirror to the legacy stage) a version's lifecycle: ``from_`` -> ``to``."""

    model: str
    version: int
    from_: str = _json("from")
    to: str
    tags: Mapping[str, str | None]  # None deletes the tag
    stage: str | None

    @property
    def key(self) -> str:
        return f"model:{self.model}"


@dataclass(frozen=True, kw_only=True)
class SetLifecycle(LifecycleWrite):
    """A version entering Production or Staging (before aliases point at it)."""

    kind = "set_lifecycle"
    phase = "lifecycle"


@dataclass(frozen=True, kw_only=True)
class ArchiveVersion(LifecycleWrite):
    """A version leaving its lifecycle (after aliases moved away from it)."""

    kind = "archive_version"
    phase = "lifecycle"


@dataclass(frozen=True, kw_only=True)
class RetireVersion(LifecycleWrite):
    """Archive a version that only undeclared aliases or strategies held (after they are gone)."""

    kind = "retire_version"
    phase = "retire-lifecycle"
    retires = True


@dataclass(frozen=True, kw_only=True)
class AliasWrite(Action):
    model: str
    alias: str
    profile: int
    version: int | None
    previous: int | None

    @property
    def key(self) -> str:
        return f"model:{self.model}"

    @property
    def profiles(self) -> tuple[int, ...]:
        return (self.profile,)

    @property
    def staging(self) -> bool:
        return self.alias.endswith("-staging")


@dataclass(frozen=True, kw_only=True)
class SetAlias(AliasWrite):
    """Point the profile's alias at the pinned version."""

    kind = "set_alias"
    phase = "alias"


@dataclass(frozen=True, kw_only=True)
class DeleteAlias(AliasWrite):
    """The profile no longer pins a version of the model there."""

    kind = "delete_alias"
    phase = "alias"


@dataclass(frozen=True, kw_only=True)
class RetireAlias(AliasWrite):
    """Delete the alias of a deleted profile, or of a strategy no profile runs."""

    kind = "retire_alias"
    phase = "retire-alias"
    retires = True


# --- the bots -------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BotAction(Action):
    bot: str
    profile: int
    strategy: str
    deployed_on: str  # the deployment target's name (ecs, env-file)

    @property
    def key(self) -> str:
        return f"strategy:{self.strategy}"

    @property
    def profiles(self) -> tuple[int, ...]:
        return (self.profile,)


@dataclass(frozen=True, kw_only=True)
class DeployBot(BotAction):
    """Deploy the bot's pins (after pins, aliases and pointers: a bot that starts finds the new values)."""

    kind = "deploy_bot"
    phase = "deploy"
    content_sha256: str | None  # None while the config version is created by this apply
    config_hash: str
    config_id: str | None
    model: str
    version: int
    tag: str
    sha256: str
    image: str | None
    previous: str | None  # the revision the target ran
    files_sha256: str | None = None  # the strategy's own files in the tag (None: unknown, or older plans)

    @classmethod
    def _upgrade(cls, data: Mapping[str, Any], values: dict[str, Any]) -> Action:
        if values.get("deployed_on") is None:  # journals before 2026-12 kept the target's name in "target"
            values["deployed_on"] = str(data.get("target", ""))
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class WaitRollout(Action):
    """Wait until the rollouts started are stable (a failed one is rolled back, and apply fails)."""

    kind = "wait_rollout"
    phase = "wait"
    bots: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RetireBot(BotAction):
    """Stop a bot no manifest declares (scale its service to zero, or remove its env file)."""

    kind = "retire_bot"
    phase = "retire-bot"
    retires = True
    revision: str
    where: str


# --- the record -----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RecordDeployment(Action):
    """Record the commit as the environment's last applied one, with the live values it left."""

    kind = "record_deployment"
    phase = "record"
    commit: str
    previous: str | None


ACTION_TYPES: dict[str, type[Action]] = {
    cls.kind: cls
    for cls in (
        VerifyArtifacts, UploadConfig, CreateConfigVersion, ActivateConfig, SetLifecycle, SetAlias,
        DeleteAlias, ArchiveVersion, WriteProfilePointer, DeployBot, WaitRollout, RetireBot, RetireAlias,
        RetireVersion, RetirePointer, RetireConfig, RecordDeployment,
    )
}
