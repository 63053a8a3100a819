"""The invoke CLI for the tests: each task in a new process, as a user runs it, that starts warm.

``python -m invoke <task>`` spends about 3 s importing MLflow, pandas, boto3 and the rest before the
task runs, and the suite runs a few hundred tasks. So each test process starts one *zygote* (this file
run as a script): a process that imported those libraries once and then forks one child per task. The
child is its own process as a user's would be: its own working directory and environment, stdin from
/dev/null, stdout and stderr to files, logging and warnings as a fresh interpreter has them, its exit
code (or the signal that ended it), atexit handlers run. What it does not pay is the imports.

Protocol (one Unix socket connection per task): the client sends one JSON line (argv, cwd, env and the
two output paths); the zygote forks a waiter, which forks the task and answers two lines, the task's
pid and then its exit code. The zygote exits when its stdin closes (the test process ended).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

# What the tasks import, loaded once in the zygote (each is imported if installed; the training stack
# and Freqtrade only in the full install).
PRELOAD = (
    "invoke.main",
    "tradai_release",
    "mlflow",
    "mlflow.tracking",
    "mlflow.store.tracking.rest_store",
    "mlflow.store.model_registry.rest_store",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "boto3",
    "botocore.session",
    "pandas",
    "numpy",
    "pyarrow",
    "sklearn.ensemble",
    "xgboost",
    "lightgbm",
    "onnxruntime",
    "skl2onnx",
    "freqtrade.configuration",
    "freqtrade.optimize.backtesting",
    "freqtrade.optimize.optimize_reports",
    "freqtrade.strategy",
    "freqtrade.persistence",
    "freqtrade_client",
)


def _preload() -> None:
    import pkgutil

    import tradai_release

    names = [*PRELOAD, *(m.name for m in pkgutil.walk_packages(tradai_release.__path__, "tradai_release."))]
    for name in names:
        # an extra this install does not have: the task meets it as a user's process would
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def serve(path: str) -> None:
    """Preload, listen on ``path``, print ``ready``, then fork a waiter per connection until stdin
    closes."""
    _preload()
    if threading.active_count() > 1:  # a fork copies one thread: a lock another one held stays held
        raise SystemExit(f"zygote: {threading.active_count()} threads after the imports; forking is unsafe")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the waiters
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1):
            # Nothing of its own to flush: the interpreter's teardown of the preloaded libraries (1.5 s)
            # would only delay the end of the test process that waits for it.
            listener.close()
            os._exit(0)
        if listener in ready:
            conn, _ = listener.accept()
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:
                listener.close()
                _wait_for_task(conn)
            conn.close()


def _wait_for_task(conn: socket.socket) -> None:
    """In the waiter: fork the task, answer its pid, wait, answer its exit code, exit (also when the
    client went away: it timed out and killed the task)."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        with conn.makefile("r", encoding="utf-8") as lines:
            request = json.loads(lines.readline())
        pid = os.fork()
        if pid == 0:
            conn.close()
            _run_task(request)
        conn.sendall(f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    finally:
        os._exit(0)


def _run_task(request: dict[str, Any]) -> None:
    """In the task's process: become the process ``python -m invoke`` would start, run, exit."""
    code = 1
    try:
        for fd, target, mode in (
            (0, os.devnull, os.O_RDONLY),
            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ):
            opened = os.open(target, mode, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        tempfile.tempdir = None  # TMPDIR is the task's
        sys.path[0] = request["cwd"]  # what `python -m` puts first (the zygote's was this directory)
        sys.argv = ["invoke", *request["argv"]]
        _become_invoke_main()
        code = _invoke(request["argv"])
    finally:
        try:
            atexit._run_exitfuncs()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def _become_invoke_main() -> None:
    """``__main__`` is invoke's, as under ``python -m invoke`` (a spawned worker process, such as the
    board's chart drawers, then prepares itself from it, not from this file)."""
    import types
    from importlib.util import find_spec

    spec = find_spec("invoke.__main__")
    assert spec is not None
    main = types.ModuleType("__main__")
    main.__spec__, main.__file__ = spec, spec.origin
    sys.modules["__main__"] = main


def _invoke(argv: list[str]) -> int:
    """``python -m invoke argv``'s exit code, with the interpreter's handling of SystemExit and of an
    uncaught exception."""
    from invoke.main import program

    try:
        program.run(["invoke", *argv])
    except SystemExit as exit_:
        if exit_.code is None:
            return 0
        if isinstance(exit_.code, int):
            return exit_.code
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


# --- the test process's side --------------------------------------------------------------------------


class Zygote:
    """The test process's zygote: started on first use, stopped when the test process ends."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="zygote-"))
        self.socket = str(self._dir / "socket")
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.socket],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self._dir / "log", "wb"),  # noqa: SIM115 - the zygote's, for its whole life
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"the CLI zygote did not start: {(self._dir / 'log').read_text()[-2000:]}")
        atexit.register(self.stop)

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def run(
        self, argv: list[str], cwd: Path, env: dict[str, str], timeout: float | None
    ) -> subprocess.CompletedProcess[str]:
        """``python -m invoke *argv`` in ``cwd`` with exactly ``env``: like ``subprocess.run`` with
        captured text output and no check (raises TimeoutExpired after killing the task)."""
        with tempfile.TemporaryDirectory(dir=self._dir) as scratch:
            out, err = Path(scratch, "stdout"), Path(scratch, "stderr")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(self.socket)
                request = {"argv": argv, "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err)}
                conn.sendall(json.dumps(request).encode() + b"\n")
                conn.settimeout(timeout)
                with conn.makefile("r", encoding="utf-8") as answers:
                    pid = int(answers.readline())
                    try:
                        code = int(answers.readline())
                    except TimeoutError:
                        os.kill(pid, signal.SIGKILL)
                        raise subprocess.TimeoutExpired(["invoke", *argv], timeout or 0) from None
            return subprocess.CompletedProcess(
                ["invoke", *argv], code, out.read_text(errors="replace"), err.read_text(errors="replace")
            )


_ZYGOTE: list[Zygote] = []


def run_invoke(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float | None = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m invoke *argv`` in ``cwd`` with exactly ``env`` (exit code, stdout, stderr; never raises
    on failure): a child of this test process's zygote, started on first use. TRADAI_TEST_COLD_CLI=1
    starts a new interpreter instead."""
    if os.environ.get("TRADAI_TEST_COLD_CLI"):
        return subprocess.run([sys.executable, "-m", "invoke", *argv], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
    if not _ZYGOTE or _ZYGOTE[0].process.poll() is not None:
        _ZYGOTE[:] = [Zygote()]
    return _ZYGOTE[0].run(argv, cwd, env, timeout)


if __name__ == "__main__":
    serve(sys.argv[1])
