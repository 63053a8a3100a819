"""A strategy's training reused when everything it is a function of is byte-identical.

Training is deterministic (docs/usage.md "Training"): its files and metrics follow from the strategy's
folder (tradai.yaml, ml_config.json, candles, strategy code), this package's code and the installed
libraries. The key is a SHA-256 over all three, so an edited candle, a changed line of training code or
an upgraded xgboost trains again. Entries live in the user's cache directory
(``training/<strategy>/<key>``, the newest few per strategy), are written aside and renamed in whole,
and hold the strategy's bundle and its result. A reused result keeps the metrics and timings of the
training that made it; its git commit and trace id are the caller's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from tradai_release.core.equity import EquityCurve
from tradai_release.core.fsutil import file_sha256, swap_into_place, user_cache_dir
from tradai_release.repository.strategy import STRATEGIES_DIR
from tradai_release.training.result import TrainingResult
from tradai_release.training.train import load_strategy, strategy_names, train_strategy

RESULT_FILE = "result.json"
BUNDLE_DIR = "bundle"
FORMAT = 1  # of an entry; a change of it is a change of key
KEPT = 3  # entries per strategy: the newest, as code and candles change (older ones are removed)


def train_all_reusing(
    repo: Path, models_dir: Path, *, git_commit: str | None = None, fresh: bool = False
) -> tuple[list[TrainingResult], list[str]]:
    """``train_all``, each strategy reused from the cache when its inputs are unchanged: the results in
    name order and the names of the strategies reused. ``fresh`` trains all and stores the trainings."""
    repo, models_dir = Path(repo), Path(os.path.abspath(models_dir))
    environment = _environment_digest()
    results, reused = [], []
    for name in strategy_names(repo):
        entry = user_cache_dir() / "training" / name / _key(repo, name, environment)
        result = None if fresh else _reuse(entry, name, models_dir, git_commit)
        if result is None:
            result = train_strategy(repo, name, models_dir, git_commit=git_commit)
            if fresh:
                shutil.rmtree(entry, ignore_errors=True)
            _keep(entry, result)
            _evict(entry.parent)
        else:
            reused.append(name)
        results.append(result)
    return results, reused


def _key(repo: Path, strategy: str, environment: str) -> str:
    """SHA-256 of the strategy's folder and code folder (paths and contents) and ``environment``."""
    spec = load_strategy(repo, strategy)  # an invalid tradai.yaml is the training's error, raised here
    folders = {repo / STRATEGIES_DIR / strategy, repo / spec.entry_point.directory}
    digest = hashlib.sha256(f"format {FORMAT}\n{environment}\n".encode())
    for folder in sorted(folders):
        digest.update(_tree_digest(folder, relative_to=repo).encode())
    return digest.hexdigest()


def _environment_digest() -> str:
    """This package's files and every installed distribution with its version, as one SHA-256."""
    import importlib.metadata
    import platform

    package = Path(__file__).resolve().parents[1]
    distributions = sorted(
        f"{dist.metadata['Name']}=={dist.version}" for dist in importlib.metadata.distributions()
    )
    digest = hashlib.sha256(f"{sys.version}\n{platform.machine()}\n".encode())
    digest.update("\n".join(distributions).encode())
    digest.update(_tree_digest(package, relative_to=package.parent).encode())
    return digest.hexdigest()


def _tree_digest(folder: Path, *, relative_to: Path) -> str:
    lines = [
        f"{path.relative_to(relative_to).as_posix()} {file_sha256(path)}"
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _reuse(entry: Path, strategy: str, models_dir: Path, git_commit: str | None) -> TrainingResult | None:
    """The cached training copied into ``models_dir/<strategy>`` (swapped in whole), or None if there is
    none. An unreadable entry is removed, so the training that follows can store a good one."""
    if not entry.exists():
        return None
    try:
        saved = json.loads((entry / RESULT_FILE).read_text())
        equity = saved["equity"]
        result = TrainingResult(
            strategy_name=strategy,
            model_dir=models_dir / strategy,
            features=tuple(saved["features"]),
            metrics=saved["metrics"],
            params=saved["params"],
            git_commit=git_commit,
            trace_id=uuid.uuid4().hex,
            data_rows=saved["data_rows"],
            equity=EquityCurve(tuple(equity["points"]), equity["candles"], equity["start"], equity["end"])
            if equity
            else None,
            backtest_engine=saved["backtest_engine"],
            extra=saved["extra"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        shutil.rmtree(entry, ignore_errors=True)
        return None
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{models_dir.name}-{strategy}.reuse-", dir=models_dir.parent))
    try:
        shutil.copytree(entry / BUNDLE_DIR, staging / strategy)
        swap_into_place(staging / strategy, models_dir / strategy, backup=staging / "old")
        os.utime(entry)  # recently used: evicted last
    except OSError:
        return None  # evicted meanwhile by another process: train
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _keep(entry: Path, result: TrainingResult) -> None:
    """Store ``result`` and its bundle as ``entry``, whole or not at all; a cache that cannot be written is
    no error (the next run trains again)."""
    equity = result.equity
    saved: dict[str, Any] = {
        "features": list(result.features),
        "metrics": result.metrics,
        "params": result.params,
        "data_rows": result.data_rows,
        "equity": {"points": list(equity.points), "candles": equity.candles, "start": equity.start,
                   "end": equity.end} if equity else None,
        "backtest_engine": result.backtest_engine,
        "extra": result.extra,
    }
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".writing-", dir=entry.parent) as scratch:
            building = Path(scratch) / "entry"
            shutil.copytree(result.model_dir, building / BUNDLE_DIR)
            (building / RESULT_FILE).write_text(json.dumps(saved, sort_keys=True))
            os.rename(building, entry)
    except OSError:
        return  # another process stored the same entry first, or the cache is not writable


def _evict(folder: Path) -> None:
    """Remove all but the KEPT newest entries of one strategy."""
    try:
        entries = sorted((path for path in folder.iterdir() if not path.name.startswith(".")),
                         key=lambda path: path.stat().st_mtime_ns, reverse=True)
    except OSError:
        return
    for stale in entries[KEPT:]:
        shutil.rmtree(stale, ignore_errors=True)
