"""The release repository, read from a working tree or from git objects at a commit (no checkout).

:class:`ReleaseTree` is the only reader of the repository's own files: which environments
``releases/policy.yaml`` declares, which strategies and profiles exist, a strategy's tradai.yaml
and ml_config.json, a profile's manifest. Every other module asks it instead of globbing and
parsing files itself, so a rule about those files has one home.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from tradai_release.core.errors import InputError, ValidationFailed
from tradai_release.core.yamlio import Document, load_json, load_yaml
from tradai_release.repository.manifest import (
    RELEASES_DIR,
    ReleaseManifest,
    check_manifest,
    manifest_path,
    parse_manifest_name,
    parse_profile,
)
from tradai_release.repository.policy import POLICY_PATH, Policy, check_policy
from tradai_release.repository.strategy import (
    STRATEGIES_DIR,
    StrategySpec,
    build_strategy,
    check_ml_config,
    check_tradai,
    ml_config_path,
    tradai_path,
)
from tradai_release.repository.verification import check_wave_profiles


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


def load_document(tree: SourceTree, path: str) -> Document:
    """Parse one YAML or JSON file of ``tree`` (InputError when missing or malformed)."""
    raw = tree.read_bytes(path)
    if path.endswith(".json"):
        return load_json(raw, tree.display(path))
    return load_yaml(raw, tree.display(path))


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
    policy: Policy = field(default_factory=Policy)

    def manifests_of(self, environment: str) -> list[ReleaseManifest]:
        """The manifests of one environment, by profile."""
        return [self.manifests[key] for key in sorted(self.manifests) if key[0] == environment]

    def require_valid(self) -> None:
        """Raise ValidationFailed when loading found problems."""
        if self.problems:
            raise ValidationFailed(list(self.problems))


class ReleaseTree:
    """The release repository at one tree: its policy, strategies and manifests as typed values.

    Single reads (``strategy``, ``manifest``, ``config_hash``) raise the file's first problem;
    :meth:`load` reads everything and collects every problem (what ``invoke validate`` reports).
    """

    def __init__(self, tree: SourceTree) -> None:
        self.tree = tree
        self._policy: Policy | None = None

    @classmethod
    def work(cls, root: Path | str) -> ReleaseTree:
        """The working tree at ``root``."""
        return cls(WorkTree(root))

    @classmethod
    @contextmanager
    def at(cls, root: Path | str, ref: str) -> Iterator[ReleaseTree]:
        """The tree of commit ``ref`` of the repository at ``root``, read from git objects."""
        from tradai_release.repository.gitrepo import GitTree

        with GitTree(root, ref) as tree:
            yield cls(tree)

    @property
    def label(self) -> str:
        return self.tree.label

    @property
    def commit(self) -> str | None:
        """The commit hash when the tree is a commit's (None for a working tree)."""
        return getattr(self.tree, "commit", None)

    # --- policy and environments --------------------------------------------------------------------

    def policy(self) -> Policy:
        """``releases/policy.yaml`` (defaults when absent); its first problem is raised."""
        if self._policy is None:
            problems: list[InputError] = []
            found = self._load_policy(problems)
            if problems:
                raise problems[0]
            self._policy = found
        return self._policy

    def _load_policy(self, problems: list[InputError]) -> Policy:
        if not self.tree.exists(POLICY_PATH):
            return Policy()
        document = _parse(self.tree, POLICY_PATH, problems)
        if document is None:
            return Policy()
        found = check_policy(document) or check_wave_profiles(document, self._profiles_per_env())
        if found:
            problems.extend(found)
            return Policy()
        return Policy.from_dict(document.data)

    def _profiles_per_env(self) -> dict[str, list[int]]:
        """The profiles of each directory under ``releases/`` (its manifests' numbers)."""
        found: dict[str, list[int]] = {}
        for env in self.environment_dirs():
            names = self.tree.listdir(f"{RELEASES_DIR}/{env}")
            found[env] = sorted(n for n in (parse_manifest_name(name) for name in names) if n is not None)
        return found

    def environments(self) -> tuple[str, ...]:
        """The declared environments, in promotion order."""
        return self.policy().environments

    def environment_dirs(self) -> list[str]:
        """Every directory under ``releases/`` (declared or not)."""
        entries = self.tree.listdir(RELEASES_DIR)
        return [name for name in entries if self.tree.is_dir(f"{RELEASES_DIR}/{name}")]

    # --- strategies ---------------------------------------------------------------------------------

    def strategy_names(self) -> list[str]:
        """Every directory under ``strategies/``, sorted."""
        return [
            name
            for name in self.tree.listdir(STRATEGIES_DIR)
            if self.tree.is_dir(f"{STRATEGIES_DIR}/{name}") and not name.startswith(".")
        ]

    def require_strategy(self, name: str) -> None:
        """Raise InputError unless ``strategies/<name>/`` exists (naming the ones that do)."""
        if not name or "/" in name or name not in self.strategy_names():
            known = ", ".join(self.strategy_names()) or "none"
            raise InputError(f"{STRATEGIES_DIR}/{name}", "--strategy", f"no such strategy (known: {known})")

    def tradai(self, name: str) -> Document:
        """The strategy's tradai.yaml, schema-checked (its first problem is raised)."""
        self.require_strategy(name)
        document = load_document(self.tree, tradai_path(name))
        problems = check_tradai(name, document)
        if problems:
            raise ValidationFailed(problems)
        return document

    def config_hash(self, name: str) -> str:
        """The config hash of the strategy's tradai.yaml."""
        from tradai_release.core.confighash import config_hash

        return config_hash(self.tradai(name).data)

    def ml_config(self, name: str) -> Document:
        """The strategy's ml_config.json, schema-checked (its problems are raised)."""
        self.require_strategy(name)
        document = load_document(self.tree, ml_config_path(name))
        problems = check_ml_config(document)
        if problems:
            raise ValidationFailed(problems)
        return document

    def strategy(self, name: str) -> StrategySpec:
        """The strategy: tradai.yaml and ml_config.json, both checked."""
        return build_strategy(name, self.tradai(name), self.ml_config(name))

    def data_sets(self, name: str) -> list[str]:
        """The strategy's candle files ``strategies/<name>/data/*.csv``, sorted."""
        directory = f"{STRATEGIES_DIR}/{name}/data"
        return [f"{directory}/{entry}" for entry in self.tree.listdir(directory) if entry.endswith(".csv")]

    def features(self, names: Iterable[str]) -> dict[str, list[str]]:
        """The ml_config.json feature list of each named strategy that has one (a bot host may hold only
        the ml_config.json of the strategies it runs)."""
        return {
            name: list(self.ml_config(name).data["features"])
            for name in names
            if self.tree.exists(ml_config_path(name))
        }

    # --- manifests ----------------------------------------------------------------------------------

    def manifest_keys(self) -> list[tuple[str, int]]:
        """``(environment, profile)`` of every ``releases/<env>/profile-<N>.yaml``, declared env or not."""
        keys = []
        for environment in self.environment_dirs():
            for file_name in self.tree.listdir(f"{RELEASES_DIR}/{environment}"):
                profile = parse_manifest_name(file_name)
                if profile is not None:
                    keys.append((environment, profile))
        return sorted(keys)

    def profiles(self, environment: str) -> list[int]:
        """The profiles ``environment`` has a manifest for, ascending."""
        return [profile for env, profile in self.manifest_keys() if env == environment]

    def profile(self, environment: str, value: str | int) -> int:
        """``--profile N`` checked against the environment's manifests."""
        number = parse_profile(value)
        available = self.profiles(environment)
        if number not in available:
            listed = ", ".join(map(str, available)) or "none"
            raise InputError(
                manifest_path(environment, number), "--profile",
                f"unknown profile {number} ({environment} has profiles {listed})",
            )
        return number

    def manifest(self, environment: str, profile: int) -> ReleaseManifest:
        """The profile's manifest as a typed value (its first problem is raised)."""
        path = manifest_path(environment, profile)
        document = load_document(self.tree, path)
        problems = check_manifest(environment, profile, document)
        if problems:
            raise problems[0]
        return ReleaseManifest.from_dict(document.data, path=path)

    def manifests(self, environment: str) -> list[ReleaseManifest]:
        """Every manifest of ``environment``, by profile."""
        return [self.manifest(environment, profile) for profile in self.profiles(environment)]

    def manifest_or_none(self, environment: str, profile: int) -> ReleaseManifest | None:
        """The manifest, or None when the file does not exist."""
        if not self.tree.exists(manifest_path(environment, profile)):
            return None
        return self.manifest(environment, profile)

    def text(self, path: str) -> str:
        """A file's text (for round-trip edits that keep comments)."""
        return self.tree.read_bytes(path).decode("utf-8")

    # --- everything at once -------------------------------------------------------------------------

    def load(self) -> ReleaseRepo:
        """Read every strategy and manifest into typed values, collecting problems as it goes."""
        problems: list[InputError] = []
        policy = self._load_policy(problems)
        strategies: dict[str, StrategySpec] = {}
        hashes: dict[str, str] = {}
        names = self.strategy_names()
        for name in names:
            spec, hash_ = _load_strategy(self.tree, name, problems)
            if hash_ is not None:
                hashes[name] = hash_
            if spec is not None:
                strategies[name] = spec

        manifests: dict[tuple[str, int], ReleaseManifest] = {}
        for environment in self.environment_dirs():
            env_dir = f"{RELEASES_DIR}/{environment}"
            if environment not in policy.environments:
                declared = ", ".join(policy.environments)
                reason = f"environment {environment!r} is not declared in {POLICY_PATH} ({declared})"
                problems.append(InputError(self.tree.display(env_dir), "environment", reason))
                continue
            for file_name in self.tree.listdir(env_dir):
                path = f"{env_dir}/{file_name}"
                profile = parse_manifest_name(file_name)
                if profile is None:
                    if file_name.endswith((".yaml", ".yml")):
                        reason = "not a manifest name: use profile-<N>.yaml"
                        problems.append(InputError(self.tree.display(path), "(file)", reason))
                    continue
                manifest = _load_manifest(self.tree, environment, profile, problems)
                if manifest is not None:
                    manifests[(environment, profile)] = manifest

        return ReleaseRepo(
            label=self.tree.label,
            strategies=strategies,
            manifests=manifests,
            problems=problems,
            config_hashes=hashes,
            strategy_names=frozenset(names),
            policy=policy,
        )


def load_release_repo(tree: SourceTree) -> ReleaseRepo:
    """Read every strategy and manifest of ``tree`` into typed values, collecting problems as it goes."""
    return ReleaseTree(tree).load()


def _parse(tree: SourceTree, path: str, problems: list[InputError]) -> Document | None:
    try:
        return load_document(tree, path)
    except InputError as err:
        problems.append(err)
        return None


def _load_strategy(
    tree: SourceTree, name: str, problems: list[InputError]
) -> tuple[StrategySpec | None, str | None]:
    from tradai_release.core.confighash import config_hash

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
