"""Benchmark: training time per example strategy, and the ONNX parity of its exports.

Prints, per strategy, the wall time of a full ``train_strategy`` (features, both ensembles,
native files, ONNX exports, parity check, metadata, atomic rename) next to a baseline run in
the same process: fitting the same two ensembles on the same rows and nothing else. The
ratio is what export, parity checking and writing cost on top of the fitting itself.

    python benchmarks/training.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per strategy; the median is printed")
    args = parser.parse_args()

    from tradai_release.training import train_strategy
    from tradai_release.training.ensemble import fit_ensemble
    from tradai_release.training.features import build_dataset, load_candles
    from tradai_release.training.train import data_file, load_strategy, strategy_names

    header = ("strategy", "rows", "features", "train s", "fit-only s", "ratio")
    print("{:<16} {:>6} {:>8} {:>8} {:>10} {:>6}  onnx max |diff|".format(*header))
    with tempfile.TemporaryDirectory() as scratch:
        for name in strategy_names(ROOT):
            spec = load_strategy(ROOT, name)
            path, display = data_file(ROOT, name)
            full, fit = [], []
            parity = 0.0
            for run in range(args.repeat):
                started = time.perf_counter()
                result = train_strategy(ROOT, name, Path(scratch) / f"models-{run}")
                full.append(time.perf_counter() - started)
                parity = max(parity, float(result.extra["onnx_parity_max_abs_diff"]))

                started = time.perf_counter()
                data = build_dataset(load_candles(path, display), spec.ml_config)
                fit_ensemble(data.x_train, data.signal_train, spec.ml_config.seed)
                fit_ensemble(data.x_train, data.position_train, spec.ml_config.seed)
                fit.append(time.perf_counter() - started)
            t_full, t_fit = statistics.median(full), statistics.median(fit)
            print(
                f"{name:<16} {result.data_rows:>6} {result.feature_count:>8} {t_full:>8.2f} {t_fit:>10.2f} "
                f"{t_full / t_fit:>6.2f}  {parity:.2e}"
            )


if __name__ == "__main__":
    main()
