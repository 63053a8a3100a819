"""Terminal output of ``invoke deploy-status``: each bot's pins against what its target runs."""

from __future__ import annotations

from collections.abc import Sequence

from tradai_release.engine.status import BotStatus
from tradai_release.render import console, short, titled_table


def render_bot_statuses(env: str, statuses: Sequence[BotStatus]) -> None:
    """One row per bot: pinned model, tag and config, what runs, and the verdict (text, not only colour)."""
    out = console()
    if not statuses:
        out.print(f"{env}: no bots (no manifest pins a strategy)")
        return
    target = statuses[0].target
    table = titled_table(
        f"bots ({env}, target {target})", ("bot", "pinned", "running", "state", "differs in")
    )
    for status in statuses:
        pinned = _brief(status.pinned)
        running = _brief(status.running) if status.running is not None else "-"
        colour = {"in sync": "green", "differs": "red", "not deployed": "yellow"}.get(status.state, "")
        state = f"[{colour}]{status.state}[/{colour}]" if colour else status.state
        differs = ", ".join(name.removeprefix("TRADAI_").lower() for name in status.differences)
        table.add_row(status.bot, pinned, running, state, differs or "-")
    out.print(table)


def _brief(values: dict[str, str] | None) -> str:
    if not values:
        return "-"
    return (
        f"{values.get('TRADAI_MODEL_NAME')} v{values.get('TRADAI_MODEL_VERSION')} "
        f"{values.get('TRADAI_HUB_TAG')} {short(values.get('TRADAI_CONFIG_ID') or '-')}"
    )
