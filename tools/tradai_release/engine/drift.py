"""Live drift: a live value that differs from what the last apply left there (someone changed it by hand).

See docs/architecture.md §7. Not to be confused with PSI monitoring (``tradai_release.domain.monitor``),
which watches how the live model's inputs and predictions move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradai_release.engine.actions import plain
from tradai_release.registry.lifecycle import NONE, current_lifecycle

if TYPE_CHECKING:
    from tradai_release.engine.release_table import AppliedState
    from tradai_release.engine.state import LiveState


@dataclass(frozen=True)
class Drift:
    """A live value that differs from what the last apply left there: someone changed it by hand."""

    kind: str  # config | alias | lifecycle | stage | pointer | deployment
    target: str
    expected: Any
    actual: Any
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "expected": plain(self.expected),
            "actual": plain(self.actual),
            "detail": self.detail,
        }


def find_drift(live: LiveState) -> list[Drift]:
    """Live values that differ from what the last apply left (empty before the first apply)."""
    applied = live.applied
    if applied is None:
        return []
    drift: list[Drift] = []
    for name, digest in sorted(applied.configs.items()):
        current = live.active.get(name)
        if current is None or current.config_hash != digest:
            actual = current.config_id if current is not None else None
            drift.append(
                Drift(
                    "config",
                    name,
                    digest,
                    current.config_hash if current else None,
                    f"ACTIVE config of {name} is {actual or 'none'}, applied {digest[:12]}",
                )
            )
    for name in applied.models:
        listed = live.versions.get(name, ())
        live_aliases = {alias: info.version for info in listed for alias in info.aliases}
        for alias in sorted(applied.aliases.get(name, {})):
            moved = alias_drift(applied, name, alias, live_aliases.get(alias))
            if moved is not None:
                drift.append(moved)
        recorded = applied.lifecycle.get(name, {})
        for info in listed:
            expected = recorded.get(str(info.version), NONE)
            actual = current_lifecycle(info)
            if actual != expected:
                drift.append(
                    Drift(
                        "lifecycle",
                        f"{name}/v{info.version}",
                        expected,
                        actual,
                        f"{name} v{info.version} is {actual}, applied {expected}",
                    )
                )
            elif applied.mirror_stages and (info.stage or NONE) != expected:
                drift.append(
                    Drift(
                        "stage",
                        f"{name}/v{info.version}",
                        expected,
                        info.stage,
                        f"{name} v{info.version} has stage {info.stage}, applied {expected}",
                    )
                )
    running_by_name = {key.name: bot for key, bot in live.bots.running.items()}
    for name, (content, revision) in sorted(applied.bots.items()):
        if name not in live.bots.read:
            continue  # not a bot of the commit planned (prune is another matter)
        running = running_by_name.get(name)
        if running is None or running.retired or running.content_hash != content:
            runs = running.revision if running is not None and not running.retired else None
            detail = f"{name} runs {runs or 'nothing'}, applied {revision}"
            drift.append(Drift("deployment", name, revision, runs, detail))
    for profile in sorted(applied.pointers):
        pointer = live.pointers.get(profile)
        seen = (pointer.tag, pointer.sha256) if pointer is not None else None
        moved = pointer_drift(applied, profile, seen)
        if moved is not None:
            drift.append(moved)
    return drift


def alias_drift(applied: AppliedState, model: str, alias: str, holder: int | None) -> Drift | None:
    """The drift of ``model``'s ``alias`` now held by ``holder`` (None: by no version), or None when the
    last apply left it there or recorded nothing for it. Plan and a bot's start-up both ask this."""
    version = applied.aliases.get(model, {}).get(alias)
    if version is None or holder == version:
        return None
    where = f"v{holder}" if holder else "nothing"
    return Drift("alias", f"{model}@{alias}", version, holder,
                 f"alias {alias} of {model} points at {where}, applied v{version}")


def pointer_drift(applied: AppliedState, profile: int, seen: tuple[str, str] | None) -> Drift | None:
    """The drift of ``profile``'s hub pointer now at ``seen`` (tag, sha256; None: missing), or None when
    the last apply left it there or recorded nothing for it."""
    recorded = applied.pointers.get(profile)
    if recorded is None or seen == recorded:
        return None
    tag, sha = recorded
    shown = seen[0] if seen else "missing"
    return Drift("pointer", f"profile-{profile}", [tag, sha], list(seen) if seen else None,
                 f"profile {profile} pointer is {shown}, applied {tag}")
