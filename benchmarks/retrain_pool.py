"""Benchmark: ``invoke retrain --all`` over the example strategies, one after another vs a process pool.

A scratch copy of this repository's strategies/ and releases/ is bootstrapped on the embedded default
(trained, pushed, registered and pinned in dev), then every strategy is retrained in dev, alternately
with one training process (the baseline, the same process) and with a pool of one process per CPU.
On the committed data retraining reproduces the champions' files, so each round does the same work:
training (fit, ONNX export and parity, Freqtrade's held-out backtest) and comparing the files with the
pinned tags; nothing is registered or proposed, and the next round starts from the same state.

Then the projection for a team of ``--strategies`` strategies on a GitHub Actions matrix of ``--jobs``
jobs, each job training its share one after another on a 2-core runner (``--setup`` seconds of
checkout and hash-locked install per job, measured by benchmarks/install_size.py).

    python benchmarks/retrain_pool.py [--rounds 2] [--strategies 200] [--jobs 20] [--setup 66]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def scratch_repository(root: Path) -> object:
    """strategies/ and releases/ of this checkout in a new git repository, bootstrapped in dev."""
    from tradai_release.core.settings import Settings
    from tradai_release.workflows.bootstrap import bootstrap

    repo = root / "repo"
    repo.mkdir()
    for part in ("strategies", "releases"):
        shutil.copytree(ROOT / part, repo / part)
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*identity, "commit", "-q", "-m", "init"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    settings = Settings(repo=repo, state_dir=root / "state")
    bootstrap(settings, envs=["dev"], commit=True, apply=False)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--strategies", type=int, default=200, help="strategies of the projected team")
    parser.add_argument("--jobs", type=int, default=20, help="jobs of the projected matrix (max-parallel)")
    parser.add_argument("--setup", type=float, default=66.0, help="seconds a job spends before training")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tools"))
    from tradai_release.repository.environments import environment
    from tradai_release.workflows.retrain_all import machine_workers, retrain_all, warm_pool

    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as scratch:
        warm_pool()  # as `invoke retrain --all` does before its retraining check
        settings = scratch_repository(Path(scratch))
        dev = environment(settings, "dev")  # type: ignore[arg-type]
        names = sorted(p.name for p in (ROOT / "strategies").iterdir() if (p / "tradai.yaml").is_file())
        cpus = machine_workers()
        sequential: list[float] = []
        pooled: list[float] = []
        for _ in range(args.rounds):
            for workers, into in ((1, sequential), (cpus, pooled)):
                run = retrain_all(settings, names, dev, workers=workers, send=False)  # type: ignore[arg-type]
                assert not run.failed, run.failed
                assert all(result.decision == "unchanged" for result in run.results)
                into.append(run.seconds)

    one, many = statistics.median(sequential), statistics.median(pooled)
    per = one / len(names)
    print(f"retrain --all over {len(names)} example strategies ({', '.join(names)}), "
          f"median of {args.rounds}:")
    print(f"  one training process : {one:6.1f} s  ({per:.1f} s per strategy)   rounds {sequential}")
    print(f"  pool of {cpus} processes : {many:6.1f} s                          rounds {pooled}")
    print(f"  speedup              : {one / many:.2f}x on {cpus} CPUs")
    share = math.ceil(args.strategies / args.jobs)
    wall = args.setup + share * per
    print(f"projection: {args.strategies} strategies on a matrix of {args.jobs} jobs "
          f"(max-parallel {args.jobs})")
    print(f"  each job trains ceil({args.strategies}/{args.jobs}) = {share} strategies one after another:")
    print(f"  {args.setup:.0f} s setup + {share} x {per:.1f} s = {wall:.0f} s ({wall / 60:.1f} min) wall")
    serial = args.strategies * per
    print(f"  vs one job training all {args.strategies} in turn: {serial:.0f} s ({serial / 60:.1f} min); "
          f"with its own pool of {cpus}: {serial / (one / many) / 60:.1f} min")


if __name__ == "__main__":
    main()
