"""Real loopback servers for the end-to-end suite: moto_server (S3 + DynamoDB) and mlflow server.

Each is started once per test run, by the first xdist worker whose test needs it (``shared_server``),
reused by the other workers, and stopped by PID when the run ends (``stop_shared_servers``).
Only tests marked ``e2e`` may start one (``allow_servers``): the quick run starts none.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)

    def kill(self) -> None:
        """Die at once, as a crashed server does (no graceful shutdown)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _wait_until_up(server: Server, probe: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early; log:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + probe, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(
        f"server at {server.url} did not start in {timeout}s; log:\n{server.log.read_text()[-3000:]}"
    )


class _Permission:
    """Whether the running test may start a server: conftest sets it before each test's setup."""

    test: str | None = None  # the running test's node id when it is not marked e2e


def allow_servers(test: str, e2e: bool) -> None:
    """Before ``test`` runs: it may start servers only when it is marked e2e."""
    _Permission.test = None if e2e else test


def require_e2e(program: str) -> None:
    """Refuse to start ``program`` (a server, act) for a test not marked e2e."""
    if _Permission.test is not None:
        raise RuntimeError(
            f"{_Permission.test} starts {program} but is not marked e2e "
            "(invoke test --quick must start no server): mark it pytest.mark.e2e"
        )


def _start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    require_e2e(Path(cmd[0]).name)
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def start_moto(workdir: Path) -> Server:
    port = free_port()
    log = workdir / "moto_server.log"
    process = _start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    _wait_until_up(server, "/moto-api/", timeout=60)
    return server


def start_mlflow(workdir: Path, port: int | None = None) -> Server:
    """An mlflow server on SQLite in ``workdir``; started again on the same ``workdir`` and ``port``,
    it serves the same registry at the same URL (a restart)."""
    from tradai_release.registry.adapter.sqlite_store import create_from_template

    port = port or free_port()
    log = workdir / "mlflow_server.log"
    create_from_template(workdir / "mlflow.db")  # as the product's own new SQLite registries: no migrations
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination",
        str(workdir / "mlartifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    process = _start(cmd, log, env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    server = Server(f"http://127.0.0.1:{port}", process, log)
    _wait_until_up(server, "/health", timeout=120)
    return server


@contextmanager
def loopback_pair(workdir: Path) -> Iterator[tuple[Server, Server]]:
    """A moto_server and an mlflow server (its files under ``workdir/mlflow``), stopped on the way out."""
    moto = start_moto(workdir)
    try:
        mlflow_dir = workdir / "mlflow"
        mlflow_dir.mkdir()
        mlflow = start_mlflow(mlflow_dir)
        try:
            yield moto, mlflow
        finally:
            mlflow.stop()
    finally:
        moto.stop()


class OneWriteAtATime:
    """A table whose conditional writes reach moto_server one at a time.

    moto_server checks a write's conditions and then writes without a lock, so two truly
    simultaneous conditional writes to one item can both pass (DynamoDB is atomic). Racing
    tests wrap each racer's table in this so they test our conditions, not moto's threads.
    With a ``barrier``, the first write of each racer waits until every racer got there
    (all have read the same state), so all but one must lose the condition.
    """

    _lock = threading.Lock()

    def __init__(self, table: Any, barrier: threading.Barrier | None = None) -> None:
        self._table, self._barrier = table, barrier

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def _serialized(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self._barrier is not None:
            barrier, self._barrier = self._barrier, None
            barrier.wait(timeout=60)
        with self._lock:
            getattr(self._table, method)(*args, **kwargs)

    def put(self, *args: Any, **kwargs: Any) -> None:
        self._serialized("put", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> None:
        self._serialized("delete", *args, **kwargs)

    def transact(self, *args: Any, **kwargs: Any) -> None:
        self._serialized("transact", *args, **kwargs)


# --- one pair per test run, shared by the xdist workers ------------------------------------------------

STATE = "servers.json"


def _proc_stat(pid: str) -> tuple[str, int] | None:
    """The state letter and process group of process ``pid`` (None when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return fields[0], int(fields[2])


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, killed but not yet reaped by its parent, does not)."""
    stat = _proc_stat(str(pid))
    return stat is not None and stat[0] != "Z"


def _group_running(pgid: int) -> bool:
    """True while any process of group ``pgid`` runs (mlflow server's workers are its children)."""
    for entry in Path("/proc").iterdir():
        stat = _proc_stat(entry.name) if entry.name.isdigit() else None
        if stat is not None and stat[0] != "Z" and stat[1] == pgid:
            return True
    return False


def shared_server(root: Path, name: str, start: Callable[[Path], Server]) -> str:
    """The URL of server ``name`` for this test run: started in ``root/name`` by the first caller, found
    in ``root/servers.json`` by the others (``root`` is shared by every worker of the run)."""
    with FileLock(root / f"{STATE}.lock"):
        state_file = root / STATE
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        known = state.get(name)
        if known is not None and _running(known["pid"]):
            return str(known["url"])
        workdir = root / name
        workdir.mkdir(exist_ok=True)
        server = start(workdir)
        state[name] = {"url": server.url, "pid": server.process.pid, "log": str(server.log)}
        state_file.write_text(json.dumps(state, indent=2) + "\n")
        return server.url


def stop_shared_servers(root: Path) -> list[str]:
    """Stop every server ``root/servers.json`` records, by PID (each leads its own process group);
    returns the names of those that were still running."""
    with FileLock(root / f"{STATE}.lock"):
        state_file = root / STATE
        if not state_file.exists():
            return []
        state = json.loads(state_file.read_text())
        groups = {name: int(known["pid"]) for name, known in sorted(state.items())}
        stopped = _stop_groups(groups)
        state_file.unlink()
        return stopped


def _stop_groups(groups: dict[str, int], grace: float = 0.5) -> list[str]:
    """SIGTERM every process group of ``groups`` at once, SIGKILL what still runs after ``grace`` s (the
    run is over: nothing they hold is read again, and uvicorn's graceful shutdown alone took 2 s); the
    names of those that were running."""
    running = [name for name, pgid in groups.items() if _group_running(pgid)]
    survivors = running
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for name in survivors:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(groups[name], sig)
        deadline = time.monotonic() + wait
        while any(_group_running(groups[name]) for name in survivors) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [name for name in survivors if _group_running(groups[name])]
    if survivors:
        raise RuntimeError(f"server process groups {survivors} survived SIGKILL")
    return running
