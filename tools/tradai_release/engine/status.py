"""Deploy status: each bot's pinned values at a commit against what its deployment target runs.

See docs/architecture.md §14. Reads only: the config registry (for config ids) and the target.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tradai_release.repository.bots import HUB_TAG, ROLE, VARIABLES, differences

if TYPE_CHECKING:
    from tradai_release.engine.context import ReleaseContext

IN_SYNC = "in sync"
DIFFERS = "differs"
NOT_DEPLOYED = "not deployed"
NO_TARGET = "no target"


@dataclass(frozen=True)
class BotStatus:
    """One bot: what git pins, what the target runs (``running`` None when nothing), and the verdict."""

    bot: str
    target: str
    pinned: dict[str, str]
    running: dict[str, str] | None
    revision: str | None
    where: str
    state: str
    differences: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "bot": self.bot,
            "target": self.target,
            "state": self.state,
            "differences": list(self.differences),
            "pinned": self.pinned,
            "running": self.running,
            "revision": self.revision,
            "where": self.where,
        }


def bot_statuses(context: ReleaseContext) -> list[BotStatus]:
    """Every bot of the context's environment at its commit: pinned values against the variables its
    target runs."""
    desired, backends = context.desired, context.backends
    target = backends.target
    active = backends.configs.active_by_strategy()
    keys = [bot.key for bot in desired.bots]
    running = target.read(keys, known={}, variables=True) if target.name != "none" else {}
    from tradai_release.engine.state import bot_files, pulled_files, resolve_challengers

    specs = desired.bots
    if target.name != "none" and any(spec.key.challenger for spec in specs):
        specs = resolve_challengers(backends.hub, backends.registry.versions(desired.model_names), specs)
    files = bot_files(backends.hub, specs) if target.name != "none" else {}
    pulled = pulled_files(backends.hub, specs, running)
    statuses = []
    for spec in specs:
        strategy, digest = spec.pins.strategy, spec.pins.config_hash
        current = active.get(strategy)
        stored = current if current is not None and current.config_hash == digest else None
        if stored is None:
            stored = backends.configs.find_by_hash(strategy, digest)
        config_id = stored.config_id if stored is not None else None
        pins = replace(spec.pins, config_id=config_id, files_sha256=files.get(spec.key, ""))
        pinned = pins.variables()
        bot = running.get(spec.key)
        changed: tuple[str, ...] = ()
        values: dict[str, str] | None = None
        if target.name == "none":
            state = NO_TARGET
        elif bot is None or bot.retired:  # a service scaled to zero runs nothing
            state = NOT_DEPLOYED
        else:
            values = {name: str((bot.variables or {}).get(name, "")) for name in VARIABLES}
            if not values[ROLE]:  # a production bot: no role written, as before challengers
                del values[ROLE]
            changed = tuple(differences(pinned, values))  # a tag alone says where from, not what runs
            if pulled.get(spec.key, pins.files_sha256) != pins.files_sha256:
                changed = (HUB_TAG, *changed)  # ... unless that tag does not hold the pinned files
            state = DIFFERS if changed else IN_SYNC
        statuses.append(
            BotStatus(
                bot=spec.key.name,
                target=target.name,
                pinned=pinned,
                running=values,
                revision=bot.revision if bot is not None else None,
                where=bot.where if bot is not None else "",
                state=state,
                differences=changed,
            )
        )
    return statuses
