"""Training: look-ahead-free features, the purged split, the backtest, the bundle, determinism, parity."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hub_helpers import SIGNAL_FILES
from tradai_release.bot.features import WARMUP_ROWS, compute_features
from tradai_release.core.equity import MAX_POINTS
from tradai_release.core.errors import OnnxParityError
from tradai_release.core.psi import psi
from tradai_release.hub import check_compat
from tradai_release.hub.manifest import bundle_metadata
from tradai_release.repository.strategy import FEATURE_CATALOGUE, MLConfig
from tradai_release.repository.tree import ReleaseTree
from tradai_release.training import BACKTEST_METRICS, TrainingResult, train_all, train_strategy
from tradai_release.training.features import build_dataset, load_candles
from training_helpers import file_hashes, make_training_repo


def freqtrade_version() -> str:
    import freqtrade

    return str(freqtrade.__version__)


STRATEGY = "PascalStrategy"
SIGNAL_BUNDLE = (
    *SIGNAL_FILES,
    "ensemble_xgb.onnx",
    "ensemble_lgb.onnx",
    "ensemble_scaler.onnx",
    "ensemble_metadata.json",
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainingResult]:
    repo = make_training_repo(tmp_path_factory.mktemp("repo"), (STRATEGY,))
    return repo, train_strategy(repo, STRATEGY, repo / "models", git_commit="c0ffee", trace_id="trace-1")


def candles(rows: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    open_ = np.concatenate(([100.0], close[:-1]))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": rng.lognormal(5, 0.3, rows),
        }
    )


# ---------------------------------------------------------------------------------------- features


def test_features_by_hand() -> None:
    frame = candles()
    features = compute_features(
        frame, ["ret_1", "ret_3", "hl_range", "hour_sin", "hour_cos", "close_sma_ratio_20"]
    )
    close = frame["close"].to_numpy()
    assert features["ret_1"].iloc[10] == pytest.approx(close[10] / close[9] - 1)
    assert features["ret_3"].iloc[10] == pytest.approx(close[10] / close[7] - 1)
    assert features["hl_range"].iloc[5] == pytest.approx((frame["high"][5] - frame["low"][5]) / close[5])
    assert features["hour_sin"].iloc[6] == pytest.approx(1.0)  # 06:00 UTC is a quarter of the day
    assert features["hour_cos"].iloc[12] == pytest.approx(-1.0)
    assert features["close_sma_ratio_20"].iloc[30] == pytest.approx(close[30] / close[11:31].mean() - 1)


def test_every_catalogue_feature_is_finite_after_warmup_and_bounded_where_it_should_be() -> None:
    features = compute_features(candles(), FEATURE_CATALOGUE)
    assert list(features.columns) == list(FEATURE_CATALOGUE)
    assert np.isfinite(features.iloc[WARMUP_ROWS:].to_numpy()).all()
    assert features["rsi_14"].iloc[WARMUP_ROWS:].between(0, 100).all()


def test_features_never_look_ahead() -> None:
    frame = candles()
    changed = frame.copy()
    cut = 250
    changed.loc[cut:, ["open", "high", "low", "close"]] *= 1.5
    changed.loc[cut:, "volume"] *= 3
    before = compute_features(frame, FEATURE_CATALOGUE).iloc[:cut]
    after = compute_features(changed, FEATURE_CATALOGUE).iloc[:cut]
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.slow
def test_split_is_time_ordered_and_purged(trained: tuple[Path, TrainingResult]) -> None:
    repo, _ = trained
    path = next((repo / "strategies" / STRATEGY / "data").glob("*.csv"))
    config = MLConfig.from_dict(json.loads((repo / "strategies" / STRATEGY / "ml_config.json").read_text()))
    data = build_dataset(load_candles(path, "x.csv"), config)
    assert data.gap == max(config.signal.horizon, config.position.horizon)
    assert data.train_rows + data.gap + data.test_rows == data.usable_rows
    assert data.test_rows == math.ceil(data.usable_rows * config.test_fraction)
    # The held-out rows are the last ones: their first row is the one after train + purge.
    frame = load_candles(path, "x.csv").frame
    first_test = frame["timestamp"].iloc[WARMUP_ROWS + data.train_rows + data.gap]
    assert data.test_start == first_test.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert data.test_start < data.test_end <= data.data_end


# ---------------------------------------------------------------------------------------- the bundle


@pytest.mark.slow
def test_bundle_has_the_hub_layout_and_metadata(trained: tuple[Path, TrainingResult]) -> None:
    repo, result = trained
    bundle = result.model_dir
    assert bundle == repo / "models" / STRATEGY
    assert sorted(p.name for p in (bundle / "signal").iterdir()) == sorted(SIGNAL_BUNDLE)
    position = sorted(p.name for p in (bundle / "position").iterdir())
    assert position == sorted(name.replace("ensemble", "position") for name in SIGNAL_BUNDLE)
    assert set(result.metrics) == {"accuracy", "position_accuracy", *BACKTEST_METRICS}
    assert 0 <= result.metrics["accuracy"] <= 1 and 0 <= result.metrics["max_drawdown"] <= 1
    assert result.git_commit == "c0ffee" and result.trace_id == "trace-1"
    assert result.features == tuple(
        json.loads((repo / "strategies" / STRATEGY / "ml_config.json").read_text())["features"]
    )

    metadata = json.loads((bundle / "signal" / "ensemble_metadata.json").read_text())
    assert metadata["accuracy"] == result.metrics["accuracy"]
    assert metadata["metrics"] == result.metrics
    assert metadata["trained_until"] == "2024-05-13T07:00:00Z"  # the last candle, not the wall clock
    # Drift references: PSI of the training rows against themselves is ~0 without re-reading data.
    reference = metadata["drift_reference"]["features"]["rsi_14"]
    assert len(reference["proportions"]) == len(reference["edges"]) + 1 == 10
    assert psi(reference, [reference["edges"][0] - 1] * 50) > 1  # all mass in one bin: large PSI
    assert len(metadata["drift_reference"]["prediction"]["proportions"]) == 10
    # The held-out equity curve, downsampled, in the metadata and in the result (the registrar tags it).
    curve = result.equity
    assert curve is not None and 2 < len(curve.points) <= MAX_POINTS
    assert curve.points[0] == 1.0
    assert curve.final == pytest.approx(1 + result.metrics["total_profit"], abs=1e-5)
    assert curve.candles == metadata["data"]["test_rows"]
    assert (curve.start, curve.end) == (metadata["data"]["test_start"], metadata["data"]["test_end"])
    assert metadata["backtest"]["equity"]["points"] == list(curve.points)
    # The metrics are Freqtrade's, from the strategy's own code; the version says which engine.
    assert metadata["backtest"]["engine"] == result.backtest_engine == f"freqtrade {freqtrade_version()}"
    assert metadata["backtest"]["strategy"] == STRATEGY
    assert metadata["backtest"]["trades"] == result.metrics["total_trades"] > 0

    summary = bundle_metadata(
        repo / "models",
        [
            f"{STRATEGY}/signal/ensemble_metadata.json",
            f"{STRATEGY}/position/position_metadata.json",
            f"{STRATEGY}/model_compat.json",
        ],
    )
    assert summary[STRATEGY]["signal"]["accuracy"] == result.metrics["accuracy"]
    assert summary[STRATEGY]["position"]["accuracy"] == result.metrics["position_accuracy"]
    assert summary[STRATEGY]["feature_count"] == result.feature_count


@pytest.mark.slow
def test_model_compat_passes_the_hub_check(trained: tuple[Path, TrainingResult]) -> None:
    repo, result = trained
    compat = json.loads((result.model_dir / "model_compat.json").read_text())
    assert compat["feature_count"] == len(compat["features"]) == result.feature_count
    assert compat["onnx_opset"] == 15 and compat["onnx_ml_opset"] == 1  # what the exports import
    for library in ("sklearn", "xgboost", "lightgbm", "onnx", "onnxruntime"):
        assert compat[library], library
    check_compat(repo / "models", [STRATEGY], ReleaseTree.work(repo).features([STRATEGY]), where="test")


@pytest.mark.slow
def test_files_hold_no_paths_or_clock(trained: tuple[Path, TrainingResult]) -> None:
    repo, result = trained
    needles = [str(repo).encode(), str(Path.home()).encode(), b"trace-1", b"c0ffee"]
    for path in result.model_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [n for n in needles if n in data], path


@pytest.mark.slow
def test_training_twice_gives_byte_identical_files(tmp_path: Path) -> None:
    """Once here, once in a fresh interpreter with another hash seed (as CI on another machine would)."""
    repo = make_training_repo(tmp_path / "repo", ("MyStrategy", "PascalStrategy"))
    first = train_all(repo, tmp_path / "a", git_commit="one")
    script = "import sys; from pathlib import Path; from tradai_release.training import train_all; "
    script += "train_all(Path(sys.argv[1]), Path(sys.argv[2]), git_commit='two')"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(repo), str(tmp_path / "b")], check=True, env=env)
    assert [r.strategy_name for r in first] == ["MyStrategy", "PascalStrategy"]
    hashes = file_hashes(tmp_path / "a")
    assert len(hashes) == 2 * (1 + 2 * len(SIGNAL_BUNDLE))
    assert hashes == file_hashes(tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "repo"]  # no staging dirs left


# ---------------------------------------------------------------------------------------- ONNX parity


def _native(model: str, member: str, bundle: Path) -> object:
    prefix = "ensemble" if model == "signal" else "position"
    directory = bundle / model
    if member == "rf":
        return pickle.loads((directory / f"{prefix}_rf.pkl").read_bytes())
    if member == "xgb":
        import xgboost

        classifier = xgboost.XGBClassifier()
        classifier.load_model(str(directory / f"{prefix}_xgb.json"))
        return classifier
    import lightgbm

    booster = lightgbm.Booster(model_file=str(directory / f"{prefix}_lgb.txt"))

    class _Lgb:
        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            p = booster.predict(x)
            return np.column_stack([1 - p, p])

    return _Lgb()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["signal", "position"])
@pytest.mark.parametrize("member", ["rf", "xgb", "lgb"])
def test_onnx_files_reproduce_the_native_files_on_held_out_rows(
    trained: tuple[Path, TrainingResult], model: str, member: str
) -> None:
    """All six models, loaded back from the bundle's files (native and ONNX), agree within 1e-5."""
    import onnx

    from tradai_release.training.onnx_export import run_onnx

    repo, result = trained
    prefix = "ensemble" if model == "signal" else "position"
    config = MLConfig.from_dict(json.loads((repo / "strategies" / STRATEGY / "ml_config.json").read_text()))
    path = next((repo / "strategies" / STRATEGY / "data").glob("*.csv"))
    data = build_dataset(load_candles(path, "x.csv"), config)
    scaler = pickle.loads((result.model_dir / model / f"{prefix}_scaler.pkl").read_bytes())
    x_scaled = scaler.transform(data.x_test).astype(np.float32)
    onnx_scaled = run_onnx((result.model_dir / model / f"{prefix}_scaler.onnx").read_bytes(), data.x_test)[0]
    assert np.max(np.abs(onnx_scaled - scaler.transform(data.x_test))) <= 1e-5

    native = _native(model, member, result.model_dir).predict_proba(x_scaled)[:, 1]  # type: ignore[attr-defined]
    exported = (result.model_dir / model / f"{prefix}_{member}.onnx").read_bytes()
    onnx.checker.check_model(onnx.load_from_string(exported), full_check=True)
    outputs = run_onnx(exported, x_scaled)
    onnx = next(o for o in outputs if o.ndim == 2)[:, 1]
    diff = float(np.max(np.abs(native - onnx)))
    print(f"\n{model} {member}: ONNX max abs diff {diff:.3g} over {len(onnx)} held-out rows")
    assert diff <= 1e-5
    assert result.extra["onnx_parity"][model][member] == pytest.approx(diff, abs=1e-7)


# float32 features through the ONNX scaler move the ensemble's probability a little against training's
# float64 scaler (about 0.015 at worst on these data sets); a decision may differ only that close to 0.5.
PROBABILITY_TOLERANCE = 0.02


def _native_probability(bundle: Path, model: str, x: np.ndarray) -> np.ndarray:
    prefix = "ensemble" if model == "signal" else "position"
    scaler = pickle.loads((bundle / model / f"{prefix}_scaler.pkl").read_bytes())
    scaled = scaler.transform(x).astype(np.float32)
    members = [
        _native(model, member, bundle).predict_proba(scaled)[:, 1]  # type: ignore[attr-defined]
        for member in ("rf", "xgb", "lgb")
    ]
    return np.mean(members, axis=0)


@pytest.mark.slow
def test_the_bot_strategy_decides_as_training_predicts(
    trained: tuple[Path, TrainingResult], tmp_path: Path
) -> None:
    """The Freqtrade strategy computes the features from the held-out candles as a bot does and runs the
    ONNX models; its probabilities and decisions are training's own (native models, float64 features)."""
    from freqtrade.resolvers import StrategyResolver

    from tradai_release.bot.config import BotRun, render_config

    repo, result = trained
    config = MLConfig.from_dict(json.loads((repo / "strategies" / STRATEGY / "ml_config.json").read_text()))
    path = next((repo / "strategies" / STRATEGY / "data").glob("*.csv"))
    loaded = load_candles(path, "x.csv")
    data = build_dataset(loaded, config)
    rendered = render_config(
        BotRun(
            strategy=STRATEGY,
            class_name=STRATEGY,
            symbols=("BTC/USDT:USDT",),
            timeframe="1h",
            stake_amount=2500,
            max_open_trades=2,
            models_dir=result.model_dir,
            entry_tag="PascalStrategy v9",
            dry_run=True,
            db_url="sqlite://",
            bot_name="test",
        )
    )
    rendered.update(strategy_path=str(repo / "strategies" / STRATEGY / "pascal"), user_data_dir=tmp_path)
    strategy = StrategyResolver.load_strategy(rendered)
    strategy.ft_bot_start()
    frame = loaded.frame.rename(columns={"timestamp": "date"})
    analysed = strategy.populate_indicators(frame.copy(), {"pair": "BTC/USDT:USDT"})
    start, end = pd.Timestamp(data.test_start), pd.Timestamp(data.test_end)
    held = (analysed["date"] >= start) & (analysed["date"] <= end)
    assert int(held.sum()) == data.test_rows

    bot = {model: analysed.loc[held, f"tradai_{model}"].to_numpy() for model in ("signal", "position")}
    native = {model: _native_probability(result.model_dir, model, data.x_test) for model in bot}
    for model in bot:
        diff = float(np.max(np.abs(bot[model] - native[model])))
        print(f"\n{model}: bot vs training max abs probability diff {diff:.2e} over {data.test_rows} rows")
        assert diff <= PROBABILITY_TOLERANCE

    entries = strategy.populate_entry_trend(analysed.copy(), {"pair": "BTC/USDT:USDT"})
    bot_enter = (entries.loc[held, "enter_long"] == 1).to_numpy()
    threshold = strategy.entry_threshold
    training_enter = (native["signal"] > threshold) & (native["position"] > threshold)
    near = np.minimum(np.abs(native["signal"] - threshold), np.abs(native["position"] - threshold))
    differ = bot_enter != training_enter
    assert not (differ & (near > PROBABILITY_TOLERANCE)).any()
    assert bot_enter.sum() > 0 and differ.mean() < 0.05
    assert set(entries.loc[held & (entries["enter_long"] == 1), "enter_tag"]) == {"PascalStrategy v9"}


@pytest.mark.slow
def test_the_comparators_rows_are_freqtrades_own_backtest_of_the_held_out_window(
    trained: tuple[Path, TrainingResult], tmp_path: Path
) -> None:
    """The registered metrics equal what `freqtrade backtesting` itself reports for the held-out window: the
    CLI, with its own configuration loading, its market list fetched over HTTP (the loopback stand-in)
    and its own result file, on the same candles, models, stake and fee."""
    from freqtrade.data.btanalysis import load_backtest_stats
    from freqtrade.enums import RunMode

    from tradai_release.bot.backtest import offline_exchange, write_data
    from tradai_release.bot.config import BotRun, render_config
    from tradai_release.bot.pairs import parse_pair
    from tradai_release.bot.standin import ExchangeStandIn
    from tradai_release.registry.comparator import ModelComparator

    repo, result = trained
    folder = repo / "strategies" / STRATEGY
    config = MLConfig.from_dict(json.loads((folder / "ml_config.json").read_text()))
    csv = next((folder / "data").glob("*.csv"))
    loaded = load_candles(csv, "x.csv")
    data = build_dataset(loaded, config)
    pair = parse_pair("BTC/USDT:USDT", where="test", field="symbol")
    userdir, results = tmp_path / "user_data", tmp_path / "results"
    results.mkdir()
    with ExchangeStandIn({pair.symbol: csv}, "1h") as standin:
        rendered = render_config(BotRun(
            strategy=STRATEGY, class_name=STRATEGY, symbols=(pair.symbol,), timeframe="1h", stake_amount=2500,
            max_open_trades=2, models_dir=result.model_dir, entry_tag="cli", dry_run=True, db_url="sqlite://",
            bot_name="cli-backtest", fee=config.fee, exchange_url=standin.url,
        ))
        options = offline_exchange({**json.loads(json.dumps(rendered)), "runmode": RunMode.BACKTEST})
        write_data(userdir / "data", pair, loaded.frame.rename(columns={"timestamp": "date"}), options)
        (tmp_path / "config.json").write_text(json.dumps(rendered))
        start, end = (int(pd.Timestamp(when).timestamp()) for when in (data.test_start, data.test_end))
        done = subprocess.run(
            [sys.executable, "-m", "freqtrade", "backtesting", "--config", str(tmp_path / "config.json"),
             "--strategy", STRATEGY, "--strategy-path", str(folder / "pascal"), "--userdir", str(userdir),
             "--datadir", str(userdir / "data"), "--timerange", f"{start}-{end + 1}", "--cache", "none",
             "--export", "trades", "--backtest-directory", str(results)],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
        )
        fetched = standin.requests["/fapi/v1/exchangeInfo"]
    # Freqtrade exits 0 on a configuration error: the result file is the evidence, not the exit code
    assert fetched >= 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert list(results.glob("*.zip")), done.stdout[-3000:] + done.stderr[-3000:]
    own = load_backtest_stats(results)["strategy"][STRATEGY]
    expected = {
        "total_profit": own["profit_total"],
        "sharpe_ratio": own["sharpe"],
        "max_drawdown": own["max_drawdown_account"],
        "win_rate": own["wins"] / own["total_trades"],
        "total_trades": float(own["total_trades"]),
    }
    rows = {row.metric: row.challenger for row in ModelComparator().compare(result.metrics, None).rows}
    print(f"\nfreqtrade backtesting CLI: {expected}")
    assert own["total_trades"] >= 10  # a window with trades to compare
    assert rows == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.slow
def test_parity_failure_is_loud_and_leaves_previous_models(
    trained: tuple[Path, TrainingResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tradai_release.training.onnx_export as onnx_export

    repo, _ = trained
    before = file_hashes(repo / "models")
    monkeypatch.setattr(onnx_export, "PARITY_TOLERANCE", 0.0)  # every float32 export differs by > 0
    with pytest.raises(OnnxParityError, match=rf"training {STRATEGY} signal scaler: ONNX export differs"):
        train_strategy(repo, STRATEGY, repo / "models")
    assert file_hashes(repo / "models") == before
    assert not [p for p in repo.iterdir() if p.name.startswith(".models")]
