"""What changed between two commits: a semantic diff of configs and pins, and the strategies and
manifests a change touches (read from git objects, nothing checked out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradai_release.core.errors import InputError
from tradai_release.repository.manifest import manifest_path
from tradai_release.repository.strategy import ml_config_path, tradai_path
from tradai_release.repository.tree import ReleaseTree, SourceTree, load_document


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
class PinDiff:
    """One changed pin of a manifest between two commits.

    ``field`` is config, model.name, model.production, model.staging, ...
    """

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
    pins: tuple[PinDiff, ...] = ()
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
    with ReleaseTree.at(repo_root, base) as base_tree, ReleaseTree.at(repo_root, head) as head_tree:
        return diff_trees(base_tree.tree, head_tree.tree)


def diff_trees(base: SourceTree, head: SourceTree) -> ReleaseDiff:
    """The semantic diff between two source trees.

    Files that do not parse on one side are reported in ``problems`` and compared as absent.
    """
    problems: list[InputError] = []
    strategies: list[StrategyChange] = []
    in_base, in_head = _strategies(base), _strategies(head)
    for name in sorted(in_base | in_head):
        changes: list[FieldChange] = []
        for path in (tradai_path(name), ml_config_path(name)):
            old = _data(base, path, problems)
            new = _data(head, path, problems)
            changes += [FieldChange(path, dotted, a, b) for dotted, a, b in compare(old, new)]
        if name not in in_base:
            strategies.append(StrategyChange(name, "added", tuple(changes)))
        elif name not in in_head:
            strategies.append(StrategyChange(name, "removed", tuple(changes)))
        elif changes:
            strategies.append(StrategyChange(name, "changed", tuple(changes)))

    manifests: list[ManifestChange] = []
    pins: list[PinDiff] = []
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
                        PinDiff(environment, profile, strategy, key, before.get(key), after.get(key))
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


def _strategies(tree: SourceTree) -> set[str]:
    return set(ReleaseTree(tree).strategy_names())


def _manifest_keys(tree: SourceTree) -> set[tuple[str, int]]:
    return set(ReleaseTree(tree).manifest_keys())


@dataclass(frozen=True)
class Changes:
    """What differs between a base commit and the tree under validation."""

    strategies: frozenset[str]
    manifests: frozenset[tuple[str, int]]

    @property
    def environments(self) -> frozenset[str]:
        """Environments with a changed manifest."""
        return frozenset(env for env, _ in self.manifests)

    def is_empty(self) -> bool:
        """True when neither strategies nor manifests changed."""
        return not self.strategies and not self.manifests


def changed_since(repo_root: Path | str, base_ref: str, head_tree: SourceTree) -> Changes:
    """Strategies and (env, profile) manifests that differ between ``base_ref`` and ``head_tree``.

    A strategy changed when its tradai.yaml, ml_config.json or data files differ (or it
    was added or removed); a manifest changed when its bytes differ (or it was added or removed).
    """
    with ReleaseTree.at(repo_root, base_ref) as base:
        strategies = {
            name
            for name in _strategies(base.tree) | _strategies(head_tree)
            if _strategy_files(base.tree, name) != _strategy_files(head_tree, name)
        }
        manifests = {
            key
            for key in _manifest_keys(base.tree) | _manifest_keys(head_tree)
            if _read(base.tree, manifest_path(*key)) != _read(head_tree, manifest_path(*key))
        }
    return Changes(strategies=frozenset(strategies), manifests=frozenset(manifests))


def _read(tree: SourceTree, path: str) -> bytes | None:
    try:
        return tree.read_bytes(path)
    except InputError:
        return None


def _strategy_files(tree: SourceTree, name: str) -> dict[str, bytes | None]:
    """The bytes of everything that decides a strategy: tradai.yaml, ml_config.json, its data sets."""
    paths = [tradai_path(name), ml_config_path(name), *ReleaseTree(tree).data_sets(name)]
    return {path: _read(tree, path) for path in paths}
