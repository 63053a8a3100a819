"""The ``env-file`` target: one ``<strategy>-p<N>.env`` per bot, for systemd ``EnvironmentFile=`` or
``docker run --env-file`` on plain hosts.

Each file is written whole to a temporary file and renamed into place, so a bot that starts while
apply writes reads the old pins or the new ones, never half of each. The content hash covers the
variables only: the comment lines (which apply wrote it) change nothing a bot sees. Retiring a bot
(prune) removes its file: a host has nothing to scale, and a unit without its pins cannot start.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.errors import DeploymentFailed, InputError
from tradai_release.repository.bots import (
    ENV,
    BotKey,
    format_env_file,
    has_pins,
    parse_bot_name,
    parse_env_file,
    variables_hash,
)
from tradai_release.targets import DeployStamp, RunningBot

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.repository.bots import BotSpec


@dataclass
class EnvFileTarget:
    """Env files under ``directory`` (one environment's)."""

    directory: Path
    name: str = "env-file"
    waits: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, env: str) -> EnvFileTarget:
        directory = Path(settings.fill(settings.bot_env_dir, "bot_env_dir", env=env))
        if not directory.is_absolute():
            directory = settings.repo / directory
        return cls(directory)

    def path(self, key: BotKey) -> Path:
        return self.directory / f"{key.name}.env"

    def definition_hash(self, spec: BotSpec) -> str:
        return variables_hash(spec.pins.variables())

    def read(
        self, keys: Sequence[BotKey], *, known: Mapping[str, str], variables: bool = False
    ) -> dict[BotKey, RunningBot]:
        found: dict[BotKey, RunningBot] = {}
        for key in keys:
            path = self.path(key)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError) as err:
                raise InputError(str(path), "(file)", f"unreadable: {err}") from None
            parsed = parse_env_file(text, where=str(path))
            digest = variables_hash(parsed)
            found[key] = RunningBot(key, digest, digest, parsed, where=str(path))
        return found

    def deploy(self, spec: BotSpec, stamp: DeployStamp) -> RunningBot:
        key = spec.key
        path = self.path(key)
        variables = spec.pins.variables()
        header = [
            f"{key}: written by tradai-release apply {stamp.deployment_id} of {stamp.commit[:12]}",
            f"trace_id {stamp.trace_id}; edit the release manifest, not this file",
        ]
        text = format_env_file(variables, header)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.directory)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(text)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(temporary, 0o644)
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as err:
            raise DeploymentFailed(str(key), f"cannot write {path}: {err}") from None
        digest = variables_hash(variables)
        return RunningBot(key, digest, digest, variables, where=str(path))

    def wait(self, keys: Sequence[BotKey]) -> None:
        """Nothing to wait for: a host's bot reads its file when it (re)starts."""
        return None

    def undeclared(self, env: str, declared: Collection[BotKey]) -> dict[BotKey, RunningBot]:
        """The ``<strategy>-p<N>[-challenger].env`` files of ``env`` that carry pins and no declared bot's
        name."""
        names = {key.name for key in declared}
        try:
            paths = sorted(self.directory.glob("*.env"))
        except OSError as err:
            raise InputError(str(self.directory), "(directory)", f"unreadable: {err}") from None
        found: dict[BotKey, RunningBot] = {}
        for path in paths:
            parsed = parse_bot_name(path.name.removesuffix(".env")) if path.name.endswith(".env") else None
            if parsed is None or path.name.removesuffix(".env") in names:
                continue
            key = BotKey(env, parsed[1], parsed[0], parsed[2])
            running = self.read([key], known={}).get(key)
            if running is None:
                continue  # removed since the listing
            variables = running.variables or {}
            if has_pins(variables) and variables.get(ENV) == env:
                found[key] = running
        return found

    def retire(self, key: BotKey, stamp: DeployStamp) -> None:
        """Remove the bot's file (already gone: nothing to do)."""
        path = self.path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            raise DeploymentFailed(str(key), f"cannot remove {path}: {err}") from None
