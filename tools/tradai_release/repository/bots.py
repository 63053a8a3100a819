"""What a bot runs: the pinned values of one (environment, profile, strategy), as a deployment carries them.

See docs/architecture.md §14.

A deployment target (an ECS task definition's container environment, a host's env file) carries
exactly these variables; the bot's start-up (``tradai_release.runtime``) reads them back and
checks that the files, the config and the model are these. The variables are the release content
only: which commit or trace put them live is recorded next to them (service tags, the deployment
record), so a change elsewhere in the repository never rewrites a bot's definition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from tradai_release.core.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

    from tradai_release.core.settings import Settings

ENV = "TRADAI_ENV"
PROFILE = "TRADAI_PROFILE"
STRATEGY = "TRADAI_STRATEGY"
CONFIG_ID = "TRADAI_CONFIG_ID"
CONFIG_HASH = "TRADAI_CONFIG_HASH"
MODEL_NAME = "TRADAI_MODEL_NAME"
MODEL_VERSION = "TRADAI_MODEL_VERSION"
HUB_TAG = "TRADAI_HUB_TAG"
HUB_SHA256 = "TRADAI_HUB_SHA256"
FILES_SHA256 = "TRADAI_FILES_SHA256"
IMAGE = "TRADAI_IMAGE"
ROLE = "TRADAI_ROLE"

PRODUCTION_ROLE = "production"
CHALLENGER_ROLE = "challenger"
"""A profile's production pin runs as its bot; a staging pin runs beside it as the challenger, always
dry-run (``<strategy>-p<N>-challenger``)."""

BOT_EXEC: tuple[str, ...] = ("freqtrade", "trade")
"""What the runtime becomes after its checks (``--exec``)."""
BOT_COMMAND: tuple[str, ...] = ("python", "-m", "tradai_release.runtime", "--exec", *BOT_EXEC)
"""A bot container's command: the start-up check, then Freqtrade in the same process (architecture §17)."""

VARIABLES: tuple[str, ...] = (
    ENV,
    PROFILE,
    STRATEGY,
    CONFIG_ID,
    CONFIG_HASH,
    MODEL_NAME,
    MODEL_VERSION,
    HUB_TAG,
    HUB_SHA256,
    FILES_SHA256,
    IMAGE,
    ROLE,
)
"""Every variable a deployment pins, in the order they are written. ``ROLE`` is written only for a
challenger (a production bot's variables, hash and file are what they were before challengers)."""

WHERE_FROM = (HUB_TAG, HUB_SHA256)
"""Where the bot pulls its files from: not what it runs. A profile's tag moves when any of its strategies
changes; a bot whose own files (``FILES_SHA256``) are the same in the new tag keeps running, pulling
from the tag it was deployed with."""


@dataclass(frozen=True)
class BotKey:
    """One bot: a strategy trading in one profile of one environment."""

    env: str
    profile: int
    strategy: str
    role: str = PRODUCTION_ROLE

    @property
    def name(self) -> str:
        """``<strategy>-p<N>`` (``-challenger`` after it for a staging pin's bot): the bot's name inside
        its environment (env file, plan targets)."""
        base = f"{self.strategy}-p{self.profile}"
        return base if self.role == PRODUCTION_ROLE else f"{base}-{self.role}"

    @property
    def challenger(self) -> bool:
        return self.role == CHALLENGER_ROLE

    def __str__(self) -> str:
        return f"{self.env}/{self.name}"


@dataclass(frozen=True)
class BotPins:
    """The release content one bot must run. ``config_id`` is None while the config is not stored yet."""

    env: str
    profile: int
    strategy: str
    config_id: str | None
    config_hash: str
    model_name: str
    model_version: int
    hub_tag: str
    hub_sha256: str
    image: str
    files_sha256: str = ""  # content digest of the strategy's own files in the tag ("" when unknown)
    role: str = PRODUCTION_ROLE

    @property
    def key(self) -> BotKey:
        return BotKey(self.env, self.profile, self.strategy, self.role)

    def identity(self) -> BotPins:
        """These pins without where the files come from, once the files themselves are pinned: equal
        identities run the same thing (a deployment's content hash is taken over this)."""
        return replace(self, hub_tag="", hub_sha256="") if self.files_sha256 else self

    def variables(self) -> dict[str, str]:
        """The environment variables of the deployment, in ``VARIABLES`` order."""
        return {
            ENV: self.env,
            PROFILE: str(self.profile),
            STRATEGY: self.strategy,
            CONFIG_ID: self.config_id or "",
            CONFIG_HASH: self.config_hash,
            MODEL_NAME: self.model_name,
            MODEL_VERSION: str(self.model_version),
            HUB_TAG: self.hub_tag,
            HUB_SHA256: self.hub_sha256,
            FILES_SHA256: self.files_sha256,
            IMAGE: self.image,
            **({ROLE: self.role} if self.role != PRODUCTION_ROLE else {}),
        }

    def content_hash(self) -> str:
        """SHA-256 of the variables: equal pins, equal hash (a definition with this hash can be reused)."""
        return variables_hash(self.variables())

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_variables(cls, variables: Mapping[str, str], *, where: str) -> BotPins:
        """Pins read back from a deployment's variables; a missing or malformed one is an InputError."""

        def value(name: str) -> str:
            text = variables.get(name)
            if text is None or not str(text).strip():
                raise InputError(where, name, "not set")
            return str(text).strip()

        def number(name: str) -> int:
            text = value(name)
            if not text.isdigit() or int(text) < 1:
                raise InputError(where, name, f"{text!r} is not a positive integer")
            return int(text)

        return cls(
            env=value(ENV),
            profile=number(PROFILE),
            strategy=value(STRATEGY),
            config_id=value(CONFIG_ID),
            config_hash=value(CONFIG_HASH),
            model_name=value(MODEL_NAME),
            model_version=number(MODEL_VERSION),
            hub_tag=value(HUB_TAG),
            hub_sha256=value(HUB_SHA256),
            image=value(IMAGE),
            files_sha256=str(variables.get(FILES_SHA256) or "").strip(),  # absent before it was pinned
            role=parse_role(variables.get(ROLE), where=where),
        )


@dataclass(frozen=True)
class BotSpec:
    """A bot as the repository describes it: its pins and the resources its strategy's tradai.yaml asks
    for (``deployment.ecs``). Deployment targets turn it into what they run."""

    pins: BotPins
    cpu: int
    memory: int

    @property
    def key(self) -> BotKey:
        return self.pins.key


def parse_role(value: str | None, *, where: str) -> str:
    """A deployment's ``TRADAI_ROLE`` (absent = production)."""
    role = str(value or "").strip() or PRODUCTION_ROLE
    if role not in (PRODUCTION_ROLE, CHALLENGER_ROLE):
        raise InputError(where, ROLE, f"{role!r} is not a role ({PRODUCTION_ROLE} or {CHALLENGER_ROLE})")
    return role


def parse_bot_name(name: str) -> tuple[str, int, str] | None:
    """``(strategy, profile, role)`` of a bot name ``<strategy>-p<N>[-challenger]``, or None."""
    import re

    match = re.fullmatch(r"(?P<strategy>[A-Za-z][A-Za-z0-9_]{0,63})-p(?P<profile>[1-9][0-9]*)"
                         rf"(?:-(?P<role>{CHALLENGER_ROLE}))?", name)
    if match is None:
        return None
    return match.group("strategy"), int(match.group("profile")), match.group("role") or PRODUCTION_ROLE


def variables_hash(variables: Mapping[str, str]) -> str:
    """SHA-256 of what a deployment runs: its pinned variables, without ``WHERE_FROM`` once the files
    are pinned by their own digest, and without an empty ``ROLE`` (canonical JSON of the pinned names)."""
    skipped: tuple[str, ...] = WHERE_FROM if variables.get(FILES_SHA256) else ()
    if not variables.get(ROLE):
        skipped = (*skipped, ROLE)
    pinned = {name: str(variables.get(name, "")) for name in VARIABLES if name not in skipped}
    return hashlib.sha256(json.dumps(pinned, sort_keys=True).encode()).hexdigest()


def differences(pinned: Mapping[str, str], running: Mapping[str, str]) -> list[str]:
    """The variables in which ``running`` does not run what ``pinned`` asks (``WHERE_FROM`` counts only
    while the files are not pinned by their digest)."""
    skipped = WHERE_FROM if pinned.get(FILES_SHA256) else ()
    return [
        name for name in VARIABLES if name not in skipped and running.get(name, "") != pinned.get(name, "")
    ]


def has_pins(variables: Mapping[str, str]) -> bool:
    """True when ``variables`` (a process environment, an env file) carry a deployment's pins."""
    return bool(variables.get(HUB_TAG))


def image_reference(repository: str, pinned: str, registry: str = "") -> str:
    """The container image of a bot: ``[registry/]repository`` at a tag, or ``@sha256:...`` for a digest."""
    base = f"{registry.rstrip('/')}/{repository}" if registry else repository
    return f"{base}@{pinned}" if pinned.startswith("sha256:") else f"{base}:{pinned}"


def format_env_file(variables: Mapping[str, str], header: list[str]) -> str:
    """An env file for systemd ``EnvironmentFile=`` and ``docker --env-file``: ``# header`` lines, then
    ``NAME=value`` in ``VARIABLES`` order (values never hold newlines or quotes: names, digits, hashes)."""
    lines = [f"# {line}" for line in header]
    written = [name for name in VARIABLES if name != ROLE or variables.get(name)]
    lines += [f"{name}={variables.get(name, '')}" for name in written]
    return "\n".join(lines) + "\n"


def parse_env_file(text: str, *, where: str) -> dict[str, str]:
    """The ``NAME=value`` lines of an env file (comments and blank lines skipped)."""
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.partition("=")
        if not sep or not name.strip():
            raise InputError(where, f"line {number}", f"not NAME=value: {stripped[:40]!r}")
        variables[name.strip()] = value.strip()
    return variables


def run_directory(settings: Settings, key: BotKey) -> Path:
    """The bot's private run directory on its host (``bot_run_dir``; a challenger's has ``-challenger``
    after it): its rendered Freqtrade config (with its REST API's port) and its trade database."""
    from pathlib import Path

    values = {"env": key.env, "strategy": key.strategy, "profile": key.profile}
    run_dir = Path(settings.fill(settings.bot_run_dir, "bot_run_dir", **values))
    return run_dir if key.role == PRODUCTION_ROLE else run_dir.with_name(f"{run_dir.name}-{key.role}")
