"""The git adapter: branch writing with and without a checkout, plumbing that leaves the index alone,
and GitPython errors turned into one GitError line, in real repositories under tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine_helpers import commit_all, git
from tradai_release.core.errors import GitError, InputError
from tradai_release.repository.gitrepo import GitRepo, GitTree


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("one\n")
    script = repo / "run.sh"
    script.write_text("#!/bin/sh\necho run\n")
    script.chmod(0o755)
    commit_all(repo, "first")
    return repo


def test_write_branch_leaves_index_and_worktree_alone(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "a.txt").write_text("edited, not staged\n")
    files = {"a.txt": "two\n", "new/b.txt": "bee\n", "run.sh": "#!/bin/sh\necho new\n"}
    commit = GitRepo(repo).write_branch("retrain/x", files, "title\n\nbody\n", base=base)
    assert git(repo, "show", "retrain/x:a.txt") == "two" and git(repo, "show", "retrain/x:new/b.txt") == "bee"
    assert git(repo, "rev-parse", "retrain/x") == commit and git(repo, "rev-parse", "HEAD") == base
    assert git(repo, "diff", "--cached", "--name-only") == "staged.txt"
    assert (repo / "a.txt").read_text() == "edited, not staged\n"
    assert git(repo, "log", "-1", "--format=%B", "retrain/x") == "title\n\nbody"
    modes = git(repo, "ls-tree", "retrain/x", "--", "run.sh", "new/b.txt")
    assert "100755 blob" in modes and "100644 blob" in modes  # an existing file keeps its mode
    with pytest.raises(InputError, match="already exists"):
        GitRepo(repo).write_branch("retrain/x", {"a.txt": "three\n"}, "again", base=base)
    with pytest.raises(InputError, match="not a valid branch name"):
        GitRepo(repo).write_branch("bad..name", {"a.txt": "three\n"}, "again")
    assert git(repo, "branch", "--list", "bad*") == ""


def test_write_branch_with_checkout_follows_the_new_branch(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "notes.txt").write_text("a local note\n")  # untracked: carried along, never committed
    commit = GitRepo(repo).write_branch("release/x", {"a.txt": "two\n"}, "move a\n", checkout=True)
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "release/x"
    assert git(repo, "rev-parse", "HEAD") == commit and git(repo, "rev-parse", "HEAD^") == base
    assert (repo / "a.txt").read_text() == "two\n" and (repo / "notes.txt").exists()
    assert git(repo, "rev-parse", "main") == base
    assert git(repo, "status", "--porcelain") == "?? notes.txt"


def test_a_checkout_that_cannot_happen_leaves_no_branch(repo: Path) -> None:
    (repo / "a.txt").write_text("a local edit the switch would overwrite\n")
    with pytest.raises(GitError, match="switch"):
        GitRepo(repo).write_branch("release/y", {"a.txt": "two\n"}, "move a\n", checkout=True)
    assert git(repo, "branch", "--list", "release/*") == ""
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert (repo / "a.txt").read_text() == "a local edit the switch would overwrite\n"


def test_reads_and_preview_commits(repo: Path) -> None:
    with GitRepo(repo) as git_repo:
        head = git_repo.head()
        assert git_repo.current_branch() == "main" and git_repo.tracked_files() == ["a.txt", "run.sh"]
        assert git_repo.show("HEAD", "a.txt") == "one\n"  # the text as stored, newline kept
        (repo / "a.txt").write_text("changed\n")
        assert git_repo.changed_paths(["a.txt", "run.sh"]) == ["a.txt"]
        preview = git_repo.preview_commit(["a.txt"], "preview")
        assert git_repo.head() == head and git_repo.is_ancestor(head, preview)
        assert not git_repo.is_ancestor(preview, head)
        assert git(repo, "status", "--porcelain") == "M a.txt"  # no ref, index or file moved
        with GitTree(repo, preview) as tree:
            assert tree.read_bytes("a.txt") == b"changed\n" and tree.listdir("") == ["a.txt", "run.sh"]
        name, email = os.environ["GIT_AUTHOR_NAME"], os.environ["GIT_AUTHOR_EMAIL"]
        assert git_repo.author() == f"{name} <{email}>"


def test_vendor_errors_are_one_git_error_line(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(GitError, match=r"^git: no-such-ref: no such commit$"):
        GitRepo(repo).resolve("no-such-ref")
    with pytest.raises(GitError, match="a ref cannot start with '-'"):
        GitRepo(repo).resolve("--all")
    (tmp_path / "plain").mkdir()
    with pytest.raises(GitError, match="is not a git repository"):
        GitRepo(tmp_path / "plain").head()
    with pytest.raises(GitError, match="no such directory"):
        GitRepo(tmp_path / "elsewhere").head()
    with pytest.raises(GitError, match=r"^git: nope: "):
        GitTree(repo, "nope")
    with pytest.raises(GitError) as err:
        GitRepo(repo).run("cat-file", "-p", "0" * 40)
    assert "\n" not in str(err.value) and str(err.value).startswith("git: cat-file -p: ")
