"""Report at scale: the release board of N strategies x 3 envs x 5 profiles (15 manifests), against `plan`.

The state is plan_scale's (a generated repository, one version per model, on a loopback moto_server
and mlflow server), applied in every environment; each version then gets a distinct held-out equity
curve tag (as training records it) and prod a recorded drift check per strategy, so the site draws an
equity chart per strategy and environment and a PSI chart per strategy in prod. Measured: the wall
time of `invoke plan` for every environment (in process, warm), then the report of the same state:
time (cold: first in the process, matplotlib and Jinja2 imported; warm: again; and the warm time split
into reading the board and writing pages and charts), pages, charts, bytes.

    .venv/bin/python benchmarks/report_scale.py [--strategies 200]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tradai_release.engine.context import ReleaseContext
from tradai_release.repository.environments import environment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from plan_scale import ENVS, build  # noqa: E402

import servers  # noqa: E402


def decorate(settings: Any, names: list[str]) -> None:
    """A distinct equity curve tag on every version, and a recorded drift check of every strategy in prod."""
    from tradai_release.core.equity import EQUITY_TAG, EquityCurve, downsample
    from tradai_release.domain.monitor.check import LiveModel, StrategyDrift
    from tradai_release.domain.monitor.scores import FEATURE, PsiRow, Thresholds
    from tradai_release.domain.monitor.window import Window
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.workflows.drift import DriftReport, record_checks

    for env in ENVS:
        registry = MlflowRegistry.for_env(environment(settings, env), settings)
        for index, name in enumerate(names):
            rng = random.Random(index)
            equity, value = [], 1.0
            for _ in range(1000):
                value *= 1 + rng.gauss(0.0003, 0.01)
                equity.append(value)
            curve = EquityCurve(downsample(equity), 1000, "2024-04-01T00:00:00Z", "2024-05-12T15:00:00Z")
            registry.set_version_tag(name, 1, EQUITY_TAG, curve.to_tag())
    thresholds = Thresholds()
    strategies = []
    for index, name in enumerate(names):
        rng = random.Random(index)
        rows = tuple(
            PsiRow(FEATURE, f"feature_{k:02d}", value, thresholds.level(value))
            for k, value in enumerate(rng.uniform(0, 0.3) for _ in range(19))
        )
        live = LiveModel(name, name, 1, "vbench", "0" * 64, (1, 2, 3, 4, 5))
        window = Window("bench", 500, "2024-04-22T12:00:00Z", "2024-05-13T07:00:00Z")
        strategies.append(StrategyDrift(live, window, rows, "hub tag vbench"))
    record_checks(settings, DriftReport("prod", thresholds, tuple(strategies)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=200)
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # loopback moto only, never a real account
        os.environ[name] = "testing"
    os.environ.pop("AWS_PROFILE", None)
    from tradai_release.engine.apply import apply_env
    from tradai_release.engine.plan import plan_env

    with tempfile.TemporaryDirectory(prefix="tradai-report-bench-") as temp:
        scratch = Path(temp)
        with servers.loopback_pair(scratch) as (moto, mlflow):
            print(f"state: {args.strategies} strategies x {len(ENVS)} envs x 5 profiles")
            settings = build(args.strategies, moto.url, mlflow.url, scratch)
            # A loaded 2-core machine answers a 200-strategy first apply slowly: time, not failure.
            settings = settings.model_copy(update={"backend_timeout_seconds": 60.0})
            for env in ENVS:
                apply_env(ReleaseContext.open(settings, env), actor="bench")
            from tradai_release.repository.tree import ReleaseTree

            names = ReleaseTree.work(settings.repo).strategy_names()
            started = time.perf_counter()
            decorate(settings, names)
            print(f"  equity tags and prod drift records in {time.perf_counter() - started:.1f}s")
            plan_env(
                ReleaseContext.open(settings, ENVS[0])
            )  # imports and clients warm, as for the report's second run
            started = time.perf_counter()
            for env in ENVS:
                assert plan_env(ReleaseContext.open(settings, env)).empty
            plan_s = time.perf_counter() - started
            print(f"  invoke plan of {', '.join(ENVS)}: {plan_s:.2f}s")
            from tradai_release.report import build_site
            from tradai_release.report.board import read_board
            from tradai_release.report.site import write_site

            cold = build_site(settings, scratch / "site")
            warm = build_site(settings, scratch / "site")
            started = time.perf_counter()
            board = read_board(settings)
            read_s = time.perf_counter() - started
            started = time.perf_counter()
            write_site(board, scratch / "parts")
            write_s = time.perf_counter() - started
    for label, result in (("cold", cold), ("warm", warm)):
        print(
            f"  report ({label}): {result.seconds:.2f}s, {result.pages} pages, {result.charts} charts, "
            f"{result.bytes / 1e6:.1f} MB ({result.bytes / max(result.pages, 1) / 1e3:.0f} KB per page)"
        )
    print(f"  of which: reading the board {read_s:.1f}s, pages and charts {write_s:.1f}s")
    print(
        f"report of {args.strategies} strategies x 15 manifests: {warm.seconds:.1f}s warm "
        f"({warm.seconds / plan_s:.1f}x the plans of every environment, {plan_s:.1f}s; reading "
        f"{read_s / plan_s:.1f}x), {cold.seconds:.1f}s cold; {warm.bytes / 1e6:.1f} MB in {warm.pages} pages "
        f"and {warm.charts} charts"
    )


if __name__ == "__main__":
    main()
