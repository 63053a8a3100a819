"""The hub's only mutable objects: ``latest`` and the revision apply approved for each profile.

A pointer names a tag and the SHA-256 of its manifest, so a reader can refuse a tag that changed.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from tradai_release.core.confighash import canonical_json
from tradai_release.core.errors import HubIntegrityError, InputError, ObjectNotFound, TagNotFound
from tradai_release.hub.names import LATEST_KEY, check_sha256, check_tag, profile_pointer_key

if TYPE_CHECKING:
    from tradai_release.stores import ObjectStore


@dataclass(frozen=True)
class Pointer:
    """``pointers/latest.json``: the most recent push."""

    tag: str
    sha256: str
    updated_at: str


@dataclass(frozen=True)
class ProfilePointer:
    """``pointers/<env>/profile-<N>.json``: the revision apply approved for one profile."""

    env: str
    profile: int
    tag: str
    sha256: str
    updated_at: str
    deployment_id: str | None


@dataclass(frozen=True)
class Pinned:
    """A tag a pointer names, the manifest hash it must have, who pins it (``latest``, ``prod profile 3``)."""

    tag: str
    sha256: str
    by: tuple[str, ...]


def write_latest(store: ObjectStore, pointer: Pointer) -> None:
    store.put(LATEST_KEY, canonical_json(asdict(pointer)))


def read_latest(store: ObjectStore) -> Pointer | None:
    raw = _read(store, LATEST_KEY)
    if raw is None:
        return None
    return Pointer(*_target(raw, f"{store.name}: {LATEST_KEY}"))


def write_profile_pointer(store: ObjectStore, pointer: ProfilePointer) -> None:
    body = {
        "tag": pointer.tag,
        "sha256": pointer.sha256,
        "updated_at": pointer.updated_at,
        "deployment_id": pointer.deployment_id,
    }
    store.put(profile_pointer_key(pointer.env, pointer.profile), canonical_json(body))


def read_profile_pointer(store: ObjectStore, env: str, profile: int) -> ProfilePointer | None:
    key = profile_pointer_key(env, profile)
    raw = _read(store, key)
    if raw is None:
        return None
    tag, sha256, updated_at = _target(raw, f"{store.name}: {key}")
    deployment = raw.get("deployment_id")
    return ProfilePointer(
        env=env,
        profile=profile,
        tag=tag,
        sha256=sha256,
        updated_at=updated_at,
        deployment_id=None if deployment is None else str(deployment),
    )


def delete_profile_pointer(store: ObjectStore, env: str, profile: int) -> None:
    """Remove a profile's pointer (absent already: nothing to do)."""
    store.delete(profile_pointer_key(env, profile))


def pointer_profiles(store: ObjectStore, env: str) -> list[int]:
    """The profiles of ``env`` that have a pointer: one listing, nothing read."""
    found = []
    for info in store.list(f"pointers/{env}/"):
        match = _PROFILE_POINTER.fullmatch(info.key)
        if match is not None and match.group(1) == env:
            found.append(int(match.group(2)))
    return sorted(found)


_PROFILE_POINTER = re.compile(r"pointers/([a-z][a-z0-9-]{0,31})/profile-([1-9][0-9]*)\.json")


def profile_pointers(store: ObjectStore) -> list[ProfilePointer]:
    """Every profile pointer of every environment, by environment and profile (one listing, one read each)."""
    found = []
    for info in store.list("pointers/"):
        match = _PROFILE_POINTER.fullmatch(info.key)
        if match is None:
            continue
        pointer = read_profile_pointer(store, match.group(1), int(match.group(2)))
        if pointer is not None:  # deleted since the listing
            found.append(pointer)
    return sorted(found, key=lambda p: (p.env, p.profile))


def pinned(store: ObjectStore) -> list[Pinned]:
    """Every tag ``latest`` or a profile pointer names, with the manifest hash it pins and who pins it."""
    found: dict[tuple[str, str], list[str]] = {}
    latest = read_latest(store)
    if latest is not None:
        found.setdefault((latest.tag, latest.sha256), []).append("latest")
    for pointer in profile_pointers(store):
        where = f"{pointer.env} profile {pointer.profile}"
        found.setdefault((pointer.tag, pointer.sha256), []).append(where)
    return [Pinned(tag, sha, tuple(by)) for (tag, sha), by in sorted(found.items())]


def require_latest(store: ObjectStore) -> Pointer:
    """``latest``, which must exist."""
    pointer = read_latest(store)
    if pointer is None:
        raise TagNotFound(f"{store.name}: latest", "nothing pushed yet (no latest pointer)")
    return pointer


def resolve(
    store: ObjectStore,
    *,
    tag: str | None,
    env: str | None,
    profile: int | None,
    expected_sha256: str | None,
) -> tuple[str, str | None]:
    """The tag a pull means and the manifest hash it must have: a profile's pointer, a tag, or latest."""
    if profile is not None:
        if tag is not None:
            raise InputError("--pull", "revision", "give either a revision or a profile, not both")
        if env is None:
            raise InputError("--pull", "env", "a profile pointer needs an environment")
        where = f"{store.name}: {env} profile {profile}"
        pointer = read_profile_pointer(store, env, profile)
        if pointer is None:
            raise TagNotFound(where, "no approved revision recorded")
        _expect(pointer.sha256, expected_sha256, where)
        return pointer.tag, pointer.sha256
    if tag is None:
        latest = require_latest(store)
        _expect(latest.sha256, expected_sha256, f"{store.name}: latest")
        return latest.tag, latest.sha256
    return check_tag(tag, where="--revision"), expected_sha256


def _expect(sha256: str, expected: str | None, where: str) -> None:
    if expected is not None and expected != sha256:
        raise HubIntegrityError(where, f"pointer has sha256 {sha256}, expected {expected}")


def _read(store: ObjectStore, key: str) -> dict[str, Any] | None:
    try:
        data = store.get(key)
    except ObjectNotFound:
        return None
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raw = None
    if not isinstance(raw, dict):
        raise InputError(f"{store.name}: {key}", "pointer", "not a JSON object")
    return raw


def _target(raw: dict[str, Any], where: str) -> tuple[str, str, str]:
    """The tag, manifest SHA-256 and update time every pointer holds, checked."""
    return (
        check_tag(raw.get("tag"), where=where),  # type: ignore[arg-type]
        check_sha256(raw.get("sha256"), where=where),
        str(raw.get("updated_at", "")),
    )
