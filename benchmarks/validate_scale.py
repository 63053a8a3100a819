"""Offline validation at scale: 200 strategies x 15 manifests in a temporary git repository.

Prints wall times of offline validation (in-process and via `invoke validate --offline`)
and of `invoke --list`, against goals of < 1 s and < 0.5 s, plus the ratio to a plain
``yaml.safe_load`` / ``json.loads`` of the same files in the same process (the floor
any validator that parses every file has to pay).

    .venv/bin/python benchmarks/validate_scale.py [--strategies 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from helpers import ML_CONFIG, TAG_SHA, strategy_yaml  # noqa: E402
from tradai_release.core.confighash import config_hash  # noqa: E402
from tradai_release.core.yamlio import load_yaml  # noqa: E402
from tradai_release.repository.manifest import manifest_path  # noqa: E402
from tradai_release.repository.policy import DEFAULT_ENVIRONMENTS as ENVIRONMENTS  # noqa: E402

PROFILES = (1, 2, 3, 4, 5)


def generate(root: Path, count: int) -> int:
    """Write ``count`` strategies and every (env, profile) manifest pinning all of them; commit."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    hashes = {}
    for index in range(count):
        name = f"Strategy{index:03d}"
        directory = root / "strategies" / name
        directory.mkdir(parents=True)
        text = strategy_yaml(name).replace("stake_amount: 1000", f"stake_amount: {1000 + index}")
        (directory / "tradai.yaml").write_text(text)
        (directory / "ml_config.json").write_text(json.dumps(ML_CONFIG, indent=2))
        hashes[name] = config_hash(load_yaml(text.encode(), name).data)
    files = 2 * count
    for environment in ENVIRONMENTS:
        for profile in PROFILES:
            lines = [
                f"# profile {profile} of {environment}",
                f"profile: {profile}",
                f"environment: {environment}",
                f"description: generated profile {profile}",
                "artifacts:",
                f"  tag: v20260415-p{profile}",
                f"  sha256: {TAG_SHA}",
                "strategies:",
            ]
            for name, digest in hashes.items():
                lines += [
                    f"  {name}:",
                    f"    config: {digest}",
                    "    model:",
                    f"      name: {name}",
                    f"      production: {profile}",
                ]
            path = root / manifest_path(environment, profile)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n")
            files += 1
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
    )
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-q", "-m", "generated"], check=True, env=env)
    return files


def best_of(runs: int, body: object) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        body()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def wall(command: list[str], cwd: Path, runs: int = 3) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = dict(os.environ, TRADAI_REPO=str(cwd))
    done: subprocess.CompletedProcess[str] | None = None
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
    assert done is not None
    return min(times), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=200)
    args = parser.parse_args()

    import yaml

    from tradai_release.repository.gitrepo import GitTree
    from tradai_release.repository.rules import validate_offline
    from tradai_release.repository.tree import WorkTree, load_release_repo

    with tempfile.TemporaryDirectory(prefix="tradai-bench-") as temp:
        root = Path(temp) / "repo"
        files = generate(root, args.strategies)
        manifests = len(ENVIRONMENTS) * len(PROFILES)
        print(
            f"generated {args.strategies} strategies x {manifests} manifests "
            f"({files} files, {args.strategies * manifests} pins) in a git repo"
        )

        problems = validate_offline(WorkTree(root))
        assert problems == [], problems[:3]

        paths = sorted(
            str(p) for p in root.rglob("*") if p.suffix in (".yaml", ".json") and ".git" not in p.parts
        )
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        def plain() -> None:
            for path in paths:
                with open(path, "rb") as handle:
                    if path.endswith(".json"):
                        json.load(handle)
                    else:
                        yaml.load(handle, Loader=loader)

        baseline = best_of(3, plain)
        from tradai_release.core import schema

        def fresh() -> None:
            schema._checker.cache_clear()  # no memo carried over from the previous run
            validate_offline(WorkTree(root))

        in_process = best_of(3, fresh)

        def from_git() -> None:
            schema._checker.cache_clear()
            with GitTree(root, "HEAD") as tree:
                load_release_repo(tree)

        git_load = best_of(3, from_git)

        invoke = [sys.executable, "-m", "invoke", "--search-root", str(ROOT)]
        cli, done = wall([*invoke, "validate", "--offline"], root)
        assert done.returncode == 0, done.stderr
        listing, done = wall([*invoke, "--list"], root)
        assert done.returncode == 0, done.stderr
        interpreter, _ = wall([sys.executable, "-c", "pass"], root)

        print(
            f"plain safe_load/json.load of the same {len(paths)} files : {baseline * 1000:8.1f} ms (baseline)"
        )
        print(
            f"validate_offline in-process (WorkTree)          : {in_process * 1000:8.1f} ms "
            f"({in_process / baseline:.1f}x baseline)"
        )
        print(
            f"load_release_repo from git objects (GitTree)    : {git_load * 1000:8.1f} ms "
            f"({git_load / baseline:.1f}x baseline)"
        )
        print(
            f"`invoke validate --offline` wall time           : {cli * 1000:8.1f} ms (goal < 1000 ms) "
            f"{'OK' if cli < 1.0 else 'OVER'}"
        )
        print(
            f"`invoke --list` wall time                       : {listing * 1000:8.1f} ms (goal < 500 ms) "
            f"{'OK' if listing < 0.5 else 'OVER'}"
        )
        print(f"bare `python -c pass` (interpreter start)       : {interpreter * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
