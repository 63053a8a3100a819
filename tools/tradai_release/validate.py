"""Offline validation of the release repository: every §3/§4 rule that needs no backend."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.errors import InputError, TradaiError
from tradai_release.manifest import RELEASES_DIR, manifest_path, parse_manifest_name
from tradai_release.repo import ReleaseRepo, SourceTree, WorkTree, load_release_repo, tracked_files
from tradai_release.strategy import STRATEGIES_DIR, ml_config_path, tradai_path
from tradai_release.yamlio import Document, load_yaml

if TYPE_CHECKING:
    from tradai_release.manifest_edit import PinUpdate
    from tradai_release.settings import Settings

MODEL_BINARY_PATTERNS: tuple[str, ...] = ("*.pkl", "*.onnx", "*_xgb.json", "*_lgb.txt", "*.joblib")
"""Model binaries live in the model hub (§6); any of these tracked in git is an error."""


def validate_offline(tree: SourceTree, repo: ReleaseRepo | None = None) -> list[InputError]:
    """Every offline problem of ``tree``: loading, cross-file rules and tracked binaries, in file order.

    Pass ``repo`` when the caller already loaded ``tree`` to avoid reading it twice.
    """
    loaded = repo if repo is not None else load_release_repo(tree)
    problems = list(loaded.problems)
    problems += check_pins(tree, loaded)
    problems += check_binaries(tracked_files(tree))
    return problems


def check_pins(tree: SourceTree, repo: ReleaseRepo) -> list[InputError]:
    """Cross-file rules of §4: strategy exists, config equals its hash, one hash per env and strategy."""
    problems: list[InputError] = []
    for manifest in repo.manifests.values():
        document: Document | None = None
        for name, pin in manifest.strategies.items():
            if name not in repo.strategy_names:
                document = document or _manifest_document(tree, manifest.path)
                problems.append(
                    document.error(
                        ["strategies", name],
                        f"strategy {name!r} does not exist (no {STRATEGIES_DIR}/{name}/)",
                    )
                )
                continue
            current = repo.config_hashes.get(name)
            if current is not None and pin.config != current:
                document = document or _manifest_document(tree, manifest.path)
                problems.append(
                    document.error(
                        ["strategies", name, "config"],
                        f"stale config hash {pin.config[:12]}…: {tradai_path(name)} hashes to "
                        f"{current[:12]}… "
                        "(run `invoke hash --write`)",
                    )
                )

    for environment in sorted({env for env, _ in repo.manifests}):
        first: dict[str, tuple[int, str]] = {}
        for manifest in repo.manifests_of(environment):
            for name, pin in manifest.strategies.items():
                seen = first.setdefault(name, (manifest.profile, pin.config))
                if seen[1] != pin.config:
                    document = _manifest_document(tree, manifest.path)
                    problems.append(
                        document.error(
                            ["strategies", name, "config"],
                            f"pins config {pin.config[:12]}… but profile-{seen[0]}.yaml of {environment} "
                            f"pins "
                            f"{seen[1][:12]}… (one ACTIVE config per strategy and environment)",
                        )
                    )
    return problems


def check_binaries(paths: list[str]) -> list[InputError]:
    """One problem per tracked file that looks like a model binary."""
    problems = []
    for path in paths:
        name = posixpath.basename(path)
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in MODEL_BINARY_PATTERNS):
            problems.append(
                InputError(
                    path,
                    "(file)",
                    "model binary tracked in git: push it to the model hub and `git rm --cached` it",
                )
            )
    return problems


def _manifest_document(tree: SourceTree, path: str) -> Document:
    # Only read again to find line numbers; the file parsed once already, so this cannot fail.
    return load_yaml(tree.read_bytes(path), tree.display(path))


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
    from tradai_release.repo import GitTree

    with GitTree(repo_root, base_ref) as base:
        strategies = set()
        for name in set(_dirs(base, STRATEGIES_DIR)) | set(_dirs(head_tree, STRATEGIES_DIR)):
            if _strategy_files(base, name) != _strategy_files(head_tree, name):
                strategies.add(name)
        manifests = set()
        for key in _manifest_keys(base) | _manifest_keys(head_tree):
            path = manifest_path(*key)
            if _read(base, path) != _read(head_tree, path):
                manifests.add(key)
    return Changes(strategies=frozenset(strategies), manifests=frozenset(manifests))


def _dirs(tree: SourceTree, path: str) -> list[str]:
    return [name for name in tree.listdir(path) if tree.is_dir(f"{path}/{name}")]


def _read(tree: SourceTree, path: str) -> bytes | None:
    try:
        return tree.read_bytes(path)
    except InputError:
        return None


def _strategy_files(tree: SourceTree, name: str) -> dict[str, bytes | None]:
    files: dict[str, bytes | None] = {
        tradai_path(name): _read(tree, tradai_path(name)),
        ml_config_path(name): _read(tree, ml_config_path(name)),
    }
    data_dir = f"{STRATEGIES_DIR}/{name}/data"
    for entry in tree.listdir(data_dir):
        files[f"{data_dir}/{entry}"] = _read(tree, f"{data_dir}/{entry}")
    return files


def _manifest_keys(tree: SourceTree) -> set[tuple[str, int]]:
    keys = set()
    for environment in tree.listdir(RELEASES_DIR):
        for file_name in tree.listdir(f"{RELEASES_DIR}/{environment}"):
            profile = parse_manifest_name(file_name)
            if profile is not None:
                keys.add((environment, profile))
    return keys


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of ``invoke validate``: every problem found, and what was looked at."""

    label: str
    offline: bool
    strategies: int
    manifests: int
    problems: tuple[InputError, ...]
    changes: Changes | None = None

    @property
    def ok(self) -> bool:
        """True when no rule failed."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` output of ``invoke validate``."""
        changes = None
        if self.changes is not None:
            changes = {
                "strategies": sorted(self.changes.strategies),
                "manifests": [
                    {"environment": env, "profile": n} for env, n in sorted(self.changes.manifests)
                ],
            }
        return {
            "ok": self.ok,
            "tree": self.label,
            "offline": self.offline,
            "strategies": self.strategies,
            "manifests": self.manifests,
            "changes": changes,
            "problems": [
                {"file": problem.file, "field": problem.field, "reason": problem.reason}
                for problem in self.problems
            ],
        }


def validate_repository(
    repo_root: Path | str,
    *,
    offline: bool = True,
    base: str | None = None,
    settings: Settings | None = None,
) -> ValidationReport:
    """Validate the working tree at ``repo_root``: offline rules, then (unless ``offline``) live checks.

    ``base`` narrows the live checks to what changed since that ref. Live checks run
    only when the offline rules pass; they come from ``tradai_release.engine.checks``.
    """
    tree = WorkTree(repo_root)
    repo = load_release_repo(tree)
    problems = validate_offline(tree, repo)
    changes = changed_since(repo_root, base, tree) if base else None
    if not offline and not problems:
        if settings is None:
            raise TradaiError("validate: live validation needs settings")
        problems += _live_checks()(settings, repo, changes)
    return ValidationReport(
        label=tree.label,
        offline=offline,
        strategies=len(repo.strategy_names),
        manifests=len(repo.manifests),
        problems=tuple(problems),
        changes=changes,
    )


def _live_checks() -> Callable[[Settings, ReleaseRepo, Changes | None], list[InputError]]:
    """The engine's live checks (imported on use: they pull in the backends)."""
    from tradai_release.engine.checks import validate_live

    return validate_live


@dataclass(frozen=True)
class HashReport:
    """The outcome of ``invoke hash``: each strategy's config hash and the pins ``--write`` refreshed."""

    hashes: dict[str, str]
    updates: tuple[PinUpdate, ...] | None
    problems: tuple[InputError, ...]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` output of ``invoke hash``."""
        return {
            "strategies": {
                name: {"config_hash": digest, "config_id_suffix": digest[:8]}
                for name, digest in sorted(self.hashes.items())
            },
            "updated": None
            if self.updates is None
            else [
                {"path": update.path, "strategy": update.strategy, "old": update.old, "new": update.new}
                for update in self.updates
            ],
            "problems": [str(problem) for problem in self.problems],
        }


def hash_strategies(repo_root: Path | str, *, write: bool = False) -> HashReport:
    """Config hash of every strategy's tradai.yaml; with ``write``, refresh every manifest's config pins.

    A tradai.yaml that is not valid has no hash: its problems are reported and its pins are left alone.
    """
    from tradai_release.manifest_edit import refresh_config_pins

    root = Path(repo_root)
    repo = load_release_repo(WorkTree(root))
    unhashed = repo.strategy_names - set(repo.config_hashes)
    problems = [
        problem
        for problem in repo.problems
        if any(problem.file.startswith(tradai_path(name)) for name in unhashed)
    ]
    updates = tuple(refresh_config_pins(root, repo.config_hashes)) if write else None
    return HashReport(hashes=dict(repo.config_hashes), updates=updates, problems=tuple(problems))
