"""Semantic diff of strategy configs and release pins between two commits, read from git objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradai_release.errors import InputError
from tradai_release.manifest import RELEASES_DIR, manifest_path, parse_manifest_name
from tradai_release.repo import GitTree, SourceTree, load_document
from tradai_release.strategy import STRATEGIES_DIR, ml_config_path, tradai_path


@dataclass(frozen=True)
class FieldChange:
    """One changed field of a strategy file, as a dotted path (None = absent on that side)."""

    file: str
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class StrategyChange:
    """A strategy that was added, removed or changed between the two commits."""

    name: str
    kind: str  # "added" | "removed" | "changed"
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class PinChange:
    """One changed pin of a manifest: ``field`` is config, model.name, model.production, model.staging, ..."""

    environment: str
    profile: int
    strategy: str
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ManifestChange:
    """A manifest that was added, removed or changed; ``fields`` are its non-pin fields (artifacts, ...)."""

    environment: str
    profile: int
    kind: str  # "added" | "removed" | "changed"
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class ReleaseDiff:
    """Everything that differs between ``base`` and ``head`` in strategies/ and releases/."""

    base: str
    head: str
    strategies: tuple[StrategyChange, ...] = ()
    manifests: tuple[ManifestChange, ...] = ()
    pins: tuple[PinChange, ...] = ()
    problems: tuple[InputError, ...] = field(default=())

    def is_empty(self) -> bool:
        """True when nothing in strategies/ or releases/ changed meaningfully."""
        return not (self.strategies or self.manifests or self.pins)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (the ``--json`` output of ``invoke diff``)."""
        return {
            "base": self.base,
            "head": self.head,
            "strategies": [
                {
                    "name": change.name,
                    "kind": change.kind,
                    "fields": [_field_dict(item) for item in change.fields],
                }
                for change in self.strategies
            ],
            "manifests": [
                {
                    "environment": change.environment,
                    "profile": change.profile,
                    "kind": change.kind,
                    "fields": [_field_dict(item) for item in change.fields],
                }
                for change in self.manifests
            ],
            "pins": [
                {
                    "environment": pin.environment,
                    "profile": pin.profile,
                    "strategy": pin.strategy,
                    "field": pin.field,
                    "old": pin.old,
                    "new": pin.new,
                }
                for pin in self.pins
            ],
            "problems": [str(problem) for problem in self.problems],
        }


def _field_dict(change: FieldChange) -> dict[str, Any]:
    return {"file": change.file, "field": change.field, "old": change.old, "new": change.new}


def diff_refs(repo_root: Path | str, base: str, head: str = "HEAD") -> ReleaseDiff:
    """The semantic diff between two commits of the repository at ``repo_root`` (no checkout)."""
    with GitTree(repo_root, base) as base_tree, GitTree(repo_root, head) as head_tree:
        return diff_trees(base_tree, head_tree)


def diff_trees(base: SourceTree, head: SourceTree) -> ReleaseDiff:
    """The semantic diff between two source trees.

    Files that do not parse on one side are reported in ``problems`` and compared as absent.
    """
    problems: list[InputError] = []
    strategies: list[StrategyChange] = []
    for name in sorted(_dirs(base, STRATEGIES_DIR) | _dirs(head, STRATEGIES_DIR)):
        in_base = base.is_dir(f"{STRATEGIES_DIR}/{name}")
        in_head = head.is_dir(f"{STRATEGIES_DIR}/{name}")
        changes: list[FieldChange] = []
        for path in (tradai_path(name), ml_config_path(name)):
            old = _data(base, path, problems)
            new = _data(head, path, problems)
            changes += [FieldChange(path, dotted, a, b) for dotted, a, b in compare(old, new)]
        if not in_base:
            strategies.append(StrategyChange(name, "added", tuple(changes)))
        elif not in_head:
            strategies.append(StrategyChange(name, "removed", tuple(changes)))
        elif changes:
            strategies.append(StrategyChange(name, "changed", tuple(changes)))

    manifests: list[ManifestChange] = []
    pins: list[PinChange] = []
    for environment, profile in sorted(_manifest_keys(base) | _manifest_keys(head)):
        path = manifest_path(environment, profile)
        old = _data(base, path, problems)
        new = _data(head, path, problems)
        old_pins = old.pop("strategies", None) if isinstance(old, dict) else None
        new_pins = new.pop("strategies", None) if isinstance(new, dict) else None
        fields = [FieldChange(path, dotted, a, b) for dotted, a, b in compare(old, new)]
        for strategy in _ordered_keys(old_pins, new_pins):
            before = _pin_fields(old_pins, strategy)
            after = _pin_fields(new_pins, strategy)
            for key in _ordered_keys(before, after):
                if before.get(key) != after.get(key):
                    pins.append(
                        PinChange(environment, profile, strategy, key, before.get(key), after.get(key))
                    )
        if old is None and new is not None:
            manifests.append(ManifestChange(environment, profile, "added", tuple(fields)))
        elif new is None and old is not None:
            manifests.append(ManifestChange(environment, profile, "removed", tuple(fields)))
        elif fields or any(pin.environment == environment and pin.profile == profile for pin in pins):
            manifests.append(ManifestChange(environment, profile, "changed", tuple(fields)))
    return ReleaseDiff(
        base=base.label,
        head=head.label,
        strategies=tuple(strategies),
        manifests=tuple(manifests),
        pins=tuple(pins),
        problems=tuple(problems),
    )


def compare(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Leaf differences of two parsed documents as ``(dotted path, old, new)``; lists compare whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in _ordered_keys(old, new):
            child = f"{path}.{key}" if path else str(key)
            if key not in old:
                out += [(dotted, None, value) for dotted, value in _leaves(new[key], child)]
            elif key not in new:
                out += [(dotted, value, None) for dotted, value in _leaves(old[key], child)]
            else:
                out += compare(old[key], new[key], child)
        return out
    if old is None and isinstance(new, dict):
        return [(dotted, None, value) for dotted, value in _leaves(new, path)]
    if new is None and isinstance(old, dict):
        return [(dotted, value, None) for dotted, value in _leaves(old, path)]
    if old != new or type(old) is not type(new):
        return [(path or "(root)", old, new)]
    return []


def _leaves(data: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(data, dict) and data:
        out: list[tuple[str, Any]] = []
        for key, value in data.items():
            out += _leaves(value, f"{path}.{key}" if path else str(key))
        return out
    return [(path or "(root)", data)]


def _ordered_keys(old: Any, new: Any) -> list[str]:
    keys = list(old) if isinstance(old, dict) else []
    keys += [key for key in (new if isinstance(new, dict) else ()) if key not in keys]
    return keys


def _pin_fields(pins: Any, strategy: str) -> dict[str, Any]:
    """A pin flattened to ``config``, ``model.name`` (defaulted), ``model.production``, ... ."""
    if not isinstance(pins, dict) or not isinstance(pins.get(strategy), dict):
        return {}
    flat = dict(_leaves(pins[strategy], ""))
    flat.setdefault("model.name", strategy)
    return flat


def _data(tree: SourceTree, path: str, problems: list[InputError]) -> Any:
    if not tree.exists(path):
        return None
    try:
        return load_document(tree, path).data
    except InputError as err:
        problems.append(err)
        return None


def _dirs(tree: SourceTree, path: str) -> set[str]:
    return {name for name in tree.listdir(path) if tree.is_dir(f"{path}/{name}")}


def _manifest_keys(tree: SourceTree) -> set[tuple[str, int]]:
    keys = set()
    for environment in tree.listdir(RELEASES_DIR):
        for file_name in tree.listdir(f"{RELEASES_DIR}/{environment}"):
            profile = parse_manifest_name(file_name)
            if profile is not None:
                keys.add((environment, profile))
    return keys
