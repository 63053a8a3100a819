"""Hand-built TrainingResult values for the registry tests (training itself is not needed)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from fake_registry import FakeRegistry
from tradai_release.registry.lifecycle import DesiredLifecycle
from tradai_release.training.result import TrainingResult

METRICS = {"accuracy": 0.61, "position_accuracy": 0.55, "total_profit": 120.5, "sharpe_ratio": 1.3,
           "max_drawdown": 0.12, "win_rate": 0.52, "total_trades": 42.0}


def training_result(root: Path, name: str | None = None, **metrics: float) -> TrainingResult:
    """A bundle of ``name`` (default: a new random name) in ``root/models/<name>``. Like a real bundle it
    records its metrics (and this result's trace id) in a metadata file, so each result's files differ
    and registering two results makes two versions (the same result twice is a duplicate)."""
    name = name or f"strat_{uuid.uuid4().hex[:8]}"
    model_dir = root / "models" / name
    model_dir.mkdir(parents=True, exist_ok=True)
    trace_id = f"trace-{uuid.uuid4().hex[:8]}"
    values = {**METRICS, **metrics}
    (model_dir / "signal.onnx").write_bytes(b"\x08\x07fake-onnx")
    (model_dir / "features.json").write_text('["rsi_14", "ema_ratio"]\n', encoding="utf-8")
    (model_dir / "metadata.json").write_text(
        json.dumps({"metrics": values, "trace_id": trace_id}, sort_keys=True) + "\n", encoding="utf-8"
    )
    return TrainingResult(
        strategy_name=name,
        model_dir=model_dir,
        features=("rsi_14", "ema_ratio"),
        metrics=values,
        params={"n_estimators": 50, "max_depth": 4, "learning_rate": 0.1},
        git_commit="0123456789abcdef0123456789abcdef01234567",
        trace_id=trace_id,
        data_rows=500,
    )


def apply(registry: FakeRegistry, desired: DesiredLifecycle) -> None:
    """What the engine does with a DesiredLifecycle (enough to test convergence): tag writes, then
    aliases, then stage mirrors, as apply's lifecycle and alias actions do.

    Not the engine's own path: apply runs the Actions of a whole Plan (built from a release
    repository's desired state and the live state) through a private executor; nothing public takes
    a DesiredLifecycle alone, and the lifecycle tests need exactly that unit."""
    for tag in desired.tag_changes:
        if tag.value is None:
            registry.delete_version_tag(tag.name, tag.version, tag.key)
        else:
            registry.set_version_tag(tag.name, tag.version, tag.key, tag.value)
    for alias in desired.alias_changes:
        if alias.version is None:
            registry.delete_alias(alias.name, alias.alias)
        else:
            registry.set_alias(alias.name, alias.alias, alias.version)
    for stage in desired.stage_changes:
        registry.set_stage(stage.name, stage.version, stage.desired)
