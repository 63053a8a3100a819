"""Terminal output of ``invoke upload``, ``invoke strategy.list`` and ``invoke provision``."""

from __future__ import annotations

from collections.abc import Sequence

from tradai_release.configs.entities import ConfigVersion
from tradai_release.configs.strategies import StrategyListing
from tradai_release.render import console, short, titled_table


def render_upload(version: ConfigVersion, env: str) -> None:
    """``<config_id>`` and whether it was created or already there ("unchanged")."""
    out = console()
    if version.duplicate:
        out.print(
            f"{version.strategy_name}: {version.config_id} unchanged in {env} "
            f"(already stored, status {version.status.value})"
        )
    else:
        out.print(f"{version.strategy_name}: {version.config_id} created in {env} as DRAFT")


def render_strategy_list(env: str, listings: Sequence[StrategyListing]) -> None:
    """One row per strategy: version, working-tree hash, ACTIVE config_id in ``env``, number of versions."""

    out = console()
    if not listings:
        out.print(f"no strategies under strategies/ and none in the {env} registry")
        return
    columns = ("strategy", "version", "config hash", "active config", "versions", "in sync")
    table = titled_table(f"strategies ({env})", columns, right={"versions"})
    for item in listings:
        if item.problem:
            sync = "invalid tradai.yaml"
        elif not item.in_repo:
            sync = "not in repo"
        elif item.active_config_id is None:
            sync = "no active"
        else:
            sync = "yes" if item.in_sync else "no"
        table.add_row(
            item.name,
            short(item.version),
            short(item.config_hash, 12),
            short(item.active_config_id),
            str(item.versions),
            sync,
        )
    out.print(table)
    for item in listings:
        if item.problem:
            out.print(f"{item.name}: {item.problem}")


def render_provisioned(env: str, created: Sequence[str], existing: Sequence[str]) -> None:
    """What ``invoke provision`` created and what was already there."""
    out = console()
    for name in created:
        out.print(f"{env}: created {name}")
    for name in existing:
        out.print(f"{env}: {name} already exists")
    if not created and not existing:
        out.print(f"{env}: nothing to provision (embedded backends are created on first use)")
