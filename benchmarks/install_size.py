"""What a bot installs: a fresh base install, base + the bot extra (Freqtrade) and the full install.

    .venv/bin/python benchmarks/install_size.py [--keep DIR] [--rounds 5]

Builds three fresh venvs from a copy of this checkout, one after the other, with the same pip
cache (warm after the project's own install): ``pip install <checkout>`` (the base: a bot's
start-up check), ``pip install '<checkout>[bot]'`` (what a bot container installs: the check
and Freqtrade) and ``pip install '<checkout>[all]'`` (training, the MLflow client and server).
Prints each one's wall time and installed size (du of the venv) and their ratios, then the
start-up of ``python -m tradai_release.runtime --help`` and ``tools/r2_hub.py --help`` in the
base venv against ``python -c pass`` of the same interpreter (medians of --rounds, alternating).
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_checkout(into: Path) -> Path:
    """The files pip builds the package from, without build leftovers."""
    source = into / "source"
    ignore = shutil.ignore_patterns("*.egg-info", "__pycache__", "build")
    shutil.copytree(ROOT / "tools", source / "tools", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    return source


def build_venv(where: Path, requirement: str) -> float:
    """Seconds to create a venv and pip install ``requirement`` into it."""
    home = pwd.getpwuid(os.getuid()).pw_dir
    env = {**os.environ, "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", f"{home}/.cache/pip")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    subprocess.run([str(where / "bin" / "pip"), "install", "--quiet", requirement], check=True, env=env)
    return time.perf_counter() - started


def size_mb(path: Path) -> float:
    done = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0]) / 1024


def start_up(command: list[str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=cwd, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the venvs here and keep them (default: a temp dir)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="install-size-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        source = copy_checkout(work)
        built = {
            "base": build_venv(work / "base", str(source)),
            "base + [bot]": build_venv(work / "bot", f"{source}[bot]"),
            "full [all]": build_venv(work / "full", f"{source}[all]"),
        }
        sizes = dict(zip(built, (size_mb(work / name) for name in ("base", "bot", "full")), strict=True))
        full_s, full_mb = built["full [all]"], sizes["full [all]"]
        print(f"{'install':<14}{'wall s':>10}{'size MB':>10}{'time/full':>11}{'size/full':>11}")
        for name, seconds in built.items():
            ratios = f"{seconds / full_s:>11.2f}{sizes[name] / full_mb:>11.2f}"
            print(f"{name:<14}{seconds:>10.1f}{sizes[name]:>10.0f}{ratios}")

        python = str(work / "base" / "bin" / "python")
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "runtime --help": [python, "-m", "tradai_release.runtime", "--help"],
            "r2_hub.py --help": [python, str(ROOT / "tools" / "r2_hub.py"), "--help"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                times[name].append(start_up(command, work))
        baseline = statistics.median(times["python -c pass"])
        print(f"\nstart-up in the base venv, median of {args.rounds}")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:<18}{median:>8.3f} s {median / baseline:>7.2f}x python -c pass")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
