"""A library of an extra that is not installed is one error line naming the extra, wherever it is
imported; any other missing module is a bug and keeps its traceback."""

from __future__ import annotations

import builtins
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine_helpers import commit_all, git
from tradai_release.cli import handle_errors
from tradai_release.core.errors import EXTRA_OF, InputError, MissingExtra, user_error
from tradai_release.repository.gitrepo import head_commit
from tradai_release.runtime.__main__ import main as runtime_main


def test_user_error_names_the_extra_of_a_missing_module() -> None:
    found = user_error(ModuleNotFoundError("No module named 'sklearn'", name="sklearn.ensemble"))
    assert isinstance(found, MissingExtra) and (found.module, found.extra) == ("sklearn", "train")
    assert str(found) == "tradai-release[train]: sklearn: not installed (pip install 'tradai-release[train]')"
    cases = (("mlflow.tracking", "registry"), ("sqlalchemy", "server"), ("moto", "dev"), ("freqtrade", "bot"))
    for module, extra in cases:
        assert str(user_error(ModuleNotFoundError(name=module))).startswith(f"tradai-release[{extra}]: ")
    assert user_error(ModuleNotFoundError(name="tradai_release.nothing")) is None  # a bug of ours
    assert user_error(ModuleNotFoundError("no name")) is None
    assert user_error(ValueError("x")) is None
    plain = InputError("f", "k", "bad")
    assert user_error(plain) is plain
    assert set(EXTRA_OF.values()) <= {"bot", "train", "registry", "server", "report", "dev"}


def hide(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make ``import <module>`` (and its submodules) fail as when its extra is not installed."""
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == module or name.startswith(module + "."):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_a_task_needing_a_missing_extra_prints_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    @handle_errors
    def train() -> None:
        import sklearn  # noqa: F401

    hide(monkeypatch, "sklearn")
    with pytest.raises(SystemExit) as exited:
        train()
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        "error: tradai-release[train]: sklearn: not installed (pip install 'tradai-release[train]')\n"
    )

    @handle_errors
    def buggy() -> None:
        import tradai_release.no_such_module  # type: ignore[import-not-found]  # noqa: F401

    with pytest.raises(ModuleNotFoundError):
        buggy()


def test_the_runtime_names_the_registry_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def needs_mlflow(args: object, exec_: object) -> int:
        import mlflow  # noqa: F401

        return 0

    monkeypatch.setattr("tradai_release.runtime.__main__.run", needs_mlflow)
    hide(monkeypatch, "mlflow")
    assert runtime_main(["--strategy", "PascalStrategy"]) == 1
    assert capsys.readouterr().err == (
        "error: tradai-release[registry]: mlflow: not installed (pip install 'tradai-release[registry]')\n"
    )


def test_head_commit_without_gitpython(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    assert head_commit(repo) is None  # no commit yet
    (repo / "a.txt").write_text("a\n")
    commit_all(repo, "first")
    assert head_commit(repo) == git(repo, "rev-parse", "HEAD")
    assert head_commit(repo / "a.txt") is None  # not a directory
    assert head_commit(tmp_path / "missing") is None
    outside = tmp_path / "outside"
    outside.mkdir()
    assert head_commit(outside) is None  # the temp dir is in no repository
