"""The tests' invoke runner (forked_cli.py): a task forked from the zygote behaves as the same task in a new
interpreter: working directory, environment, output, exit code, an uncaught exception, a child process,
and nothing carried over from one task to the next."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from forked_cli import run_invoke

Run = Callable[..., subprocess.CompletedProcess[str]]

TASKS = """\
import os
import subprocess
import sys
import time

from invoke import task


@task
def show(c, name=""):
    print(os.getcwd())
    print(os.environ.get(name, "<unset>"))
    os.environ["LEFT_BEHIND"] = "yes"
    sys.modules["left_behind"] = sys


@task
def leftovers(c):
    print(os.environ.get("LEFT_BEHIND", "<unset>"), "left_behind" in sys.modules)


@task
def fail(c):
    print("out before the error")
    print("error: bad input", file=sys.stderr)
    raise SystemExit(3)


@task
def crash(c):
    raise RuntimeError("boom")


@task
def child(c):
    print(subprocess.run(["sh", "-c", "echo from the child; exit 4"]).returncode, flush=True)


@task
def stdin(c):
    print(repr(sys.stdin.read()))


@task
def hang(c):
    time.sleep(60)
"""


@pytest.fixture(params=["zygote", "cold"])
def run(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``invoke <args>`` on TASKS in tmp_path: forked from the zygote, and in a new interpreter."""
    (tmp_path / "tasks.py").write_text(TASKS)
    if request.param == "cold":
        monkeypatch.setenv("TRADAI_TEST_COLD_CLI", "1")

    def invoke(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> (
            subprocess.CompletedProcess[str]):
        return run_invoke(list(args), tmp_path, {**os.environ, **(env or {})}, timeout)

    return invoke


def test_the_task_has_the_working_directory_and_exactly_the_environment(run: Run, tmp_path: Path) -> None:
    done = run("show", "--name", "ONLY_HERE", env={"ONLY_HERE": "given"})
    assert (done.returncode, done.stdout.splitlines(), done.stderr) == (0, [str(tmp_path), "given"], "")
    again = run("leftovers")  # what the first task changed in its process is gone
    assert (again.returncode, again.stdout) == (0, "<unset> False\n")


def test_exit_code_and_both_streams_of_a_failing_task(run: Run) -> None:
    done = run("fail")
    assert (done.returncode, done.stdout, done.stderr) == (3, "out before the error\n", "error: bad input\n")


def test_an_uncaught_exception_is_a_traceback_and_exit_1(run: Run) -> None:
    done = run("crash")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert done.stderr.rstrip().endswith("RuntimeError: boom")


def test_a_child_process_writes_to_the_same_output_and_is_waited_for(run: Run) -> None:
    done = run("child")
    assert (done.returncode, done.stdout) == (0, "from the child\n4\n")


def test_stdin_is_empty_and_an_unknown_task_is_invokes_own_error(run: Run) -> None:
    assert run("stdin").stdout == "''\n"
    unknown = run("nope")
    assert unknown.returncode == 1 and unknown.stderr == "No idea what 'nope' is!\n"


def test_a_task_past_its_timeout_is_killed(run: Run) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        run("hang", timeout=1)
