"""Shared fixtures: every test runs with fake AWS credentials, a temporary HOME and state dir."""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tradai_release.repository.bots import VARIABLES

if TYPE_CHECKING:
    from tradai_release.training.result import TrainingResult

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """No test can reach a real account, the developer's home or the repo's own .tradai/."""
    home = tmp_path_factory.mktemp("home")
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TRADAI_STATE_DIR", str(state))
    for var in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "TRADAI_AWS_ENDPOINT_URL",
        "TRADAI_HUB_URI",
        "TRADAI_HUB_ENDPOINT_URL",
        "TRADAI_HUB_REGION",
        "TRADAI_WEBHOOK_URL",
        "TRADAI_TRACE_ID",
        "TRADAI_REPO",
        "TRADAI_ACTOR",
        "TRADAI_DEPLOY_TARGET",
        *VARIABLES,  # a bot's pins (a deployment's variables)
        "MLFLOW_TRACKING_URI",
        "CF_R2_ACCESS_KEY_ID",
        "CF_R2_SECRET_ACCESS_KEY",
        "TRADAI_LIVE_TRADING",
        "TRADAI_EXCHANGE_API_URL",
        "FREQTRADE__EXCHANGE__KEY",
        "FREQTRADE__EXCHANGE__SECRET",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "tradai-test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "tradai-test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.invalid")
    yield state


@pytest.fixture(scope="session", autouse=True)
def run_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user's cache for the whole run, shared by the workers and never the developer's own: what the
    product keeps there (the migrated MLflow store a new SQLite registry copies, bootstrap's trainings)
    is made once per run. Session-wide, so the run's shared fixtures (trained models, the demo) use it."""
    cache = _run_root(tmp_path_factory) / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        yield cache


@pytest.fixture(scope="session", autouse=True)
def atomic_in_process_moto() -> Iterator[None]:
    """In-process moto answers one request at a time, as S3 and DynamoDB apply each request atomically. It
    runs a request on the caller's thread without a lock, so the racing tests' threads would otherwise race
    moto's own dictionaries ("dictionary changed size during iteration"), not the product's conditions."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    unlocked = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return unlocked(self, request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BotocoreStubber, "process_request", process_request)
        yield


@pytest.fixture
def unwritable_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's cache made unusable for this test: ``XDG_CACHE_HOME`` names a file, not a directory."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    return blocked


def _run_root(factory: pytest.TempPathFactory) -> Path:
    """What the whole run shares (its servers, its trained models): the run's base temp dir, which the
    xdist workers' dirs are in."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small valid release repository (two strategies, three manifests), committed once on main.

    Modules whose tests need another repository (this project's, the embedded default's) override it."""
    from helpers import make_release_repo

    return make_release_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a real moto_server (S3 + DynamoDB) on 127.0.0.1, one per test run (shared by the workers).

    Tests sharing it must use unique bucket/table names (e.g. from ``uuid4().hex[:8]``).
    """
    from servers import shared_server, start_moto

    return shared_server(_run_root(tmp_path_factory), "moto", start_moto)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a real ``mlflow server`` on SQLite at 127.0.0.1, one per test run (shared by the workers).

    Tests sharing it must use unique registered-model names.
    """
    from servers import shared_server, start_mlflow

    return shared_server(_run_root(tmp_path_factory), "mlflow", start_mlflow)


_EARLIER_RUNS: list[threading.Thread] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """The controller removes the temp dirs of earlier runs that pytest's retention lets go, in the
    background while the tests run. pytest removes them when the session ends, in the run's tail: a full
    run leaves some 95 000 files, seconds of deleting (10 to 30 s on disk rather than in memory)."""
    factory: pytest.TempPathFactory | None = getattr(session.config, "_tmp_path_factory", None)
    if hasattr(session.config, "workerinput") or factory is None:
        return
    current = factory.getbasetemp()
    number = _run_number(current)
    if number is None:  # a --basetemp of the user's: its siblings are not pytest's
        return
    keep = int(session.config.getini("tmp_path_retention_count"))
    earlier = [path for path in current.parent.iterdir()  # as pytest's: past the retention, not locked
               if (n := _run_number(path)) is not None and n <= number - keep
               and not (path / ".lock").exists()]
    if earlier:
        thread = threading.Thread(target=_remove, args=(earlier,), name="earlier-runs", daemon=True)
        thread.start()
        _EARLIER_RUNS.append(thread)


def pytest_configure(config: pytest.Config) -> None:
    """An xdist worker ends without the interpreter's teardown (see _exit_at_once); the controller gives
    the run's bytecode prefix the installed packages' bytecode before any worker starts."""
    if hasattr(config, "workerinput"):
        import atexit

        atexit.register(_exit_at_once)  # last in, first out: the handlers registered later still run
    elif sys.pycache_prefix:
        from pycache_prefix import installed_roots, seed_prefix

        seed_prefix(Path(sys.pycache_prefix), installed_roots())


def _exit_at_once() -> None:
    """A worker's last exit handler. By now its results are sent and the controller has told it to exit;
    what the run shares (servers, temp dirs) is the controller's to stop. Tearing down everything the
    tests imported and allocated took the workers 2 to 8 s at the end of a full run, the controller
    waiting for them (xdist's teardown_nodes)."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def _run_number(path: Path) -> int | None:
    found = re.fullmatch(r"pytest-(\d+)", path.name)
    return int(found[1]) if found and path.is_dir() and not path.is_symlink() else None


def _remove(paths: list[Path]) -> None:
    """Each path renamed out of the way first (as pytest does), then deleted; and the bytecode its
    modules left in the run's PYTHONPYCACHEPREFIX (some 18 MB a run), which nothing reads again."""
    import contextlib
    import shutil
    import uuid

    from pycache_prefix import mirrored

    # The lowest priority, for this thread alone on Linux: it deletes (30 to 45 s of CPU on disk) in the
    # cores' idle time rather than in the tests'. Where there is no such call, it deletes beside them.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    for path in paths:
        garbage = path.with_name(f"garbage-{uuid.uuid4()}")
        try:
            path.rename(garbage)
        except OSError:
            continue  # gone already, or another run's cleanup took it
        shutil.rmtree(garbage, ignore_errors=True)
        if sys.pycache_prefix:
            shutil.rmtree(mirrored(Path(sys.pycache_prefix), path), ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # before pytest's own clean-up of the numbered dirs
def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or the only process) stops the run's shared servers once every worker is done."""
    config = session.config
    if hasattr(config, "workerinput"):
        return
    for thread in _EARLIER_RUNS:
        thread.join()
    # pytest keeps the factory here; it is the one whose base temp dir the workers' dirs are in.
    factory: pytest.TempPathFactory | None = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        from servers import stop_shared_servers

        stop_shared_servers(factory.getbasetemp())


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TrainingResult]]:
    """Every strategy of this checkout trained once per run from the committed candles (deterministic,
    ~8 s): the models dir and the results. Shared by the workers, so read-only: copy before changing.
    Trained through bootstrap's reuse, so a bootstrap of the same strategies in this run reuses it (or
    it reuses theirs)."""
    import pickle

    from filelock import FileLock

    from tradai_release.training.reuse import train_all_reusing

    root = _run_root(tmp_path_factory)
    models, saved = root / "trained" / "models", root / "trained" / "results.pickle"
    with FileLock(root / "trained.lock"):
        if not saved.exists():
            saved.write_bytes(pickle.dumps(train_all_reusing(REPO_ROOT, models)[0]))
        results: list[TrainingResult] = pickle.loads(saved.read_bytes())
    return models, results


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`invoke demo --json` run once per test run (about 25 s of CPU), shared by the workers: its exit
    code, stderr and parsed report (its ``workdir`` holds the scratch repository, state and board).
    Read-only: copy the workdir before changing anything in it. The caller's hub setting must not reach
    it (the demo ignores the caller's backends), so it is given one that would fail."""
    import json
    import subprocess
    import sys

    from filelock import FileLock

    root = _run_root(tmp_path_factory)
    workdir, saved = root / "demo-run" / "demo", root / "demo-run" / "outcome.json"
    with FileLock(root / "demo-run.lock"):
        if not saved.exists():
            workdir.parent.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                [sys.executable, "-m", "invoke", "demo", "--json", "--workdir", str(workdir)],
                cwd=REPO_ROOT, env={**os.environ, "TRADAI_HUB_URI": "s3://must-not-be-used"},
                capture_output=True, text=True, timeout=900, check=False,
            )
            report = json.loads(done.stdout) if done.returncode == 0 else {}
            outcome = {"returncode": done.returncode, "stderr": done.stderr, "report": report,
                       "workdir": str(workdir)}
            saved.write_text(json.dumps(outcome))
        loaded: dict[str, Any] = json.loads(saved.read_text())
    return loaded


SERVER_FIXTURES = frozenset({"moto_server", "mlflow_server"})


# The modules that take longest (invoke test --durations), started first: xdist's loadscope hands
# whole modules to the workers in collection order, and the act run (about three minutes) collected
# last, as its name sorts, was the run's tail while the other worker idled.
LONGEST_FIRST = ("test_workflows_run.py", "test_apply_failfast.py", "test_report_browser.py",
                 "test_bootstrap.py", "test_engine_embedded.py", "test_base_install.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the longest modules first; and a test that asks for a loopback server must be marked e2e,
    so ``--quick`` never starts one."""
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order inside each module, and of the other modules, stays
    unmarked = [
        item.nodeid
        for item in items
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("e2e") is None
    ]
    if unmarked:
        raise pytest.UsageError("tests using moto_server / mlflow_server must be marked e2e: "
                                + ", ".join(unmarked))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Only a test marked e2e may start a server process, even one it starts itself (servers.py)."""
    from servers import allow_servers

    allow_servers(item.nodeid, item.get_closest_marker("e2e") is not None)
