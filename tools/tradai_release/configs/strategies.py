"""The working tree's strategies against an environment's config registry: ``invoke upload`` and
``invoke strategy.list``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.configs.entities import ConfigVersion
from tradai_release.configs.service import ConfigVersionService, check_strategy_name
from tradai_release.core.confighash import config_hash
from tradai_release.core.errors import InputError

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.repository.environments import Environment


@dataclass(frozen=True)
class StrategyListing:
    """One row of ``invoke strategy.list``: the strategy in the working tree and in an env's registry."""

    name: str
    version: str | None  # strategy.version of tradai.yaml (None when the file is missing or invalid)
    config_hash: str | None  # hash of the working tree's tradai.yaml
    active_config_id: str | None
    active_hash: str | None
    versions: int
    in_repo: bool
    problem: str | None = None

    @property
    def in_sync(self) -> bool:
        """True when the ACTIVE version is the working tree's tradai.yaml."""
        return self.config_hash is not None and self.config_hash == self.active_hash

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``--json``."""
        return {
            "name": self.name,
            "version": self.version,
            "config_hash": self.config_hash,
            "active_config_id": self.active_config_id,
            "active_hash": self.active_hash,
            "versions": self.versions,
            "in_repo": self.in_repo,
            "in_sync": self.in_sync,
            "problem": self.problem,
        }


def upload_strategy(
    settings: Settings, strategy: str, env: Environment, *, trace_id: str | None = None
) -> ConfigVersion:
    """Stage ``strategies/<strategy>/tradai.yaml`` of the working tree as a DRAFT version in ``env``.

    The file must pass the tradai.yaml schema. ``git_commit`` is HEAD when the file
    is committed unchanged there; ``trace_id`` defaults to ``settings.new_trace_id()``.
    The returned version has ``duplicate`` set when the registry already had this config.
    """
    from tradai_release.repository.strategy import tradai_path
    from tradai_release.repository.tree import ReleaseTree

    check_strategy_name(strategy)
    document = ReleaseTree.work(settings.repo).tradai(strategy)
    path = tradai_path(strategy)
    commit = _committed_head(settings.repo, path)
    description = f"uploaded from {path}" + (f" at {commit[:12]}" if commit else " (uncommitted)")
    service = ConfigVersionService.for_env(env, settings)
    return service.create_version(
        strategy_name=strategy,
        config_data=document.data,
        description=description,
        git_commit=commit,
        trace_id=trace_id or settings.new_trace_id(),
    )


def list_strategies(settings: Settings, env: Environment) -> list[StrategyListing]:
    """Each strategy of the working tree (or only in the registry) with its registry state in ``env``."""
    from tradai_release.repository.tree import ReleaseTree

    tree = ReleaseTree.work(settings.repo)
    states = ConfigVersionService.for_env(env, settings).states()
    names = tree.strategy_names()
    listings: list[StrategyListing] = []
    for name in sorted(set(names) | set(states)):
        version = digest = problem = None
        if name in names:
            try:
                document = tree.tradai(name)
            except InputError as err:
                problem = str(err)
            else:
                version = str(document.data["strategy"]["version"])
                digest = config_hash(document.data)
        state = states.get(name)
        active = state.active if state else None
        listings.append(
            StrategyListing(
                name=name,
                version=version,
                config_hash=digest,
                active_config_id=active.config_id if active else None,
                active_hash=active.config_hash if active else None,
                versions=state.versions if state else 0,
                in_repo=name in names,
                problem=problem,
            )
        )
    return listings


def _committed_head(repo: Path, path: str) -> str | None:
    """HEAD's commit when ``path`` is tracked and unchanged there, else None (no git, or local edits)."""
    from tradai_release.core.errors import GitError
    from tradai_release.repository.gitrepo import GitRepo

    try:
        with GitRepo(repo) as git:
            head = git.head()
            if git.changed_paths([path]) or path not in git.tracked_files():
                return None
    except GitError:
        return None
    return head
