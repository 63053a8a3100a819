"""The lifecycle of every model version, derived from one environment's manifest pins; pure.

See docs/architecture.md §5.

Production = pinned as ``production`` by any profile; Staging = pinned as ``staging`` and not
Production; Archived = was Production (tag ``production_entered_at`` or lifecycle Production) and no
longer pinned; None otherwise. Aliases ``p<N>`` / ``p<N>-staging`` point at each profile's pins.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tradai_release.core.clock import stamp

if TYPE_CHECKING:
    from tradai_release.registry.adapter import ModelVersionInfo

PRODUCTION = "Production"
STAGING = "Staging"
ARCHIVED = "Archived"
NONE = "None"

LIFECYCLE_TAG = "lifecycle"
ENTERED_TAG = "production_entered_at"
LEFT_TAG = "production_left_at"

# Aliases this tool manages; any other alias on a model is left alone.
MANAGED_ALIAS = re.compile(r"^p\d+(-staging)?$")


def production_alias(profile: int) -> str:
    return f"p{profile}"


def staging_alias(profile: int) -> str:
    return f"p{profile}-staging"


def alias_profile(alias: str) -> int:
    """The profile a managed alias (``p<N>`` or ``p<N>-staging``) belongs to."""
    return int(alias[1:].split("-", 1)[0])


@dataclass(frozen=True)
class ProfilePin:
    """One profile's pin of one registered model in an environment's manifest."""

    profile: int
    model_name: str
    production: int
    staging: int | None = None


@dataclass(frozen=True)
class VersionLifecycle:
    """A version's recorded lifecycle and the one the manifests ask for."""

    name: str
    version: int
    current: str
    desired: str


@dataclass(frozen=True)
class AliasChange:
    """Point ``alias`` of model ``name`` at ``version`` (None = delete the alias); ``previous`` is now."""

    name: str
    alias: str
    version: int | None
    previous: int | None


@dataclass(frozen=True)
class TagChange:
    """Write ``key=value`` on a version (value None = delete the tag)."""

    name: str
    version: int
    key: str
    value: str | None


@dataclass(frozen=True)
class StageChange:
    """Mirror the lifecycle into the legacy stage field."""

    name: str
    version: int
    current: str
    desired: str


@dataclass(frozen=True)
class DesiredLifecycle:
    """Everything the registry of one environment should look like, and the writes to get there.

    ``missing`` lists pinned (name, version) pairs the registry does not have.
    """

    versions: tuple[VersionLifecycle, ...]
    aliases: Mapping[str, Mapping[str, int]]
    alias_changes: tuple[AliasChange, ...]
    tag_changes: tuple[TagChange, ...]
    stage_changes: tuple[StageChange, ...]
    missing: tuple[tuple[str, int], ...]

    @property
    def in_sync(self) -> bool:
        return not (self.alias_changes or self.tag_changes or self.stage_changes)

    def desired(self, name: str, version: int) -> str:
        for entry in self.versions:
            if entry.name == name and entry.version == version:
                return entry.desired
        return NONE


def current_lifecycle(info: ModelVersionInfo) -> str:
    """The lifecycle recorded on a version: its ``lifecycle`` tag, else its legacy stage."""
    value = info.tags.get(LIFECYCLE_TAG) or info.stage or NONE
    return value if value in (PRODUCTION, STAGING, ARCHIVED) else NONE


def was_production(info: ModelVersionInfo) -> bool:
    return ENTERED_TAG in info.tags or current_lifecycle(info) == PRODUCTION


def derive_lifecycle(
    pins: Iterable[ProfilePin],
    history: Mapping[str, Sequence[ModelVersionInfo]],
    *,
    keep: Collection[tuple[str, int]] = frozenset(),
    now: datetime | None = None,
    mirror_stages: bool = True,
) -> DesiredLifecycle:
    """Desired lifecycle, aliases and tag writes of one environment's registry.

    ``history`` is every version of each model (``ModelRegistry.versions``). ``keep`` holds the
    (name, version) pairs whose Production stage survives being unpinned (``--no-archive``).
    ``now`` stamps ``production_entered_at`` / ``production_left_at``; pass one value per apply.
    """
    at = stamp(now)
    pin_list = sorted(pins, key=lambda pin: (pin.model_name, pin.profile))
    production = {(pin.model_name, pin.production) for pin in pin_list}
    staging = {(pin.model_name, pin.staging) for pin in pin_list if pin.staging is not None}
    keep_set = set(keep)

    aliases: dict[str, dict[str, int]] = {}
    for pin in pin_list:
        aliases.setdefault(pin.model_name, {})[production_alias(pin.profile)] = pin.production
        if pin.staging is not None:
            aliases[pin.model_name][staging_alias(pin.profile)] = pin.staging

    known = {(name, info.version) for name, listed in history.items() for info in listed}
    missing = tuple(sorted((production | staging) - known))

    versions: list[VersionLifecycle] = []
    tag_changes: list[TagChange] = []
    stage_changes: list[StageChange] = []
    alias_changes: list[AliasChange] = []
    for name in sorted(set(history) | set(aliases)):
        listed = sorted(history.get(name, ()), key=lambda info: info.version)
        for info in listed:
            key = (name, info.version)
            current = current_lifecycle(info)
            if key in production:
                desired = PRODUCTION
            elif key in staging:
                desired = STAGING
            elif current == PRODUCTION and key in keep_set:
                desired = PRODUCTION
            elif was_production(info):
                desired = ARCHIVED
            else:
                desired = NONE
            versions.append(VersionLifecycle(name, info.version, current, desired))
            tag_changes.extend(_tag_changes(info, current, desired, at))
            if mirror_stages and (info.stage or NONE) != desired:
                stage_changes.append(StageChange(name, info.version, info.stage or NONE, desired))

        live = {alias: info.version for info in listed for alias in info.aliases
                if MANAGED_ALIAS.match(alias)}
        wanted = aliases.get(name, {})
        for alias in sorted(set(live) | set(wanted)):
            target, previous = wanted.get(alias), live.get(alias)
            if target != previous and (target is None or (name, target) in known):
                alias_changes.append(AliasChange(name, alias, target, previous))

    return DesiredLifecycle(
        versions=tuple(versions),
        aliases={name: dict(sorted(mapping.items())) for name, mapping in aliases.items()},
        alias_changes=tuple(alias_changes),
        tag_changes=tuple(tag_changes),
        stage_changes=tuple(stage_changes),
        missing=missing,
    )


def _tag_changes(info: ModelVersionInfo, current: str, desired: str, at: str) -> list[TagChange]:
    changes: list[TagChange] = []
    if info.tags.get(LIFECYCLE_TAG) != desired:
        changes.append(TagChange(info.name, info.version, LIFECYCLE_TAG, desired))
    if desired == PRODUCTION and current != PRODUCTION:
        changes.append(TagChange(info.name, info.version, ENTERED_TAG, at))
        if LEFT_TAG in info.tags:  # live again: the old leave time no longer describes it
            changes.append(TagChange(info.name, info.version, LEFT_TAG, None))
    elif current == PRODUCTION and desired != PRODUCTION:
        changes.append(TagChange(info.name, info.version, LEFT_TAG, at))
    return changes
