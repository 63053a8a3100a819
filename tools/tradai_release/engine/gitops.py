"""Git plumbing shared by promote and rollback: clean-file checks, release branches, preview commits."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.errors import GitError, InputError, TradaiError
from tradai_release.manifest import ENVIRONMENTS

if TYPE_CHECKING:
    from tradai_release.diff import ReleaseDiff
    from tradai_release.engine.plan import Plan
    from tradai_release.settings import Settings


@dataclass(frozen=True)
class PinChange:
    """One manifest field an edit changes: ``strategies.S.model.production`` 6 -> 7."""

    path: str
    field: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "field": self.field, "old": self.old, "new": self.new}

    def describe(self) -> str:
        return f"{self.path}: {self.field} {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return text[:12] if len(text) == 64 else text


def git(root: Path | str, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``git -C root args``; a failure is a GitError naming the command and git's first line."""
    done = subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env} if env else None,
    )
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()[0]
        raise GitError(" ".join(args[:2]), detail.removeprefix("fatal: ").removeprefix("error: "))
    return done.stdout


def head_commit(root: Path | str) -> str:
    """The full hash of HEAD."""
    return git(root, "rev-parse", "--verify", "HEAD^{commit}").strip()


def resolve_commit(root: Path | str, ref: str) -> str:
    """The full hash of the commit ``ref`` names; a bad ref is one GitError line."""
    if ref.startswith("-"):
        raise GitError(ref, "a ref cannot start with '-'")
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except GitError:
        raise GitError(ref, "no such commit") from None


def current_branch(root: Path | str) -> str | None:
    """The checked-out branch, or None on a detached HEAD."""
    name = git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    return None if name == "HEAD" else name


def refuse_dirty(root: Path | str, paths: Sequence[str], what: str) -> None:
    """Raise InputError naming the first of ``paths`` with uncommitted changes (staged or not)."""
    status = git(root, "status", "--porcelain", "-z", "--untracked-files=no", "--", *paths)
    for entry in status.split("\0"):
        if len(entry) > 3:
            reason = f"has uncommitted changes; commit or discard them before {what}"
            raise InputError(entry[3:], "(file)", reason)


def branch_exists(root: Path | str, branch: str) -> bool:
    try:
        git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
    except GitError:
        return False
    return True


def check_branch_name(root: Path | str, branch: str) -> None:
    """Refuse a branch name git would reject or that is already taken (before anything is written)."""
    try:
        git(root, "check-ref-format", "--branch", branch)
    except GitError:
        raise InputError("git", "branch", f"{branch!r} is not a valid branch name") from None
    if branch_exists(root, branch):
        raise InputError("git", "branch", f"{branch} already exists; delete it or pick another version")


def commit_on_new_branch(
    root: Path | str, branch: str, files: Mapping[str, str], message: str
) -> str:
    """Switch to a new ``branch`` at HEAD, write ``files`` (path -> text), commit only them; the commit hash.

    The current branch never receives the commit. On any failure the files get their old text
    back, the previous branch is checked out again and the new branch is deleted.
    """
    from tradai_release.manifest_edit import write_atomic

    root = Path(root)
    previous = current_branch(root) or head_commit(root)
    originals = {path: (root / path).read_text(encoding="utf-8") for path in files}
    check_branch_name(root, branch)
    git(root, "switch", "--quiet", "-c", branch)
    try:
        for path, text in files.items():
            write_atomic(root / path, text)
        git(root, "add", "--", *files)
        git(root, "commit", "--quiet", "--no-verify", "-m", message, "--", *files)
        return head_commit(root)
    except BaseException:
        for path, text in originals.items():
            write_atomic(root / path, text)
        git(root, "reset", "--quiet", "--", *files)
        git(root, "switch", "--quiet", *([previous] if not _is_hash(previous) else ["--detach", previous]))
        git(root, "branch", "--quiet", "-D", branch)
        raise


def _is_hash(ref: str) -> bool:
    return len(ref) == 40 and all(ch in "0123456789abcdef" for ch in ref)


def preview_commit(root: Path | str, paths: Sequence[str], message: str) -> str:
    """A commit object of HEAD plus the working tree's ``paths``, reachable from no branch.

    It lets the engine plan uncommitted edits (the plan reads git objects); no ref, index or
    working-tree file changes.
    """
    root = Path(root)
    with tempfile.TemporaryDirectory(prefix="tradai-index-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git(root, "read-tree", "HEAD", env=env)
        if paths:
            git(root, "add", "--", *paths, env=env)
        tree = git(root, "write-tree", env=env).strip()
    return git(root, "commit-tree", tree, "-p", "HEAD", "-m", message).strip()


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
    env: str,
    texts: Mapping[str, str],
    message: str,
    *,
    commit: bool,
    plan: bool,
    branch: str,
    clean: Sequence[str] = (),
) -> Written:
    """Write ``texts`` (path -> new text) to the working tree, or with ``commit`` commit them on the new
    ``branch`` (refusing uncommitted changes in them or in ``clean``); then plan ``env`` at the result."""
    from tradai_release.manifest_edit import write_atomic

    root = Path(root)
    sha: str | None = None
    if commit:
        refuse_dirty(root, [*texts, *clean], "committing")
        sha = commit_on_new_branch(root, branch, texts, message)
    else:
        for path, text in texts.items():
            write_atomic(root / path, text)
    found, error = None, None
    if plan:
        target = sha or preview_commit(root, list(texts), message)
        found, error = plan_of(settings, env, root, target)
    return Written(branch if commit else None, sha, found, error)


def plan_of(settings: Settings, env: str, root: Path | str, commit: str) -> tuple[Plan | None, str | None]:
    """The engine's plan of ``env`` at ``commit``, or (None, why) when it cannot be made.

    A promotion or rollback is already written when this runs; failing to plan (backends
    unreachable, the engine not installed) is reported, not raised.
    """
    try:
        from tradai_release.engine.plan import plan_env
    except ImportError as err:  # the engine is optional for editing pins
        return None, f"the plan engine is unavailable ({err})"
    try:
        return plan_env(settings, env, commit=commit, repo=Path(root)), None
    except TradaiError as err:
        return None, str(err)


def affected_envs(diff: ReleaseDiff) -> list[str]:
    """Environments whose desired state a diff changes: every env when a strategy changed
    (each env pins its config), else the envs of the changed manifests; in dev, staging, prod order."""
    if diff.strategies:
        return list(ENVIRONMENTS)
    touched = {change.environment for change in diff.manifests} | {pin.environment for pin in diff.pins}
    return [env for env in ENVIRONMENTS if env in touched]
