"""Benchmark: training time per example strategy, what Freqtrade's held-out backtest costs in it, and parity.

Prints, per strategy, the wall time of a full ``train_strategy`` (features, both ensembles,
native files, ONNX exports, parity check, Freqtrade's held-out backtest, metadata, atomic
rename) next to a baseline run in the same process: fitting the same two ensembles on the same
rows and nothing else. The ratio is what export, parity, the backtest and writing cost on top
of the fitting itself.

Then the held-out backtest on its own: Freqtrade's (``result.extra["backtest_seconds"]``; the
first strategy's first run also pays Freqtrade's import, shown apart) against the vectorised
backtester training used before Freqtrade (its module read from git history, ``--before REF``),
run on the same held-out rows with the same models' signal. "train before" is the full training
time with the old backtester's cost in place of Freqtrade's.

    python benchmarks/training.py [--repeat 3] [--before REF]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_MODULE = "tools/tradai_release/training/backtest.py"


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def old_backtester(ref: str | None) -> types.ModuleType:
    """The pre-Freqtrade backtester, loaded from git history (it is no longer in the tree): at ``ref``,
    else as it was just before the commit that deleted it."""
    if ref is None:
        deleted = git("log", "--diff-filter=D", "-1", "--format=%H", "--", OLD_MODULE).strip()
        ref = f"{deleted}^"
    source = git("show", f"{ref}:{OLD_MODULE}")
    module = types.ModuleType("old_backtest")
    exec(compile(source, f"{ref}:{OLD_MODULE}", "exec"), module.__dict__)  # our own history, not input
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per strategy; the median is printed")
    parser.add_argument("--before", help="git ref of the home-made backtester (default: before its deletion)")
    args = parser.parse_args()

    started = time.perf_counter()
    import freqtrade.optimize.backtesting  # noqa: F401 - timed: the first backtest of a process pays it

    import_s = time.perf_counter() - started
    from tradai_release.bot.models import ReleasedModels
    from tradai_release.training import train_strategy
    from tradai_release.training.ensemble import fit_ensemble
    from tradai_release.training.features import build_dataset, load_candles
    from tradai_release.training.train import data_file, load_strategy, strategy_names

    old = old_backtester(args.before)
    header = ("strategy", "rows", "features", "train s", "fit-only s", "ratio")
    print("{:<16} {:>6} {:>8} {:>8} {:>10} {:>6}  onnx max |diff|".format(*header))
    timings: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in strategy_names(ROOT):
            spec = load_strategy(ROOT, name)
            path, display = data_file(ROOT, name)
            full, fit, freqtrade_bt, old_bt = [], [], [], []
            parity = 0.0
            for run in range(args.repeat):
                started = time.perf_counter()
                result = train_strategy(ROOT, name, Path(scratch) / f"models-{run}")
                full.append(time.perf_counter() - started)
                parity = max(parity, float(result.extra["onnx_parity_max_abs_diff"]))
                freqtrade_bt.append(float(result.extra["backtest_seconds"]))

                started = time.perf_counter()
                data = build_dataset(load_candles(path, display), spec.ml_config)
                fit_ensemble(data.x_train, data.signal_train, spec.ml_config.seed)
                fit_ensemble(data.x_train, data.position_train, spec.ml_config.seed)
                fit.append(time.perf_counter() - started)

                signal = ReleasedModels.load(result.model_dir).signal.probability(data.x_test)
                periods = old.periods_per_year(spec.timeframe)
                started = time.perf_counter()
                old.backtest(signal, data.next_return_test, fee=spec.ml_config.fee, periods=periods)
                old.equity_curve(signal, data.next_return_test, fee=spec.ml_config.fee)
                old_bt.append(time.perf_counter() - started)
            t_full, t_fit = statistics.median(full), statistics.median(fit)
            timings[name] = (t_full, statistics.median(freqtrade_bt), statistics.median(old_bt))
            print(
                f"{name:<16} {result.data_rows:>6} {result.feature_count:>8} {t_full:>8.2f} {t_fit:>10.2f} "
                f"{t_full / t_fit:>6.2f}  {parity:.2e}"
            )

    print(f"\nheld-out backtest per strategy, median of {args.repeat} (Freqtrade's import: {import_s:.2f} s, "
          "paid once per process)")
    header = ("strategy", "freqtrade s", "before s", "ratio", "train s", "train before s", "ratio")
    print("{:<16} {:>11} {:>9} {:>9} {:>8} {:>14} {:>6}".format(*header))
    for name, (t_full, t_freqtrade, t_old) in timings.items():
        before = t_full - t_freqtrade + t_old
        print(
            f"{name:<16} {t_freqtrade:>11.3f} {t_old:>9.4f} {t_freqtrade / t_old:>9.0f} {t_full:>8.2f} "
            f"{before:>14.2f} {t_full / before:>6.2f}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "tools"))
    main()
