"""Writing release edits: to the working tree, or as a commit on a new branch; then the plan of the result.

promote and rollback compute their edits first (:mod:`tradai_release.domain.pins`), and only then come
here to write them, to make the hub tag an edit needs, and to plan the environment at the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.errors import InputError, TradaiError
from tradai_release.engine.context import ReleaseContext
from tradai_release.repository.gitrepo import GitRepo

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.domain.diff import ReleaseDiff
    from tradai_release.domain.pins import TagChoice
    from tradai_release.engine.plan import Plan
    from tradai_release.hub import ModelHub
    from tradai_release.repository.environments import Environment


@dataclass(frozen=True)
class Written:
    """Where an edit went (a new branch and commit, or the working tree) and the plan of the result."""

    branch: str | None
    commit: str | None
    plan: Plan | None
    plan_error: str | None


def write_edits(
    settings: Settings,
    root: Path | str,
    env: Environment,
    texts: Mapping[str, str],
    message: str,
    *,
    commit: bool,
    plan: bool,
    branch: str,
    clean: Sequence[str] = (),
    checkout: bool = True,
) -> Written:
    """Write ``texts`` (path -> new text) to the working tree, or with ``commit`` commit them on the new
    ``branch`` and check it out unless ``checkout`` is False (refusing uncommitted changes in them or in
    ``clean``); then plan ``env`` at the result."""
    from tradai_release.repository.manifest_edit import write_atomic

    root = Path(root)
    sha: str | None = None
    with GitRepo(root) as git:
        if commit:
            dirty = git.changed_paths([*texts, *clean])
            if dirty:
                reason = "has uncommitted changes; commit or discard them before committing"
                raise InputError(dirty[0], "(file)", reason)
            sha = git.write_branch(branch, texts, message, checkout=checkout,
                                   hint="delete it or pick another version")
        else:
            for path, text in texts.items():
                write_atomic(root / path, text)
        target = sha or (git.preview_commit(list(texts), message) if plan else None)
    found, error = plan_of(settings, env, root, target) if target is not None else (None, None)
    return Written(branch if commit else None, sha, found, error)


def plan_of(
    settings: Settings, env: Environment, root: Path | str, commit: str
) -> tuple[Plan | None, str | None]:
    """The engine's plan of ``env`` at ``commit`` with the policy's verdicts (a promotion into a frozen
    environment says so at once), or (None, why) when it cannot be made.

    A promotion or rollback is already written when this runs; failing to plan (a backend
    unreachable) is reported, not raised.
    """
    from tradai_release.engine.admission import judged_plan

    try:
        return judged_plan(ReleaseContext.open(settings, env.name, commit=commit, repo=Path(root))), None
    except TradaiError as err:
        return None, str(err)


def approver(settings: Settings, root: Path | str) -> str:
    """Who approves an override: ``TRADAI_ACTOR`` when set, else the git author, else the default actor."""
    if "actor" in settings.model_fields_set:
        return settings.actor
    with GitRepo(root) as git:
        return git.author() or settings.actor


def make_tag(hub: ModelHub, choice: TagChoice) -> tuple[str, str]:
    """The tag a :class:`TagChoice` names and its manifest's sha256, splicing it in the hub when it is
    new (no upload: both tags' blobs are stored; a re-run reuses the identical tag)."""
    if choice.spliced:
        sha = hub.splice(choice.source, choice.donor, [choice.strategy], tag=choice.tag,
                         source_sha256=choice.source_sha256, message=choice.message)
        return choice.tag, sha
    return choice.tag, choice.sha256 or hub.tag_sha256(choice.tag)


def affected_between(settings: Settings, base: str, head: str = "HEAD") -> list[str]:
    """The environments whose desired state changed between commits ``base`` and ``head``."""
    from tradai_release.domain.diff import diff_refs
    from tradai_release.repository.environments import declared_environments

    return affected_envs(diff_refs(settings.repo, base, head), declared_environments(settings))


def affected_envs(diff: ReleaseDiff, order: Sequence[str]) -> list[str]:
    """Environments whose desired state a diff changes, in promotion ``order``: every env when a
    strategy changed (each env pins its config), else the envs of the changed manifests."""
    if diff.strategies:
        return list(order)
    touched = {change.environment for change in diff.manifests} | {pin.environment for pin in diff.pins}
    return [env for env in order if env in touched]
