"""``invoke validate`` and ``invoke hash``: the repository's offline rules, then (unless offline) live ones.

The rules live with what they check: file-by-file loading in :mod:`tradai_release.repository.tree`,
the cross-file rules in :mod:`tradai_release.repository.rules`, the live ones in
:mod:`tradai_release.engine.checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError, TradaiError
from tradai_release.domain.diff import Changes, changed_since
from tradai_release.domain.pins import PinChange
from tradai_release.engine.context import ReleaseContext
from tradai_release.repository.rules import validate_offline
from tradai_release.repository.tree import ReleaseRepo, ReleaseTree, WorkTree

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of ``invoke validate``: every problem found, and what was looked at."""

    label: str
    offline: bool
    strategies: int
    manifests: int
    problems: tuple[InputError, ...]
    changes: Changes | None = None
    deep: bool = False

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
            "deep": self.deep,
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
    deep: bool = False,
) -> ValidationReport:
    """Validate the working tree at ``repo_root``: offline rules, then (unless ``offline``) live checks.

    ``base`` narrows the live checks to what changed since that ref. Live checks run
    only when the offline rules pass; they come from ``tradai_release.engine.checks``.
    ``deep`` makes them check the content of every blob of the pinned tags (a live check:
    refused with ``offline``).
    """
    if deep and offline:
        raise InputError("validate", "--deep", "checks the hub, so it cannot be combined with --offline")
    tree = WorkTree(repo_root)
    repo = ReleaseTree(tree).load()
    problems = validate_offline(tree, repo)
    changes = changed_since(repo_root, base, tree) if base else None
    if not offline and not problems:
        if settings is None:
            raise TradaiError("validate: live validation needs settings")
        from tradai_release.engine.checks import validate_live

        problems += validate_live(settings, repo, changes, deep=deep)
        problems += policy_problems(settings, repo_root, repo, changes)
    return ValidationReport(
        label=tree.label,
        offline=offline,
        strategies=len(repo.strategy_names),
        manifests=len(repo.manifests),
        problems=tuple(problems),
        changes=changes,
        deep=deep,
    )


def policy_problems(
    settings: Settings, repo_root: Path | str, release_repo: ReleaseRepo, changes: Changes | None
) -> list[InputError]:
    """``blocked: <reason> (clears at <time>)`` for each policy rule that blocks applying HEAD now, in
    each environment in scope (all, or what changed since ``--base``) whose policy has rules; the
    plan of such an environment is read to know whether there is anything to apply."""
    from tradai_release.engine.admission import judged_plan
    from tradai_release.engine.checks import manifests_in_scope

    policy = release_repo.policy
    scope = {manifest.environment for manifest in manifests_in_scope(release_repo, changes)}
    problems: list[InputError] = []
    for env in policy.environments:
        if env in scope and policy.has_rules(env):
            plan = judged_plan(ReleaseContext.open(settings, env, repo=repo_root))
            problems += [verdict.problem() for verdict in plan.verdicts if verdict.blocked]
    return problems


@dataclass(frozen=True)
class HashReport:
    """The outcome of ``invoke hash``: each strategy's config hash and the pins ``--write`` refreshed."""

    hashes: dict[str, str]
    updates: tuple[PinChange, ...] | None
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
    ``write`` is the lock-file refresher: every pin of a strategy with a hash is set, in every
    ``releases/<env>/profile-<N>.yaml``, also one that fails its schema for another reason (a
    placeholder pin such as ``config: '0'`` is the usual first edit). A manifest that cannot be read
    as a mapping of strategies is an InputError before anything is written; each manifest that
    changed is rewritten atomically.
    """
    from tradai_release.repository.manifest_edit import write_atomic

    root = Path(repo_root)
    tree = ReleaseTree.work(root)
    repo = tree.load()
    unhashed = repo.strategy_names - set(repo.config_hashes)
    problems = [
        problem
        for problem in repo.problems
        if any(problem.file.startswith(f"strategies/{name}/tradai.yaml") for name in unhashed)
    ]
    updates = None
    if write:
        texts, changes = refreshed_config_pins(tree, repo.config_hashes)
        for path, text in texts.items():
            write_atomic(root / path, text)
        updates = tuple(changes)
    return HashReport(hashes=dict(repo.config_hashes), updates=updates, problems=tuple(problems))


def refreshed_config_pins(
    tree: ReleaseTree, hashes: Mapping[str, str]
) -> tuple[dict[str, str], list[PinChange]]:
    """The new text of every manifest whose config pins differ from ``hashes``, and the pins changed.

    Manifests are edited as YAML, not as validated values, so a pin the schema refuses is refreshed
    too; a manifest that is not YAML, or whose ``strategies`` entry is not a mapping, raises.
    """
    from tradai_release.repository.manifest import manifest_path
    from tradai_release.repository.manifest_edit import ManifestEditor, check_edited

    texts: dict[str, str] = {}
    changes: list[PinChange] = []
    for environment, profile in tree.manifest_keys():
        path = manifest_path(environment, profile)
        original = tree.text(path)
        editor = ManifestEditor(original, path)
        for name in editor.strategies():
            digest = hashes.get(name)
            current = editor.config_of(name)
            if digest is not None and current != digest:
                editor.set_config(name, digest)
                changes.append(PinChange(path, f"strategies.{name}.config", current, digest))
        if editor.changed:
            texts[path] = editor.text()
            check_edited(original, texts[path], Path(path), path)
    return texts, changes
