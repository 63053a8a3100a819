"""Terminal output of `invoke train`: what was trained, how it scored, what was pushed and registered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradai_release.render import console

if TYPE_CHECKING:
    from tradai_release.workflows.publish import TrainOutcome

_PERCENT = ("total_profit", "max_drawdown", "win_rate")


def _metric(name: str, value: float) -> str:
    if name in _PERCENT:
        return f"{name} {value * 100:.1f} %"
    if name == "total_trades":
        return f"{name} {value:.0f}"
    return f"{name} {value:.3f}"


def render_training(outcome: TrainOutcome) -> None:
    """A few lines: the bundle, the held-out metrics, ONNX parity, then the tag and the versions."""
    from tradai_release.render.hub import human_bytes

    out = console()
    result = outcome.result
    seconds = result.extra.get("seconds")
    took = f" in {seconds:.1f} s" if isinstance(seconds, float) else ""
    out.print(
        f"trained {result.strategy_name}{took} -> {result.model_dir} "
        f"({result.feature_count} features, {result.data_rows} candles)"
    )
    out.print("  held-out: " + ", ".join(_metric(k, v) for k, v in sorted(result.metrics.items())))
    parity = result.extra.get("onnx_parity_max_abs_diff")
    if isinstance(parity, float):
        out.print(f"  ONNX parity: max abs diff {parity:.2g} over all exports (tolerance 1e-05)")
    if outcome.push is not None:
        pushed = outcome.push
        out.print(
            f"pushed tag {pushed.tag} (manifest sha256 {pushed.manifest_sha256}): "
            f"uploaded {pushed.uploaded_files} files, {human_bytes(pushed.uploaded_bytes)}; "
            f"{pushed.skipped_files} already in the hub"
        )
    r2_tag = outcome.push.tag if outcome.push else "-"
    for env, version in sorted(outcome.versions.items()):
        if version.duplicate:  # the registry already had these files: that version, not a new one
            out.print(
                f"{version.name} version {version.version} in {env} already has these files; "
                "not registered again"
            )
        else:
            out.print(f"registered {version.name} version {version.version} in {env} (r2_tag {r2_tag})")
