"""After the start-up check: Freqtrade's config rendered from the release, a private run directory, the exec.

``python -m tradai_release.runtime ... --exec freqtrade trade`` ends here (docs/architecture.md §17).
Everything that can be wrong is found before Freqtrade starts, because Freqtrade itself exits 0 on a
configuration error: the strategy code the entry point names, the rendered config (Freqtrade's own
schema and consistency checks with the strategy loaded, and the strict unknown-key check), and the
exchange keys of a bot that trades live. Then the process becomes Freqtrade, so a container's entry
point is one command and the orchestrator's signals reach Freqtrade directly.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.errors import InputError
from tradai_release.repository.bots import PRODUCTION_ROLE, BotKey, run_directory
from tradai_release.repository.strategy import EntryPoint

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.runtime.ready import Ready

CONFIG_FILE = "config.json"
SUPPORTED = ("freqtrade", "trade")
# Flags the runtime sets itself; a pass-through copy would point Freqtrade at something unchecked.
OWN_FLAGS = (
    "-c", "--config", "-s", "--strategy", "--strategy-path", "--db-url", "--userdir", "--user-data-dir"
)


@dataclass(frozen=True)
class Launch:
    """What the runtime execs: the program, its arguments, and the files it wrote for it."""

    argv: tuple[str, ...]
    run_dir: Path
    config_path: Path
    db_path: Path
    dry_run: bool
    api_url: str = ""  # where the bot's REST API listens
    # Set in Freqtrade's environment, never written: the REST API's JWT secret (a new one each start).
    environment: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "argv": list(self.argv),
            "run_dir": str(self.run_dir),
            "config": str(self.config_path),
            "trades_db": str(self.db_path),
            "dry_run": self.dry_run,
            "api_url": self.api_url,
        }


def prepare(
    settings: Settings,
    ready: Ready,
    command: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    strategy_path: Path | None = None,
) -> Launch:
    """Render and check Freqtrade's config for the bot ``ready`` describes and write it to the run directory.

    ``command`` is what followed ``--exec`` (``freqtrade trade [extra flags]``). ``strategy_path`` is
    the directory of the entry point's module (default: under the release repository at
    ``settings.repo``). Nothing is written unless every check passes.
    """
    from tradai_release.bot.config import (
        API_PASSWORD_VARIABLE,
        KEY_VARIABLE,
        SECRET_VARIABLE,
        ApiServer,
        BotRun,
        check_config,
        render_config,
    )

    environ = os.environ if environ is None else environ
    extra = _check_command(command)
    config = ready.config
    entry = EntryPoint.parse(ready.strategy, config.strategy.entry_point)
    class_name = entry.class_name
    code_dir = strategy_path or settings.repo / entry.directory
    code_file = code_dir / entry.file.rsplit("/", 1)[-1]
    if not code_file.is_file():
        raise InputError(
            "start-up",
            "strategy.entry_point",
            f"{config.strategy.entry_point}: no module file {code_file} "
            "(set TRADAI_REPO to the release repository, or pass --strategy-path)",
        )
    challenger = ready.role != PRODUCTION_ROLE
    dry_run = challenger or not settings.live_trading_of(ready.env)  # a challenger never trades live
    if not dry_run:
        for variable in (KEY_VARIABLE, SECRET_VARIABLE):
            if not environ.get(variable, "").strip():
                raise InputError(
                    "start-up",
                    variable,
                    f"{ready.env} trades live and the exchange key is missing (set it from the secrets "
                    "store)",
                )
    if not environ.get(API_PASSWORD_VARIABLE, "").strip():
        reason = "the bot's REST API needs a password (set it from the secrets store; observe reads the bot)"
        raise InputError("start-up", API_PASSWORD_VARIABLE, reason)
    port = settings.bot_api_port or free_port(settings.bot_api_listen)
    profile = ready.profile if ready.profile is not None else 0
    # A challenger's has its own trade database and config, beside the champion's.
    run_dir = run_directory(settings, BotKey(ready.env, profile, ready.strategy, ready.role))
    db_path = run_dir / f"trades-{'dry' if dry_run else 'live'}.sqlite"
    run = BotRun(
        strategy=ready.strategy,
        class_name=class_name,
        symbols=config.service.symbols,
        timeframe=config.strategy.timeframe,
        stake_amount=config.service.stake_amount,
        max_open_trades=config.service.max_open_trades,
        models_dir=ready.models_dir / ready.strategy,
        entry_tag=entry_tag(ready),
        dry_run=dry_run,
        db_url=f"sqlite:///{db_path}",
        bot_name=f"{ready.strategy}-p{profile}{'-' + ready.role if challenger else ''}-{ready.env}",
        where=f"runtime config of {ready.strategy} in {ready.env}",
        exchange_url=settings.exchange_api_url,
        files_sha256=ready.files_sha256 or "",
        api=ApiServer(settings.bot_api_listen, port, settings.bot_api_username),
    )
    rendered = render_config(run)
    config_path = run_dir / CONFIG_FILE
    # Checked as Freqtrade will see it: with the REST API's password and JWT secret from its environment.
    secret = {"password": "(from the environment)", "jwt_secret_key": "(the runtime's: 64 hex characters)"}
    seen = {**rendered, "api_server": {**rendered["api_server"], **secret}}
    check_config(seen, where=str(config_path), strategy_path=code_dir)
    _write_private(run_dir, config_path, rendered)
    argv = (
        sys.executable,
        "-m",
        "freqtrade",
        "trade",
        "--config",
        str(config_path),
        "--strategy",
        class_name,
        "--strategy-path",
        str(code_dir),
        "--userdir",
        str(run_dir),
        *extra,
    )
    host = settings.bot_api_listen if settings.bot_api_listen not in ("0.0.0.0", "::") else "127.0.0.1"
    jwt = {"FREQTRADE__API_SERVER__JWT_SECRET_KEY": secrets.token_hex(32)}
    return Launch(argv=argv, run_dir=run_dir, config_path=config_path, db_path=db_path, dry_run=dry_run,
                  api_url=f"http://{host}:{port}", environment=jwt)


def free_port(host: str) -> int:
    """A port nothing listens on at ``host`` now (the bot binds it a moment later)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def entry_tag(ready: Ready) -> str:
    """What every entry of the bot is tagged with: the model version it trades (``PascalStrategy v2``)."""
    if ready.model_name and ready.model_version is not None:
        return f"{ready.model_name} v{ready.model_version}"
    return f"{ready.strategy} {ready.hub_tag or 'unpinned'}"


def _check_command(command: Sequence[str]) -> list[str]:
    if tuple(command[:2]) != SUPPORTED:
        shown = " ".join(command) or "nothing"
        raise InputError("start-up", "--exec", f"runs `freqtrade trade [flags]`, not {shown}")
    extra = list(command[2:])
    for flag in extra:
        if flag.split("=", 1)[0] in OWN_FLAGS:
            raise InputError("start-up", "--exec", f"{flag.split('=', 1)[0]} is set by the runtime")
    return extra


def _write_private(run_dir: Path, config_path: Path, config: Mapping[str, object]) -> None:
    """The run directory only its owner reads; the config written whole (a temporary file renamed)."""
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    run_dir.chmod(0o700)
    fd, temporary = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, config_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def exec_freqtrade(launch: Launch) -> None:
    """Become Freqtrade (never returns)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(launch.argv[0], list(launch.argv), {**os.environ, **launch.environment})
