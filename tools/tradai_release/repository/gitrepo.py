"""The one way this project reaches git: a repository adapter over GitPython, and a commit's files.

Every GitPython/gitdb error becomes a :class:`GitError` naming the ref or command here, at the edge;
no other module imports ``git``. Commits are written with plumbing (a private index file and
``update-ref``), so writing a release branch never disturbs the user's index or working tree unless
the caller asks for the checkout to follow.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import GitError, InputError

if TYPE_CHECKING:
    from git import Repo

_ZERO = "0" * 40


def _vendor_errors() -> tuple[type[Exception], ...]:
    """What GitPython and gitdb raise for bad refs, missing objects, failed commands and non-repositories."""
    from git.exc import GitError as VendorGitError
    from gitdb.exc import ODBError  # type: ignore[import-untyped]

    return (VendorGitError, ODBError, ValueError)


def _detail(err: Exception) -> str:
    """git's first line of complaint, without its ``fatal:`` / ``error:`` prefix."""
    kind = type(err).__name__
    if kind == "InvalidGitRepositoryError":
        return f"{err} is not a git repository"
    if kind == "NoSuchPathError":
        return f"{err}: no such directory"
    stderr = str(getattr(err, "stderr", "") or "").strip()
    text = stderr or str(err).strip() or kind
    first = text.splitlines()[0] if text else kind
    first = first.strip().removeprefix("stderr:").strip().strip("'").strip()
    return first.removeprefix("fatal: ").removeprefix("error: ") or kind


def check_ref(ref: str) -> str:
    """Refuse a ref that git would read as an option."""
    if ref.startswith("-"):
        raise GitError(ref, "a ref cannot start with '-'")
    return ref


class GitRepo:
    """The git repository at ``root`` (a working tree, or any directory inside one)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._repo: Repo | None = None

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            from git import Repo

            try:
                self._repo = Repo(self.root, search_parent_directories=True)
            except _vendor_errors() as err:
                raise GitError(str(self.root), _detail(err)) from None
        return self._repo

    @classmethod
    def init(cls, root: Path | str, branch: str = "main") -> GitRepo:
        """A new repository at ``root`` whose first branch is ``branch``."""
        from git import Repo

        try:
            Repo.init(root, mkdir=True, initial_branch=branch).close()
        except _vendor_errors() as err:
            raise GitError(str(root), _detail(err)) from None
        return cls(root)

    def close(self) -> None:
        """Stop the helper processes GitPython keeps open."""
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, *args: str, env: Mapping[str, str] | None = None, keep_newline: bool = False) -> str:
        """``git args`` in the repository; its stdout (stripped unless ``keep_newline``).

        A failure is a GitError naming the command (its first two words) and git's first line.
        """
        try:
            out = self.repo.git.execute(
                ["git", *args], env=dict(env) if env else None, strip_newline_in_stdout=not keep_newline
            )
        except _vendor_errors() as err:
            raise GitError(" ".join(args[:2]), _detail(err)) from None
        return str(out)

    # --- reading ---------------------------------------------------------------------------------------

    def head(self) -> str:
        """The full hash of HEAD."""
        return self.resolve("HEAD")

    def resolve(self, ref: str) -> str:
        """The full hash of the commit ``ref`` names; a bad ref is one GitError line."""
        check_ref(ref)
        self.repo  # noqa: B018 - a directory that is no repository says so, not "no such commit"
        try:
            return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        except GitError:
            raise GitError(ref, "no such commit") from None

    def has_commit(self, ref: str) -> bool:
        try:
            self.resolve(ref)
        except GitError:
            return False
        return True

    def current_branch(self) -> str | None:
        """The checked-out branch, or None on a detached HEAD."""
        name = self.run("rev-parse", "--abbrev-ref", "HEAD")
        return None if name == "HEAD" else name

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when ``ancestor`` is ``descendant`` or one of its ancestors."""
        try:
            command = ["git", "merge-base", "--is-ancestor", check_ref(ancestor), check_ref(descendant)]
            self.repo.git.execute(command)
        except _vendor_errors() as err:
            if getattr(err, "status", None) == 1:
                return False
            raise GitError(descendant, _detail(err)) from None
        return True

    def message(self, ref: str) -> str:
        """The full message of commit ``ref``."""
        return self.run("log", "-1", "--format=%B", check_ref(ref))

    def object_id(self, ref: str, path: str) -> str:
        """The id of the tree or blob at ``path`` in ``ref`` (a directory's id names its whole content)."""
        return self.run("rev-parse", f"{check_ref(ref)}:{path}")

    def show(self, ref: str, path: str) -> str:
        """The text of ``path`` at ``ref``."""
        return self.run("show", f"{check_ref(ref)}:{path}", keep_newline=True)

    def tracked_files(self) -> list[str]:
        """The files git tracks in the index, sorted."""
        listing = self.run("ls-files", "-z")
        return sorted(name for name in listing.split("\0") if name)

    def changed_paths(self, paths: Sequence[str], *, untracked: bool = False) -> list[str]:
        """Which of ``paths`` (files or directories) have uncommitted changes, staged or not."""
        mode = "--untracked-files=all" if untracked else "--untracked-files=no"
        status = self.run("status", "--porcelain", "-z", mode, "--", *paths)
        return [entry[3:] for entry in status.split("\0") if len(entry) > 3]

    def author(self) -> str | None:
        """The configured author's name (``git var GIT_AUTHOR_IDENT`` without email and date), if any."""
        try:
            ident = self.run("var", "GIT_AUTHOR_IDENT")
        except GitError:
            return None
        return ident.rsplit(" ", 2)[0] if ident.count(" ") >= 2 else ident or None

    def branch_exists(self, branch: str) -> bool:
        try:
            self.run("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        except GitError:
            return False
        return True

    def check_new_branch(self, branch: str, hint: str = "delete it or pick another name") -> None:
        """Refuse a branch name git would reject or that is already taken (before anything is written)."""
        try:
            self.run("check-ref-format", "--branch", branch)
        except GitError:
            raise InputError("git", "branch", f"{branch!r} is not a valid branch name") from None
        if self.branch_exists(branch):
            raise InputError("git", "branch", f"{branch} already exists; {hint}")

    def tree(self, ref: str = "HEAD") -> GitTree:
        """The files of commit ``ref``, read from git objects (nothing is checked out)."""
        return GitTree(self.root, ref)

    # --- writing ---------------------------------------------------------------------------------------

    @contextmanager
    def _private_index(self) -> Iterator[dict[str, str]]:
        """An index file of our own, so the user's index is never touched."""
        handle, index = tempfile.mkstemp(prefix="tradai-index-")
        os.close(handle)
        os.unlink(index)  # git creates it; an empty file is not a valid index
        try:
            yield {"GIT_INDEX_FILE": index}
        finally:
            Path(index).unlink(missing_ok=True)

    def commit_files(self, base: str, files: Mapping[str, str], message: str) -> str:
        """A new commit object: ``base``'s tree with ``files`` (path -> text) replaced; on no branch.

        A file that is not in ``base`` is added with mode 100644; an existing one keeps its mode.
        """
        base = self.resolve(base)
        with self._private_index() as env, tempfile.TemporaryDirectory(prefix="tradai-commit-") as scratch:
            self.run("read-tree", base, env=env)
            for number, (path, text) in enumerate(sorted(files.items())):
                source = Path(scratch) / f"blob-{number}"
                source.write_bytes(text.encode("utf-8"))
                blob = self.run("hash-object", "-w", "--path", path, "--", str(source))
                listed = self.run("ls-tree", base, "--", path)
                mode = listed.split(" ", 1)[0] if listed else "100644"
                self.run("update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env)
            tree = self.run("write-tree", env=env)
            message_file = Path(scratch) / "message"
            message_file.write_bytes(message.encode("utf-8"))
            return self.run("commit-tree", tree, "-p", base, "-F", str(message_file))

    def write_branch(
        self,
        branch: str,
        files: Mapping[str, str],
        message: str,
        *,
        base: str = "HEAD",
        checkout: bool = False,
        hint: str = "delete it or pick another name",
    ) -> str:
        """Create ``branch`` at a new commit = ``base`` with ``files`` replaced; returns the commit hash.

        The commit is built from git objects: the current branch never receives it, and the index and
        working tree stay as they are, unless ``checkout``: then the new branch is checked out (the
        working tree's copies of ``files`` take the new text; other local changes are carried along).
        A taken or invalid branch name is refused before anything is written.
        """
        self.check_new_branch(branch, hint)
        commit = self.commit_files(base, files, message)
        self.run("update-ref", f"refs/heads/{branch}", commit, _ZERO)
        if checkout:
            try:
                self.run("switch", "--quiet", branch)
            except GitError:
                self.run("update-ref", "-d", f"refs/heads/{branch}", commit)
                raise
        return commit

    def preview_commit(self, paths: Sequence[str], message: str) -> str:
        """A commit object of HEAD plus the working tree's ``paths``, reachable from no branch.

        It lets the engine plan uncommitted edits (the plan reads git objects); no ref, index or
        working-tree file changes.
        """
        with self._private_index() as env:
            self.run("read-tree", "HEAD", env=env)
            if paths:
                self.run("add", "--", *paths, env=env)
            tree = self.run("write-tree", env=env)
        return self.run("commit-tree", tree, "-p", "HEAD", "-m", message)

    def commit_paths(self, paths: Sequence[str], message: str) -> str:
        """Stage and commit ``paths`` on the current branch; the new HEAD."""
        self.run("add", "--", *paths)
        self.run("commit", "--quiet", "--no-verify", "-m", message, "--", *paths)
        return self.head()


class GitTree:
    """The files of one commit, read from git objects: nothing is checked out."""

    def __init__(self, repo_root: Path | str, ref: str = "HEAD") -> None:
        from git import Repo

        self.ref = check_ref(ref)
        try:
            self._repo: Repo = Repo(repo_root)
            commit = self._repo.commit(ref)
            listing = self._repo.git.ls_tree("-r", "-z", "--full-tree", commit.hexsha)
        except _vendor_errors() as err:
            raise GitError(ref, _detail(err)) from None
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
            data: Any = self._repo.odb.stream(bytes.fromhex(sha)).read()
        except _vendor_errors() as err:
            raise GitError(self.ref, f"{path}: {_detail(err)}") from None
        return bytes(data)

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
        """Stop the git helper processes GitPython keeps open."""
        self._repo.close()

    def __enter__(self) -> GitTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GitTree({self.label!r})"


def head_commit(root: Path | str) -> str | None:
    """The commit checked out at ``root``: None outside a git repository or before its first commit.

    One ``git rev-parse`` without importing GitPython, so the hub CLI's push (which records the
    commit it was made from) starts fast.
    """
    import subprocess

    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # no such directory, or no git
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None
