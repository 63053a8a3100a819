"""Real loopback servers for the end-to-end suite: moto_server (S3 + DynamoDB) and mlflow server.

Each is started once per test run by a session fixture in conftest.py and stopped by PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
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
    port = port or free_port()
    log = workdir / "mlflow_server.log"
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
