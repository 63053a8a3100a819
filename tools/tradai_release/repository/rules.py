"""The offline rules of a release repository: what must hold across its files, with no backend asked.

Loading (:meth:`ReleaseTree.load`) checks each file on its own; these rules check the files against
each other (a pinned strategy exists, a config pin equals its strategy's hash, one config per
strategy and environment) and that no model binary is tracked by git.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from pathlib import Path

from tradai_release.core.errors import GitError, InputError
from tradai_release.core.yamlio import Document, load_yaml
from tradai_release.repository.manifest import RELEASES_DIR
from tradai_release.repository.strategy import STRATEGIES_DIR, tradai_path
from tradai_release.repository.tree import ReleaseRepo, SourceTree, WorkTree, load_release_repo

MODEL_BINARY_PATTERNS: tuple[str, ...] = ("*.pkl", "*.onnx", "*_xgb.json", "*_lgb.txt", "*.joblib")
"""Model binaries live in the model hub; any of these tracked in git is an error."""


def validate_offline(tree: SourceTree, repo: ReleaseRepo | None = None) -> list[InputError]:
    """Every offline problem of ``tree``: loading, cross-file rules and tracked binaries, in file order.

    Pass ``repo`` when the caller already loaded ``tree`` to avoid reading it twice.
    """
    loaded = repo if repo is not None else load_release_repo(tree)
    problems = list(loaded.problems)
    problems += check_pins(tree, loaded)
    problems += check_entry_points(tree, loaded)
    tracked = tracked_files(tree)
    problems += check_binaries(tracked) + check_env_files(tracked)
    return problems


def check_pins(tree: SourceTree, repo: ReleaseRepo) -> list[InputError]:
    """Cross-file rules: strategy exists, config equals its hash, one hash per env and strategy."""
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
                        f"{current[:12]}… (run `invoke hash --write`)",
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
                            f"pins {seen[1][:12]}… (one ACTIVE config per strategy and environment)",
                        )
                    )
    return problems


def check_entry_points(tree: SourceTree, repo: ReleaseRepo) -> list[InputError]:
    """Each strategy's entry point names a module file of its folder that defines the class.

    The file is parsed, never imported: validating must not need Freqtrade, and must not run the code
    of a pull request.
    """
    import ast

    problems: list[InputError] = []
    for name in sorted(repo.strategies):
        entry = repo.strategies[name].entry_point
        if not tree.exists(entry.file):
            problems.append(_entry_point_error(tree, name, f"no module file {entry.file}"))
            continue
        try:
            module = ast.parse(tree.read_bytes(entry.file), filename=entry.file)
        except (SyntaxError, ValueError) as err:
            line = f" (line {err.lineno})" if isinstance(err, SyntaxError) and err.lineno else ""
            problems.append(_entry_point_error(tree, name, f"{entry.file} does not parse{line}"))
            continue
        classes = {node.name for node in module.body if isinstance(node, ast.ClassDef)}
        if entry.class_name not in classes:
            problems.append(
                _entry_point_error(tree, name, f"{entry.file} defines no class {entry.class_name}")
            )
    return problems


def _entry_point_error(tree: SourceTree, strategy: str, reason: str) -> InputError:
    document = load_yaml(tree.read_bytes(tradai_path(strategy)), tree.display(tradai_path(strategy)))
    return document.error(["strategy", "entry_point"], reason)


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


def check_env_files(paths: list[str]) -> list[InputError]:
    """One problem per tracked ``.env``: settings would read it, so a merged one could point production
    at another host (with its credentials). CI never reads one; a checkout must not carry one."""
    return [
        InputError(path, "(file)", "a .env file is tracked in git: settings belong in the environment "
                   "(repository variables, secrets); `git rm --cached` it")
        for path in paths
        if posixpath.basename(path) == ".env"
    ]


def tracked_files(tree: SourceTree) -> list[str]:
    """Files git tracks: the commit's files for a GitTree, the index's for a WorkTree.

    A WorkTree outside any git repository lists the files under strategies/ and releases/,
    the content that would be committed.
    """
    from tradai_release.repository.gitrepo import GitRepo, GitTree

    if isinstance(tree, GitTree):
        return tree.files()
    if isinstance(tree, WorkTree):
        try:
            with GitRepo(tree.root) as repo:
                return repo.tracked_files()
        except GitError:
            return _walk_disk(tree.root)
    return []


def _walk_disk(root: Path) -> list[str]:
    found: list[str] = []
    for top in (STRATEGIES_DIR, RELEASES_DIR):
        for dirpath, _, filenames in os.walk(root / top):
            for name in filenames:
                found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)


def _manifest_document(tree: SourceTree, path: str) -> Document:
    # Only read again to find line numbers; the file parsed once already, so this cannot fail.
    return load_yaml(tree.read_bytes(path), tree.display(path))
