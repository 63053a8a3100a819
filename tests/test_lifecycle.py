"""Lifecycle derivation (docs/architecture.md §5): pins + registry history -> stages, aliases, tag writes."""

from __future__ import annotations

from datetime import UTC, datetime

from fake_registry import FakeRegistry
from registry_helpers import apply
from tradai_release.registry.adapter import ModelVersionInfo
from tradai_release.registry.lifecycle import (
    ARCHIVED,
    ENTERED_TAG,
    LEFT_TAG,
    LIFECYCLE_TAG,
    NONE,
    PRODUCTION,
    STAGING,
    AliasChange,
    DesiredLifecycle,
    ProfilePin,
    TagChange,
    derive_lifecycle,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
STAMP = "2026-01-02T03:04:05+00:00"


def converge(registry: FakeRegistry, pins: list[ProfilePin], **kwargs: object) -> DesiredLifecycle:
    desired = derive_lifecycle(pins, registry.versions(["m"]), now=NOW, **kwargs)  # type: ignore[arg-type]
    apply(registry, desired)
    again = derive_lifecycle(pins, registry.versions(["m"]), now=NOW, **kwargs)  # type: ignore[arg-type]
    assert again.in_sync, again
    return desired


def stages(registry: FakeRegistry) -> dict[int, str]:
    return {info.version: info.lifecycle for info in registry.versions(["m"])["m"]}


def registry_with(count: int) -> FakeRegistry:
    registry = FakeRegistry()
    for _ in range(count):
        registry.add_version("m", tags={LIFECYCLE_TAG: NONE})
    return registry


def test_first_pin_makes_production_with_alias_and_entered_tag() -> None:
    registry = registry_with(2)
    desired = converge(registry, [ProfilePin(1, "m", 2)])
    assert stages(registry) == {1: NONE, 2: PRODUCTION}
    assert TagChange("m", 2, ENTERED_TAG, STAMP) in desired.tag_changes
    assert desired.alias_changes == (AliasChange("m", "p1", 2, None),)
    assert registry.get_version("m", 2).aliases == ("p1",)
    assert registry.get_version("m", 2).stage == PRODUCTION


def test_promote_7_to_8_archives_7() -> None:
    registry = registry_with(8)
    converge(registry, [ProfilePin(1, "m", 7)])
    desired = converge(registry, [ProfilePin(1, "m", 8)])
    assert stages(registry)[7] == ARCHIVED
    assert stages(registry)[8] == PRODUCTION
    assert TagChange("m", 7, LEFT_TAG, STAMP) in desired.tag_changes
    assert AliasChange("m", "p1", 8, 7) in desired.alias_changes
    assert registry.get_version("m", 7).aliases == ()
    assert registry.get_version("m", 7).tags[ENTERED_TAG] == STAMP  # history survives


def test_two_profiles_pinning_different_versions_are_both_production() -> None:
    registry = registry_with(3)
    converge(registry, [ProfilePin(1, "m", 2), ProfilePin(2, "m", 3)])
    assert stages(registry) == {1: NONE, 2: PRODUCTION, 3: PRODUCTION}
    assert registry.get_version("m", 2).aliases == ("p1",)
    assert registry.get_version("m", 3).aliases == ("p2",)


def test_rollback_8_to_7_makes_7_production_and_8_archived() -> None:
    registry = registry_with(8)
    converge(registry, [ProfilePin(1, "m", 7)])
    converge(registry, [ProfilePin(1, "m", 8)])
    desired = converge(registry, [ProfilePin(1, "m", 7)])
    assert stages(registry)[7] == PRODUCTION
    assert stages(registry)[8] == ARCHIVED
    assert TagChange("m", 7, LEFT_TAG, None) in desired.tag_changes  # live again
    assert LEFT_TAG not in registry.get_version("m", 7).tags
    assert registry.get_version("m", 8).tags[LEFT_TAG] == STAMP


def test_staging_pin_and_staging_of_a_production_version() -> None:
    registry = registry_with(4)
    converge(registry, [ProfilePin(1, "m", 3, staging=4)])
    assert stages(registry) == {1: NONE, 2: NONE, 3: PRODUCTION, 4: STAGING}
    assert registry.get_version("m", 4).aliases == ("p1-staging",)
    # the same version staged by one profile and production in another is Production
    converge(registry, [ProfilePin(1, "m", 3, staging=4), ProfilePin(2, "m", 4)])
    assert stages(registry)[4] == PRODUCTION
    assert registry.get_version("m", 4).aliases == ("p1-staging", "p2")


def test_unpinned_staging_returns_to_none_not_archived() -> None:
    registry = registry_with(4)
    converge(registry, [ProfilePin(1, "m", 3, staging=4)])
    desired = converge(registry, [ProfilePin(1, "m", 3)])
    assert stages(registry)[4] == NONE
    assert AliasChange("m", "p1-staging", None, 4) in desired.alias_changes


def test_no_archive_keeps_previous_production() -> None:
    registry = registry_with(8)
    converge(registry, [ProfilePin(1, "m", 7)])
    converge(registry, [ProfilePin(1, "m", 8)], keep={("m", 7)})
    assert stages(registry)[7] == PRODUCTION
    assert stages(registry)[8] == PRODUCTION
    assert registry.get_version("m", 7).aliases == ()  # aliases follow pins only
    # without the keep set the next apply archives it
    converge(registry, [ProfilePin(1, "m", 8)])
    assert stages(registry)[7] == ARCHIVED


def test_keep_does_not_revive_an_archived_version() -> None:
    registry = registry_with(3)
    converge(registry, [ProfilePin(1, "m", 1)])
    converge(registry, [ProfilePin(1, "m", 2)])
    converge(registry, [ProfilePin(1, "m", 3)], keep={("m", 1)})
    assert stages(registry) == {1: ARCHIVED, 2: ARCHIVED, 3: PRODUCTION}


def test_missing_pinned_version_is_reported_and_gets_no_alias() -> None:
    registry = registry_with(1)
    desired = derive_lifecycle([ProfilePin(1, "m", 5)], registry.versions(["m"]), now=NOW)
    assert desired.missing == (("m", 5),)
    assert desired.alias_changes == ()


def test_foreign_aliases_are_left_alone_and_stale_managed_ones_removed() -> None:
    info = ModelVersionInfo("m", 1, "READY", tags={LIFECYCLE_TAG: NONE}, aliases=("champion", "p3"))
    desired = derive_lifecycle([], {"m": [info]}, now=NOW)
    assert desired.alias_changes == (AliasChange("m", "p3", None, 1),)


def test_legacy_stage_only_history_counts_as_production() -> None:
    info = ModelVersionInfo("m", 1, "READY", stage=PRODUCTION)
    desired = derive_lifecycle([], {"m": [info]}, now=NOW)
    assert desired.desired("m", 1) == ARCHIVED
    assert TagChange("m", 1, LEFT_TAG, STAMP) in desired.tag_changes


def test_stage_mirroring_can_be_switched_off() -> None:
    registry = registry_with(1)
    pins = [ProfilePin(1, "m", 1)]
    desired = derive_lifecycle(pins, registry.versions(["m"]), now=NOW, mirror_stages=False)
    assert desired.stage_changes == ()
    assert not desired.in_sync
