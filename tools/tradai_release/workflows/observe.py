"""``observe``: read every bot of an environment over Freqtrade's REST API and record its live results.

For each bot the commit declares (production and challenger), one reading goes to the release-state table
with a TTL (``live#``, docs/architecture.md §18): the model version and file digest the bot says it runs,
closed trades, closed profit, drawdown, open trades, since when and its last loop. A bot that does not
answer is recorded as not answering, never as a bot that made nothing. ``progress`` decides on these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradai_release.core.clock import stamp, utc_now
from tradai_release.core.errors import InputError
from tradai_release.domain.live import LiveResult
from tradai_release.repository.bots import BotKey, run_directory

if TYPE_CHECKING:
    from tradai_release.bot.rest import BotReading
    from tradai_release.core.settings import Settings
    from tradai_release.engine.context import ReleaseContext

Reader = Callable[[str, str, str], "BotReading"]
"""``(url, username, password)`` -> a reading (tests pass their own)."""

_VERSION = re.compile(r"^(?P<model>\S+) v(?P<version>[0-9]+)(?: files (?P<files>[0-9a-f]{64}))?$")


@dataclass(frozen=True)
class ObserveReport:
    env: str
    observed_at: datetime
    results: tuple[LiveResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "observed_at": stamp(self.observed_at),
            "bots": [{"bot": r.bot, **r.to_item()} for r in self.results],
            "answered": sum(r.answered for r in self.results),
            "not_answering": [r.bot for r in self.results if not r.answered],
        }


def observe(ctx: ReleaseContext, *, now: datetime | None = None, read: Reader | None = None) -> ObserveReport:
    """Read and record every bot ``ctx``'s commit declares for its environment."""
    from tradai_release.engine.release_table import ReleaseTable

    settings = ctx.settings
    if settings.bot_api_password is None or not settings.bot_api_password.get_secret_value():
        reason = "not set: the bots' REST API password (from the secrets store) that observe reads them with"
        raise InputError("observe", "TRADAI_BOT_API_PASSWORD", reason)
    password = settings.bot_api_password.get_secret_value()
    if read is None:
        from tradai_release.bot.rest import read_bot

        read = read_bot
    moment = now or utc_now()
    table = ReleaseTable(ctx.backends.releases, ctx.env.name)
    results = []
    for spec in ctx.desired.bots:
        url, why = api_url(settings, spec.key)
        reading = read(url, settings.bot_api_username, password) if url else None
        result = live_result(spec.key, moment, reading, why)
        table.record_live(result)
        results.append(result)
    return ObserveReport(ctx.env.name, moment, tuple(results))


def api_url(settings: Settings, key: BotKey) -> tuple[str, str]:
    """Where the bot's REST API listens: ``bot_api_url`` filled in, else the port in the rendered config
    of its run directory on this host; ("", why) when neither says."""
    if settings.bot_api_url:
        service = settings.fill(settings.ecs_service, "ecs_service", env=key.env, strategy=key.strategy,
                                profile=key.profile)
        if key.challenger:
            service = f"{service}-{key.role}"
        url = settings.fill(settings.bot_api_url, "bot_api_url", env=key.env, strategy=key.strategy,
                            profile=key.profile, bot=key.name, service=service)
        return url.rstrip("/"), ""
    config = run_directory(settings, key) / "config.json"
    try:
        server = json.loads(config.read_text(encoding="utf-8")).get("api_server") or {}
        host, port = str(server["listen_ip_address"]), int(server["listen_port"])
    except FileNotFoundError:
        return "", f"no run directory on this host ({config.parent}); set TRADAI_BOT_API_URL to reach it"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return "", f"{config}: no REST API address ({type(err).__name__})"
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}", ""


def live_result(key: BotKey, moment: datetime, reading: BotReading | None, why: str = "") -> LiveResult:
    """The record of one reading (or of a bot that could not be asked: ``why``)."""
    if reading is None or not reading.answered:
        return LiveResult(env=key.env, profile=key.profile, strategy=key.strategy, role=key.role,
                          observed_at=moment, answered=False, error=reading.error if reading else why)
    match = _VERSION.match(reading.strategy_version)
    return LiveResult(
        env=key.env, profile=key.profile, strategy=key.strategy, role=key.role, observed_at=moment,
        answered=True,
        model_version=int(match.group("version")) if match else None,
        files_sha256=(match.group("files") or "") if match else "",
        trades=reading.trades, closed_profit=reading.closed_profit, max_drawdown=reading.max_drawdown,
        open_trades=reading.open_trades, since=reading.started_at, heartbeat=reading.heartbeat,
        error="" if match else f"says it runs {reading.strategy_version!r}, not a released version",
    )
