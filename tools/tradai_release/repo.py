"""The release repository read from a working tree or from git objects at a commit (no checkout)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tradai_release.errors import GitError, InputError, ValidationFailed
from tradai_release.manifest import (
    ENVIRONMENTS,
    PROFILES,
    RELEASES_DIR,
    ReleaseManifest,
    check_manifest,
    manifest_path,
    parse_manifest_name,
)
from tradai_release.strategy import (
    STRATEGIES_DIR,
    StrategySpec,
    build_strategy,
    check_ml_config,
    check_tradai,
    ml_config_path,
    tradai_path,
)
from tradai_release.yamlio import Document, load_json, load_yaml

if TYPE_CHECKING:
    from git import Repo


@runtime_checkable
class SourceTree(Protocol):
    """Read-only view of the repository's files; paths are POSIX and relative to the repository root."""

    label: str

    def read_bytes(self, path: str) -> bytes:
        """The file's content; a missing file is an InputError naming it."""
        ...

    def exists(self, path: str) -> bool:
        """True when ``path`` is a file or a directory."""
        ...

    def is_dir(self, path: str) -> bool:
        """True when ``path`` is a directory."""
        ...

    def listdir(self, path: str) -> list[str]:
        """Sorted names of the entries directly under ``path`` (empty when it is not a directory)."""
        ...

    def display(self, path: str) -> str:
        """How error messages name ``path`` (a GitTree prefixes its ref)."""
        ...


class WorkTree:
    """The files on disk under ``root`` (what CI has checked out, or the developer's edits)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.label = "working tree"

    def read_bytes(self, path: str) -> bytes:
        try:
            return (self.root / path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise InputError(path, "(file)", "file not found") from None

    def exists(self, path: str) -> bool:
        return (self.root / path).exists()

    def is_dir(self, path: str) -> bool:
        return (self.root / path).is_dir()

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.root / path))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def display(self, path: str) -> str:
        return path

    def __repr__(self) -> str:
        return f"WorkTree({str(self.root)!r})"


class GitTree:
    """The files of one commit, read from git objects with gitpython: nothing is checked out."""

    def __init__(self, repo_root: Path | str, ref: str = "HEAD") -> None:
        from git import Repo

        self.ref = ref
        if ref.startswith("-"):
            raise GitError(ref, "a ref cannot start with '-'")
        try:
            self._repo: Repo = Repo(repo_root)
            commit = self._repo.commit(ref)
            listing = self._repo.git.ls_tree("-r", "-z", "--full-tree", commit.hexsha)
        except _vendor_errors() as err:
            raise GitError(ref, _git_detail(err)) from None
        self.commit = commit.hexsha
        self.label = f"{ref} ({self.commit[:12]})"
        self._blobs: dict[str, str] = {}
        self._dirs: dict[str, set[str]] = {"": set()}
        for entry in listing.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            kind, sha = meta.split()[1:3]
            if kind != "blob":
                continue
            self._blobs[path] = sha
            parent = ""
            for part in path.split("/"):
                self._dirs.setdefault(parent, set()).add(part)
                parent = f"{parent}/{part}" if parent else part
        for path in self._blobs:
            self._dirs.pop(path, None)

    def read_bytes(self, path: str) -> bytes:
        sha = self._blobs.get(path)
        if sha is None:
            raise InputError(self.display(path), "(file)", "file not found")
        try:
            data: bytes = self._repo.odb.stream(bytes.fromhex(sha)).read()
        except _vendor_errors() as err:
            raise GitError(self.ref, f"{path}: {_git_detail(err)}") from None
        return data

    def exists(self, path: str) -> bool:
        return path in self._blobs or path.rstrip("/") in self._dirs

    def is_dir(self, path: str) -> bool:
        return path.rstrip("/") in self._dirs

    def listdir(self, path: str) -> list[str]:
        return sorted(self._dirs.get(path.rstrip("/"), ()))

    def display(self, path: str) -> str:
        return f"{self.ref}:{path}"

    def files(self) -> list[str]:
        """Every file path of the commit."""
        return sorted(self._blobs)

    def close(self) -> None:
        """Stop the git helper processes gitpython keeps open."""
        self._repo.close()

    def __enter__(self) -> GitTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GitTree({self.label!r})"


def _vendor_errors() -> tuple[type[Exception], ...]:
    """What gitpython and gitdb raise for bad refs, missing objects and non-repositories."""
    from git.exc import GitError as VendorGitError
    from gitdb.exc import ODBError  # type: ignore[import-untyped]

    return (VendorGitError, ODBError, ValueError)


def _git_detail(err: Exception) -> str:
    kind = type(err).__name__
    if kind == "InvalidGitRepositoryError":
        return f"{err} is not a git repository"
    if kind == "NoSuchPathError":
        return f"{err}: no such directory"
    stderr = getattr(err, "stderr", "") or ""
    text = str(stderr).strip() or str(err).strip() or type(err).__name__
    first = text.splitlines()[0] if text else type(err).__name__
    return first.removeprefix("stderr: ").strip("' ")


@dataclass(frozen=True)
class ReleaseRepo:
    """The desired state at one tree: valid strategies and manifests, and every problem met loading them.

    A file with a problem is left out of ``strategies`` / ``manifests``; ``config_hashes``
    still holds the hash of every tradai.yaml that is valid (even when its ml_config.json
    is not), and ``strategy_names`` every directory under ``strategies/``, so cross-file
    rules can say precisely what is wrong without repeating a broken file's problem.
    """

    label: str
    strategies: dict[str, StrategySpec]
    manifests: dict[tuple[str, int], ReleaseManifest]
    problems: list[InputError] = field(default_factory=list)
    config_hashes: dict[str, str] = field(default_factory=dict)
    strategy_names: frozenset[str] = frozenset()

    def manifests_of(self, environment: str) -> list[ReleaseManifest]:
        """The manifests of one environment, by profile."""
        return [self.manifests[key] for key in sorted(self.manifests) if key[0] == environment]

    def require_valid(self) -> None:
        """Raise ValidationFailed when loading found problems."""
        if self.problems:
            raise ValidationFailed(list(self.problems))


def load_release_repo(tree: SourceTree) -> ReleaseRepo:
    """Read every strategy and manifest of ``tree`` into typed values, collecting problems as it goes."""
    problems: list[InputError] = []
    strategies: dict[str, StrategySpec] = {}
    hashes: dict[str, str] = {}
    names: set[str] = set()
    for name in tree.listdir(STRATEGIES_DIR):
        if not tree.is_dir(f"{STRATEGIES_DIR}/{name}"):
            continue
        names.add(name)
        spec, hash_ = _load_strategy(tree, name, problems)
        if hash_ is not None:
            hashes[name] = hash_
        if spec is not None:
            strategies[name] = spec

    manifests: dict[tuple[str, int], ReleaseManifest] = {}
    for environment in tree.listdir(RELEASES_DIR):
        env_dir = f"{RELEASES_DIR}/{environment}"
        if not tree.is_dir(env_dir):
            continue
        if environment not in ENVIRONMENTS:
            problems.append(
                InputError(
                    tree.display(env_dir),
                    "environment",
                    f"unknown environment (use {', '.join(ENVIRONMENTS)})",
                )
            )
            continue
        for file_name in tree.listdir(env_dir):
            path = f"{env_dir}/{file_name}"
            profile = parse_manifest_name(file_name)
            if profile is None:
                if file_name.endswith((".yaml", ".yml")):
                    problems.append(
                        InputError(tree.display(path), "(file)", "not a manifest name: use profile-<N>.yaml")
                    )
                continue
            if profile not in PROFILES:
                problems.append(
                    InputError(
                        tree.display(path),
                        "profile",
                        f"profile {profile} is outside {PROFILES[0]}..{PROFILES[-1]}",
                    )
                )
                continue
            manifest = _load_manifest(tree, environment, profile, problems)
            if manifest is not None:
                manifests[(environment, profile)] = manifest

    return ReleaseRepo(
        label=tree.label,
        strategies=strategies,
        manifests=manifests,
        problems=problems,
        config_hashes=hashes,
        strategy_names=frozenset(names),
    )


def _parse(tree: SourceTree, path: str, problems: list[InputError]) -> Document | None:
    try:
        raw = tree.read_bytes(path)
        if path.endswith(".json"):
            return load_json(raw, tree.display(path))
        return load_yaml(raw, tree.display(path))
    except InputError as err:
        problems.append(err)
        return None


def _load_strategy(
    tree: SourceTree, name: str, problems: list[InputError]
) -> tuple[StrategySpec | None, str | None]:
    from tradai_release.confighash import config_hash

    tradai = _parse(tree, tradai_path(name), problems)
    ml_config = _parse(tree, ml_config_path(name), problems)
    hash_ = None
    found: list[InputError] = []
    if tradai is not None:
        tradai_problems = check_tradai(name, tradai)
        found += tradai_problems
        if not tradai_problems:
            hash_ = config_hash(tradai.data)
    if ml_config is not None:
        found += check_ml_config(ml_config)
    problems.extend(found)
    if tradai is None or ml_config is None or found:
        return None, hash_
    return build_strategy(name, tradai, ml_config), hash_


def _load_manifest(
    tree: SourceTree, environment: str, profile: int, problems: list[InputError]
) -> ReleaseManifest | None:
    path = manifest_path(environment, profile)
    document = _parse(tree, path, problems)
    if document is None:
        return None
    found = check_manifest(environment, profile, document)
    if found:
        problems.extend(found)
        return None
    return ReleaseManifest.from_dict(document.data, path=path)


def load_document(tree: SourceTree, path: str) -> Document:
    """Parse one YAML or JSON file of ``tree`` (InputError when missing or malformed)."""
    raw = tree.read_bytes(path)
    if path.endswith(".json"):
        return load_json(raw, tree.display(path))
    return load_yaml(raw, tree.display(path))


def tracked_files(tree: SourceTree) -> list[str]:
    """Files git tracks: the commit's files for a GitTree, ``git ls-files`` for a WorkTree.

    A WorkTree outside any git repository lists the files under strategies/ and releases/,
    the content that would be committed.
    """
    if isinstance(tree, GitTree):
        return tree.files()
    if isinstance(tree, WorkTree):
        done = subprocess.run(
            ["git", "-C", str(tree.root), "ls-files", "-z"],
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            return sorted(name for name in done.stdout.decode("utf-8", "replace").split("\0") if name)
        return _walk_disk(tree.root)
    return []


def _walk_disk(root: Path) -> list[str]:
    found: list[str] = []
    for top in (STRATEGIES_DIR, RELEASES_DIR):
        for dirpath, _, filenames in os.walk(root / top):
            for name in filenames:
                found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)


# Appended (not woven into the imports above) so this file's rewrite merges cleanly; it moves with it.
if TYPE_CHECKING:
    from collections.abc import Iterable


def strategy_features(repo_root: Path, strategies: Iterable[str]) -> dict[str, list[str]]:
    """``features`` of each strategy's ``strategies/<name>/ml_config.json`` in a working tree (if present)."""
    import json

    features: dict[str, list[str]] = {}
    for strategy in strategies:
        path = repo_root / ml_config_path(strategy)
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise InputError(str(path), "json", f"unreadable: {err}") from None
        if not isinstance(data, dict):
            raise InputError(str(path), "json", "not a JSON object")
        listed = data.get("features")
        if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
            raise InputError(str(path), "features", "not a list of feature names")
        features[strategy] = listed
    return features
