"""``invoke retrain --all``: the retraining set, trained in a process pool, concluded one by one.

Training is the CPU-bound part (fit, ONNX export, Freqtrade's backtest), so it runs in a pool of
processes sized to the machine. The processes are forked from a ``forkserver`` that imported the
training stack once (scikit-learn, XGBoost, LightGBM, ONNX, Freqtrade: seconds per interpreter), started
by :func:`warm_pool` while the retraining check runs; the server is a clean single-threaded process, so
nothing this process holds (threads of onnxruntime, MLflow or boto3) is forked. Pushing, registering,
comparing and writing each proposal branch touch the hub, the registry and git, so they run in this
process, one strategy after another. A strategy that fails (its inputs, its training or its proposal)
is reported and the others go on.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError, TradaiError

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.registry.comparator import ModelComparator
    from tradai_release.repository.environments import Environment
    from tradai_release.training.result import TrainingResult
    from tradai_release.workflows.retrain_proposal import RetrainResult
    from tradai_release.workflows.retrain_set import RetrainingSet


@dataclass(frozen=True)
class RetrainRun:
    """Every strategy of one ``retrain --all``: its outcome, or why it failed."""

    env: str
    workers: int
    results: tuple[RetrainResult, ...]
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    retraining: RetrainingSet | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "workers": self.workers,
            "retrain": [r.strategy for r in self.results] + sorted(self.failed),
            "results": [r.to_dict() for r in self.results],
            "failed": dict(sorted(self.failed.items())),
            "seconds": round(self.seconds, 3),
            "set": self.retraining.to_dict() if self.retraining is not None else None,
        }


# What a training process imports (a forkserver imports them once; each worker is forked with them).
TRAINING_MODULES: tuple[str, ...] = (
    "tradai_release.training.train", "tradai_release.training.ensemble",
    "tradai_release.training.onnx_export",
    "tradai_release.bot.backtest", "sklearn.ensemble", "xgboost", "lightgbm", "onnxruntime", "skl2onnx",
    "freqtrade.optimize.backtesting", "freqtrade.optimize.optimize_reports",
)


def warm_pool() -> None:
    """Start the forkserver the training pool forks from, importing the training stack in it now (it runs
    beside whatever this process does next, such as the retraining check)."""
    from multiprocessing import forkserver, get_context

    get_context("forkserver").set_forkserver_preload(list(TRAINING_MODULES))
    forkserver.ensure_running()


def machine_workers() -> int:
    """The processes the machine can run at once (the CPUs this process may use)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _train(
    repo: str, strategy: str, models: str, base: str, trace_id: str
) -> tuple[TrainingResult | None, str]:
    """One training in a pool process: the result, or the error as one line (an exception raised in a
    child does not always survive the trip back: the project's errors take several arguments)."""
    from tradai_release.training import train_strategy

    try:
        return train_strategy(Path(repo), strategy, Path(models), git_commit=base, trace_id=trace_id), ""
    except TradaiError as err:
        return None, str(err)
    except Exception as err:  # a failed training is this strategy's failure, not the run's
        last = traceback.extract_tb(err.__traceback__)[-1]
        return None, f"{type(err).__name__}: {err} ({Path(last.filename).name}:{last.lineno})"


def retrain_all(
    settings: Settings,
    strategies: Sequence[str],
    env: Environment,
    *,
    workers: int = 0,
    comparator: ModelComparator | None = None,
    send: bool = True,
) -> RetrainRun:
    """Retrain each of ``strategies`` once into ``env`` (``workers`` = 0: the machine's CPUs)."""
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing import get_context

    from tradai_release.workflows.retrain import (
        conclude_retrain,
        new_trace_id,
        prepare_retrain,
        retrain_scratch,
    )

    if workers < 0:
        raise InputError("retrain", "--workers", f"{workers} is not a number of processes (0 = every CPU)")
    workers = workers or machine_workers()
    started = time.perf_counter()
    failed: dict[str, str] = {}
    prepared = {}
    for strategy in dict.fromkeys(strategies):
        try:
            prepared[strategy] = prepare_retrain(settings, strategy, env, None, "HEAD")
        except TradaiError as err:
            failed[strategy] = str(err)
    results: list[RetrainResult] = []
    with retrain_scratch(settings) as scratch:
        jobs = {strategy: (str(settings.repo), strategy, str(scratch / strategy), item.base, new_trace_id())
                for strategy, item in prepared.items()}
        trained: dict[str, tuple[TrainingResult | None, str]] = {}
        size = min(workers, len(jobs))
        if size <= 1:
            trained = {strategy: _train(*job) for strategy, job in jobs.items()}
        else:
            warm_pool()  # no-op when already running
            with ProcessPoolExecutor(max_workers=size, mp_context=get_context("forkserver")) as pool:
                futures: dict[str, Future[tuple[TrainingResult | None, str]]] = {
                    strategy: pool.submit(_train, *job) for strategy, job in jobs.items()}
                for strategy, future in futures.items():
                    try:
                        trained[strategy] = future.result()
                    except Exception as err:  # a worker that died (out of memory, killed): this strategy
                        problem = f"the training process failed: {type(err).__name__}: {err}"
                        trained[strategy] = (None, problem)
        for strategy, (result, error) in trained.items():
            if result is None:
                failed[strategy] = error
                continue
            _, _, models, _, trace_id = jobs[strategy]
            try:
                results.append(conclude_retrain(settings, prepared[strategy], result, Path(models), trace_id,
                                                comparator, send))
            except TradaiError as err:
                failed[strategy] = str(err)
    return RetrainRun(env.name, workers, tuple(results), failed, time.perf_counter() - started)
