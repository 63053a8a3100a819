"""Helpers of the drift and retrain tests: a live release repo on the embedded default, shifted candles."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from engine_helpers import copy_registry
from helpers import commit_all, git, process_scratch
from tradai_release.core.settings import Settings
from tradai_release.repository.environments import environment
from tradai_release.training.result import TrainingResult

SOURCE = Path(__file__).resolve().parent.parent
TAG = "v20261101"
CREATED_AT = "2026-11-01T00:00:00Z"

# Metrics a challenger is given on purpose, so the outcome does not hang on how well a model trained on
# the synthetic candles happens to score: far better than any champion, and far worse.
BETTER = {
    "total_profit": 2.0,
    "sharpe_ratio": 20.0,
    "max_drawdown": 0.01,
    "win_rate": 0.8,
    "total_trades": 300.0,
}
WORSE = {
    "total_profit": -0.6,
    "sharpe_ratio": -9.0,
    "max_drawdown": 0.65,
    "win_rate": 0.3,
    "total_trades": 60.0,
}


def invoke(repo: Path, settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an invoke task of this checkout in ``repo`` against ``settings``' state dir."""
    from helpers import invoke as run

    return run(repo, *args, env={"TRADAI_STATE_DIR": str(settings.state_dir)})


# make_live_repo's registries per process: (models, env, strategies) -> (a copy of the SQLite file right
# after registering, the versions registered).
_REGISTERED: dict[tuple[str, str, tuple[str, ...]], tuple[Path, dict[str, int]]] = {}


def make_live_repo(
    root: Path, models: Path, results: Sequence[TrainingResult], env: str = "dev", *, also: Sequence[str] = ()
) -> tuple[Path, Settings]:
    """A git repo with this project's strategies/ and releases/, its ``env`` (and each of ``also``) live on
    the embedded default.

    The bundle ``models`` is pushed as one hub tag, each result registered as a version in each
    environment, and every manifest of those environments pinned to the tag and the versions (committed).
    """
    from engine_helpers import PROFILES
    from tradai_release.hub import ModelHub
    from tradai_release.repository.manifest_edit import edit_manifest

    repo = root / "repo"
    repo.mkdir()
    shutil.copytree(SOURCE / "strategies", repo / "strategies")
    shutil.copytree(SOURCE / "releases", repo / "releases")
    git(repo, "init", "-q", "-b", "main")
    settings = Settings(repo=repo, state_dir=root / "state")
    hub = ModelHub.from_settings(settings)
    pushed = hub.push(models, tag=TAG, message="test bundle", created_at=CREATED_AT)
    for name in (env, *also):
        versions = _registered(settings, models, results, name)
        for profile in PROFILES:
            path = repo / "releases" / name / f"profile-{profile}.yaml"
            if not path.exists():
                continue
            with edit_manifest(path) as editor:
                editor.set_artifacts(TAG, pushed.manifest_sha256)
                for strategy in editor.strategies():
                    editor.set_production(strategy, versions[strategy])
    commit_all(repo, "initial release repository, live in " + ", ".join((env, *also)))
    return repo, settings


def _registered(
    settings: Settings, models: Path, results: Sequence[TrainingResult], env: str
) -> dict[str, int]:
    """Each result registered in ``env`` (a copy of this process's first such registry when there is one)."""
    from tradai_release.registry.registrar import register_training

    database = Path(settings.backends(env).mlflow_tracking_uri.removeprefix("sqlite:///"))
    key = (str(models), env, tuple(result.strategy_name for result in results))
    if key in _REGISTERED and not database.exists():
        # the registry as the first call of this process left it (its artifacts stay where that call
        # logged them, read-only): MLflow's migrations and the registrations cost about 2 s, a copy 10 ms
        template, versions = _REGISTERED[key]
        copy_registry(template, database)
        return versions
    versions = {
        result.strategy_name: register_training(
            settings, result, r2_tag=TAG, envs=[environment(settings, env)]
        )[env].version
        for result in results
    }
    if database.is_file():
        template = process_scratch("live-registry-") / "mlflow.db"
        shutil.copyfile(database, template)
        _REGISTERED[key] = (template, versions)
    return versions


def data_path(repo: Path, strategy: str) -> Path:
    return next((repo / "strategies" / strategy / "data").glob("*.csv"))


def shifted_candles(last_close: float, start: str, rows: int, *, vol: float = 0.02, volume: float = 5000.0,
                    seed: int = 5) -> str:
    """CSV rows (no header) of hourly candles from ``start``, returns with std ``vol`` (above the data)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    returns = rng.standard_normal(rows) * vol
    close = last_close * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([last_close], close[:-1]))
    wick = np.abs(rng.standard_normal((2, rows))) * vol
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    vol_col = volume * rng.lognormal(0.0, 0.5, rows)
    stamps = np.datetime64(start.rstrip("Z")) + np.arange(rows).astype("timedelta64[h]")
    return "".join(
        f"{str(t)[:16]}:00Z,{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.3f}\n"
        for t, o, h, lo, c, v in zip(stamps, open_, high, low, close, vol_col, strict=True)
    )


def append_shifted(repo: Path, strategy: str, rows: int = 600, **options: float) -> None:
    """Append ``rows`` shifted candles after the last candle of the strategy's data set."""
    import numpy as np

    path = data_path(repo, strategy)
    last = path.read_text().rstrip("\n").splitlines()[-1].split(",")
    start = str(np.datetime64(last[0].rstrip("Z")) + np.timedelta64(1, "h")) + "Z"
    with path.open("a") as handle:
        handle.write(shifted_candles(float(last[4]), start, rows, **options))  # type: ignore[arg-type]


def write_window(path: Path, rows: int = 400, **options: float) -> Path:
    """A standalone recent-window CSV of shifted candles."""
    path.write_text("timestamp,open,high,low,close,volume\n"
                    + shifted_candles(40_000.0, "2025-01-01T00:00:00Z", rows, **options))  # type: ignore[arg-type]
    return path


def with_metrics(trainer: object, **metrics: float) -> object:
    """A trainer that trains for real, then reports ``metrics`` instead of the measured ones (on purpose).

    The signal model's metadata records them too, as training would have: the bundle's files differ
    from the champion's, so the retrain is not "unchanged" and the comparison runs.
    """
    from dataclasses import replace

    def train(*args: object, **kwargs: object) -> TrainingResult:
        result: TrainingResult = trainer(*args, **kwargs)  # type: ignore[operator]
        record_metrics(result.model_dir, metrics)
        return replace(result, metrics={**result.metrics, **metrics})

    return train


def record_metrics(model_dir: Path, metrics: Mapping[str, float]) -> None:
    """Write ``metrics`` into the signal model's metadata of the bundle at ``model_dir``."""
    import json

    path = model_dir / "signal" / "ensemble_metadata.json"
    metadata = json.loads(path.read_text())
    metadata["metrics"] = {**metadata["metrics"], **metrics}
    path.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def metrics_of(mapping: Mapping[str, float]) -> dict[str, float]:
    return {key: float(value) for key, value in mapping.items()}
