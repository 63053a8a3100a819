"""How long one ModelRegistrar.register takes on SQLite (goal < 1 s), against a bare create_model_version.

Also prints what registering files a version already has costs (one tag search, nothing written, the
existing version returned as a duplicate), and how many registry calls ``versions()`` needs for many
models, against one call per version.
Run: .venv/bin/python benchmarks/registration.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from registry_helpers import training_result
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.registry.registrar import ModelRegistrar

    with tempfile.TemporaryDirectory(prefix="tradai-bench-") as scratch:
        root = Path(scratch)
        os.chdir(root)  # anything MLflow wrote to ./mlruns would show up here
        registry = MlflowRegistry(f"sqlite:///{root}/mlflow.db", str(root / "artifacts"))
        registrar = ModelRegistrar(registry)
        result = training_result(root, "bench_strategy")

        started = time.perf_counter()
        registrar.register(result)
        first = time.perf_counter() - started

        timings = []
        for _ in range(args.rounds):
            fresh = training_result(root, "bench_strategy")  # new files (its metadata differs): a new version
            started = time.perf_counter()
            registrar.register(fresh, r2_tag="bench/v")
            timings.append(time.perf_counter() - started)

        duplicates, duplicate_calls = [], []
        for _ in range(args.rounds):
            before = registry.calls
            started = time.perf_counter()
            found = registrar.register(fresh, r2_tag="bench/again")
            duplicates.append(time.perf_counter() - started)
            duplicate_calls.append(registry.calls - before)
            assert found.duplicate
        listed = registry.versions(["bench_strategy"])["bench_strategy"]

        client = registry.client
        experiment_id = registry.experiment_id("baseline")
        client.create_registered_model("baseline_model")
        baseline = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            run = client.create_run(experiment_id)
            source = f"{run.info.artifact_uri}/model"
            client.create_model_version("baseline_model", source, run_id=run.info.run_id)
            baseline.append(time.perf_counter() - started)

        register_s = statistics.median(timings)
        baseline_s = statistics.median(baseline)
        print(f"first registration (creates the database): {first:.3f} s")
        print(f"ModelRegistrar.register, median of {args.rounds}: {register_s:.3f} s  (goal < 1 s)")
        print(f"baseline create_run + create_model_version, median of {args.rounds}: {baseline_s:.3f} s")
        print(f"ratio register / baseline: {register_s / baseline_s:.1f}x")
        print(
            f"register of files v{listed[-1].version} already has, median of {args.rounds}: "
            f"{statistics.median(duplicates):.3f} s, {max(duplicate_calls)} registry call(s); "
            f"{len(listed)} versions after {args.rounds + 1 + args.rounds} registrations"
        )

        names = [f"bench_model_{i}" for i in range(60)]
        for name in names[:10]:
            for _ in range(3):
                registrar.register(training_result(root, name))
        versions = sum(len(listed) for listed in registry.versions(names).values())
        before = registry.calls
        started = time.perf_counter()
        registry.versions(names)
        elapsed = time.perf_counter() - started
        batched = registry.calls - before
        print(f"versions() of {len(names)} models ({versions} versions): {batched} calls in {elapsed:.3f} s; "
              f"one call per model and version would be >= {len(names) + versions} calls")
        print(f"./mlruns created: {(root / 'mlruns').exists()}")


if __name__ == "__main__":
    main()
