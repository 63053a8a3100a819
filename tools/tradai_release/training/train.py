"""Train one strategy (or all) into ``<models_dir>/<Strategy>``: the seed's signal and position bundles.

Every file is a function of the committed inputs only (no clock, host or path), so training twice
gives byte-identical files; the layout is in docs/usage.md "Training".
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError
from tradai_release.core.fsutil import swap_into_place
from tradai_release.repository.strategy import STRATEGIES_DIR, StrategySpec, ml_config_path, tradai_path
from tradai_release.training.result import TrainingResult

if TYPE_CHECKING:
    from tradai_release.bot.backtest import BacktestResult
    from tradai_release.core.equity import EquityCurve
    from tradai_release.training.ensemble import Ensemble
    from tradai_release.training.features import Candles, Dataset
    from tradai_release.training.onnx_export import Parity

COMPAT_FILE = "model_compat.json"
BACKTEST_TAG = "held-out backtest"  # the entry tag of a backtest's trades (a bot's names its model version)
DATA_DIR = "data"
PSI_BINS = 10
# Metadata floats are rounded so a last-bit difference between CPUs rarely changes a file's bytes.
SIGNIFICANT_DIGITS = 10
LIBRARIES: tuple[tuple[str, str], ...] = (
    ("sklearn", "sklearn"),
    ("xgboost", "xgboost"),
    ("lightgbm", "lightgbm"),
    ("onnx", "onnx"),
    ("onnxruntime", "onnxruntime"),
    ("skl2onnx", "skl2onnx"),
    ("onnxmltools", "onnxmltools"),
    ("numpy", "numpy"),
    ("pandas", "pandas"),
    ("freqtrade", "freqtrade"),
)


@dataclass(frozen=True)
class ModelSpec:
    """One of the strategy's two models: where its files go, their name prefix, and its label."""

    role: str  # "signal" | "position"
    prefix: str  # the seed's file prefix: "ensemble" | "position"


SIGNAL = ModelSpec("signal", "ensemble")
POSITION = ModelSpec("position", "position")


def load_strategy(repo: Path, name: str) -> StrategySpec:
    """The strategy ``strategies/<name>`` of the working tree at ``repo``, schema-checked."""
    from tradai_release.repository.tree import ReleaseTree

    return ReleaseTree.work(repo).strategy(name)


def strategy_names(repo: Path) -> list[str]:
    """Every strategy of the working tree at ``repo``, sorted."""
    from tradai_release.repository.tree import ReleaseTree

    names = ReleaseTree.work(repo).strategy_names()
    if not names:
        raise InputError(STRATEGIES_DIR, "(dir)", "no strategies directory in the repository")
    return names


def data_file(repo: Path, name: str) -> tuple[Path, str]:
    """The strategy's one candles CSV: its path and how messages name it (relative to the repo)."""
    from tradai_release.repository.tree import ReleaseTree

    directory = f"{STRATEGIES_DIR}/{name}/{DATA_DIR}"
    found = ReleaseTree.work(repo).data_sets(name)
    if not found:
        raise InputError(directory, "(dir)", "no candles: expected one *.csv data set")
    if len(found) > 1:
        listing = ", ".join(path.rsplit("/", 1)[-1] for path in found)
        raise InputError(directory, "(dir)", f"expected one *.csv data set, found {len(found)}: {listing}")
    return Path(repo) / found[0], found[0]


def library_versions() -> dict[str, str]:
    """Versions of the libraries that wrote (and must read) the bundle."""
    import importlib

    return {key: str(importlib.import_module(module).__version__) for key, module in LIBRARIES}


def train_strategy(
    repo: Path,
    strategy: str,
    models_dir: Path,
    *,
    git_commit: str | None = None,
    trace_id: str | None = None,
) -> TrainingResult:
    """Train the strategy's signal and position ensembles into ``models_dir/<strategy>``.

    Bad inputs (unknown strategy or feature, a missing, short or malformed CSV) raise InputError
    naming file, field and reason; an ONNX export that disagrees with its model raises
    OnnxParityError. Either way nothing under ``models_dir`` changes. ``git_commit`` and
    ``trace_id`` go into the result (for the registry and the hub), never into the files.
    """
    started = time.perf_counter()
    repo = Path(repo)
    spec = load_strategy(repo, strategy)
    csv_path, csv_display = data_file(repo, strategy)

    # The train extra first: without it a bare install is told to add `train` (which includes `bot`),
    # not `bot` alone because the features' pandas happened to be imported first.
    import sklearn  # noqa: F401

    from tradai_release.core.equity import EquityCurve, downsample
    from tradai_release.training.features import build_dataset, load_candles

    candles = load_candles(csv_path, csv_display)
    dataset = build_dataset(candles, spec.ml_config, where=ml_config_path(strategy))

    models_dir = Path(os.path.abspath(models_dir))
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{models_dir.name}-{strategy}.train-", dir=models_dir.parent))
    try:
        staging.chmod(0o755)
        _, signal_parity, signal_probability, signal_opsets = _train_model(
            SIGNAL, spec, dataset, dataset.signal_train, staging
        )
        position, position_parity, _, position_opsets = _train_model(
            POSITION, spec, dataset, dataset.position_train, staging
        )
        opsets = {
            domain: max(signal_opsets.get(domain, 0), position_opsets.get(domain, 0))
            for domain in {*signal_opsets, *position_opsets}
        }
        _write_json(staging / COMPAT_FILE, _compat(spec, opsets))  # the strategy reads it to trade
        fitted = time.perf_counter()
        backtest = held_out_backtest(repo, spec, candles, dataset, staging, csv_display)
        backtest_seconds = time.perf_counter() - fitted
        metrics = {
            "accuracy": _accuracy(signal_probability, dataset.signal_test),
            "position_accuracy": _accuracy(position.probability(dataset.x_test), dataset.position_test),
            **backtest.metrics,
        }
        metrics = {key: _round(value) for key, value in metrics.items()}
        curve = EquityCurve(
            downsample(backtest.equity), dataset.test_rows, dataset.test_start, dataset.test_end
        )
        facts = _data_facts(candles.sha256, csv_display, dataset)
        _write_metadata(SIGNAL, spec, staging, dataset, facts, signal_probability, metrics, curve, backtest)
        _write_metadata(
            POSITION,
            spec,
            staging,
            dataset,
            facts,
            position.probability(dataset.x_test),
            {"accuracy": metrics["position_accuracy"]},
        )
        # The backup sits beside the staging dir, outside models_dir, so a crash here never leaves
        # a stray directory that a later hub push would bundle.
        swap_into_place(staging, models_dir / strategy, backup=staging.parent / f"{staging.name}.old")
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)

    from tradai_release.training.ensemble import training_params

    parity = {"signal": dict(signal_parity.max_abs_diff), "position": dict(position_parity.max_abs_diff)}
    params: dict[str, Any] = {
        **training_params(),
        "signal_horizon": spec.ml_config.signal.horizon,
        "signal_threshold": spec.ml_config.signal.threshold,
        "position_horizon": spec.ml_config.position.horizon,
        "test_fraction": spec.ml_config.test_fraction,
        "fee": spec.ml_config.fee,
        "seed": spec.ml_config.seed,
        "train_rows": dataset.train_rows,
        "test_rows": dataset.test_rows,
        "data_file": csv_display,
        "data_sha256": candles.sha256,
        "data_start": dataset.data_start,
        "data_end": dataset.data_end,
    }
    return TrainingResult(
        strategy_name=strategy,
        model_dir=models_dir / strategy,
        features=dataset.features,
        metrics=metrics,
        params=params,
        git_commit=git_commit,
        trace_id=trace_id or uuid.uuid4().hex,
        data_rows=candles.rows,
        equity=curve,
        backtest_engine=f"freqtrade {backtest.engine_version}",
        extra={
            "onnx_parity": parity,
            "onnx_parity_max_abs_diff": max(signal_parity.worst, position_parity.worst),
            "seconds": time.perf_counter() - started,
            "backtest_seconds": backtest_seconds,
            "data_end": dataset.data_end,
            "config_hash": spec.config_hash,
        },
    )


def held_out_backtest(
    repo: Path, spec: StrategySpec, candles: Candles, dataset: Dataset, bundle: Path, display: str
) -> BacktestResult:
    """Freqtrade's backtest of the strategy's own code with the bundle's models, on the held-out window.

    The pair is the one the data set's file names (``btc_usdt_1h.csv`` -> ``BTC/USDT:USDT`` of the
    strategy's symbols); the stake, open-trade limit and timeframe are tradai.yaml's, the fee
    ml_config.json's. The candles before the window only warm the features up.
    """
    import pandas as pd

    from tradai_release.bot.backtest import BacktestWindow, run_backtest
    from tradai_release.bot.config import BotRun
    from tradai_release.bot.pairs import parse_pairs

    defaults = spec.tradai["strategy_service"]["defaults"]
    where = tradai_path(spec.name)
    pairs = parse_pairs(defaults["symbols"], where=where, field="strategy_service.defaults.symbols")
    pair = pairs.of_data_file(Path(display).stem, where=display)
    entry = spec.entry_point
    run = BotRun(
        strategy=spec.name,
        class_name=entry.class_name,
        symbols=(pair.symbol,),
        timeframe=spec.timeframe,
        stake_amount=defaults["stake_amount"],
        max_open_trades=defaults["max_open_trades"],
        models_dir=bundle,
        entry_tag=BACKTEST_TAG,
        dry_run=True,
        db_url="sqlite://",
        bot_name=f"{spec.name}-backtest",
        where=where,
        fee=spec.ml_config.fee,
    )
    frame = candles.frame.rename(columns={"timestamp": "date"})
    window = BacktestWindow(pd.Timestamp(dataset.test_start), pd.Timestamp(dataset.test_end))
    workdir = Path(tempfile.mkdtemp(prefix=f".{spec.name}.backtest-", dir=bundle.parent))
    try:
        return run_backtest(run, repo / entry.directory, pair, frame, window, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def train_all(repo: Path, models_dir: Path, *, git_commit: str | None = None) -> list[TrainingResult]:
    """Train every strategy of the repository into one ``models_dir`` (one hub tag for all), in name order."""
    return [
        train_strategy(repo, name, models_dir, git_commit=git_commit) for name in strategy_names(Path(repo))
    ]


def _train_model(
    model: ModelSpec, spec: StrategySpec, dataset: Dataset, y_train: Any, staging: Path
) -> tuple[Ensemble, Parity, Any, dict[str, int]]:
    """Fit, write native files and ONNX exports, check parity.

    Returns the ensemble, its parity, its held-out probabilities and the exports' opsets.
    """
    from tradai_release.training.ensemble import fit_ensemble, save_native
    from tradai_release.training.onnx_export import check_parity, export_onnx, onnx_files, opsets

    directory = staging / model.role
    directory.mkdir()
    ensemble = fit_ensemble(dataset.x_train, y_train, spec.ml_config.seed)
    save_native(ensemble, directory, model.prefix)
    exports = export_onnx(ensemble, len(dataset.features), f"{spec.name}_{model.role}")
    parity = check_parity(ensemble, exports, dataset.x_test, f"{spec.name} {model.role}")
    for part, name in onnx_files(model.prefix).items():
        (directory / name).write_bytes(exports[part])
    return ensemble, parity, ensemble.probability(dataset.x_test), opsets(exports)


def _accuracy(probability: Any, labels: Any) -> float:
    import numpy as np

    return float(np.mean((np.asarray(probability) > 0.5).astype(np.int64) == np.asarray(labels)))


def _round(value: float) -> float:
    return float(f"{float(value):.{SIGNIFICANT_DIGITS}g}")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return _round(value)
    if isinstance(value, Mapping):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    return value


def _data_facts(sha256: str, display: str, dataset: Dataset) -> dict[str, Any]:
    return {
        "file": display,
        "sha256": sha256,
        "start": dataset.data_start,
        "end": dataset.data_end,
        "usable_rows": dataset.usable_rows,
        "train_rows": dataset.train_rows,
        "purged_rows": dataset.gap,
        "test_rows": dataset.test_rows,
        "test_start": dataset.test_start,
        "test_end": dataset.test_end,
    }


def _write_metadata(
    model: ModelSpec,
    spec: StrategySpec,
    staging: Path,
    dataset: Dataset,
    facts: Mapping[str, Any],
    probability: Any,
    metrics: Mapping[str, float],
    curve: EquityCurve | None = None,
    backtest: BacktestResult | None = None,
) -> None:
    from tradai_release.core.psi import reference_distribution
    from tradai_release.training.ensemble import MEMBERS, native_files, training_params
    from tradai_release.training.onnx_export import INPUT_NAME, onnx_files

    native, onnx = native_files(model.prefix), onnx_files(model.prefix)
    config = spec.ml_config
    label = (
        {
            "horizon": config.signal.horizon,
            "threshold": config.signal.threshold,
            "definition": "1 when close[t+horizon] / close[t] - 1 > threshold",
        }
        if model is SIGNAL
        else {"horizon": config.position.horizon, "definition": "1 when close[t+horizon] / close[t] - 1 > 0"}
    )
    metadata = {
        "strategy": spec.name,
        "strategy_version": spec.version,
        "config_hash": spec.config_hash,
        "model": model.role,
        "ensemble": "soft vote (mean P(class 1)) of " + ", ".join(MEMBERS) + " on scaled float32 features",
        "files": {part: {"native": native[part], "onnx": onnx[part]} for part in ("scaler", *MEMBERS)},
        "onnx_input": INPUT_NAME,
        "features": list(dataset.features),
        "feature_count": len(dataset.features),
        "label": label,
        "accuracy": metrics["accuracy"],
        "metrics": dict(metrics),
        "data": dict(facts),
        "trained_until": dataset.data_end,
        "params": training_params(),
        "seed": config.seed,
        # PSI references for the drift check: features on the training rows, P(class 1) on the held-out rows
        # (out-of-sample, like live predictions); no training data is needed later.
        "drift_reference": {
            "bins": PSI_BINS,
            "features": {
                name: reference_distribution(dataset.x_train[:, index].tolist(), PSI_BINS)
                for index, name in enumerate(dataset.features)
            },
            "prediction": reference_distribution([float(p) for p in probability], PSI_BINS),
        },
    }
    if model is SIGNAL and backtest is not None:
        facts_of_run: dict[str, Any] = {
            "engine": f"freqtrade {backtest.engine_version}",
            "strategy": spec.entry_point.class_name,
            "rules": "the strategy's own code (entry point) on the held-out window; the candles before "
            "it only warm the features up",
            "fee": config.fee,
            "timeframe": spec.timeframe,
            "starting_balance": backtest.starting_balance,
            "trades": len(backtest.trades),
        }
        if curve is not None:  # downsampled equity of the held-out window (also the version's tag)
            facts_of_run["equity"] = {
                "candles": curve.candles,
                "start": curve.start,
                "end": curve.end,
                "points": list(curve.points),
            }
        metadata["backtest"] = facts_of_run
    _write_json(staging / model.role / f"{model.prefix}_metadata.json", _rounded(metadata))


def _compat(spec: StrategySpec, opsets: Mapping[str, int]) -> dict[str, Any]:
    from tradai_release.training.ensemble import MEMBERS
    from tradai_release.training.onnx_export import INPUT_NAME

    return {
        "strategy": spec.name,
        "feature_count": len(spec.ml_config.features),
        "features": list(spec.ml_config.features),
        # The highest opsets the exports import: a runtime must support at least these.
        "onnx_opset": opsets.get("", 0),
        "onnx_ml_opset": opsets.get("ai.onnx.ml", 0),
        "onnx_input": {"name": INPUT_NAME, "dtype": "float32", "shape": [None, len(spec.ml_config.features)]},
        "models": ["signal", "position"],
        "members": ["scaler", *MEMBERS],
        **library_versions(),
    }


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
