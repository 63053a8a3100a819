"""ONNX exports of an ensemble's scaler and members, and the parity check against the native models.

The scaler takes the raw features (float32) and returns the scaled ones; each member takes the
scaled features and returns ``label`` and ``probabilities`` (a plain ``[n, 2]`` tensor, no ZipMap).
Graph names are fixed (the converters default to a random UUID), so exports are byte-reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import OnnxParityError, TrainingError

if TYPE_CHECKING:
    from tradai_release.training.ensemble import Ensemble

ONNX_OPSET = 15  # the highest onnxmltools 1.16 converts XGBoost/LightGBM to
ONNX_ML_OPSET = 3  # the ceiling asked of skl2onnx; each converter imports the lowest it needs
PARITY_TOLERANCE = 1e-5
INPUT_NAME = "input"
PARTS: tuple[str, ...] = ("scaler", "rf", "xgb", "lgb")


def onnx_files(prefix: str) -> dict[str, str]:
    """ONNX file name of each part: ``<prefix>_rf.onnx`` etc."""
    return {part: f"{prefix}_{part}.onnx" for part in PARTS}


def export_onnx(ensemble: Ensemble, feature_count: int, name: str) -> dict[str, bytes]:
    """The serialized ONNX model of each part of ``ensemble``; ``name`` prefixes the graph names."""
    exporters = {"scaler": _sklearn, "rf": _sklearn, "xgb": _xgboost, "lgb": _lightgbm}
    exports: dict[str, bytes] = {}
    for part in PARTS:
        try:
            model = exporters[part](getattr(ensemble, part), feature_count, f"{name}_{part}")
        except (RuntimeError, ValueError, TypeError, NotImplementedError) as err:
            raise TrainingError(f"{name} {part}", f"ONNX conversion failed: {err}") from None
        _tidy(model)
        exports[part] = model.SerializeToString(deterministic=True)
    return exports


def _tidy(model: Any) -> None:
    """One opset import per domain (skl2onnx lists the default domain twice); no converter version."""
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    del model.opset_import[:]
    for domain, version in sorted(versions.items()):
        model.opset_import.add(domain=domain, version=version)
    model.producer_version = ""  # the converters' versions are recorded once, in model_compat.json


def opsets(exports: Mapping[str, bytes]) -> dict[str, int]:
    """The highest opset each domain is imported at across ``exports`` (``""`` = the default domain)."""
    import onnx

    versions: dict[str, int] = {}
    for data in exports.values():
        for entry in onnx.load_from_string(data).opset_import:
            versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    return versions


def _sklearn(model: Any, feature_count: int, name: str) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    return convert_sklearn(
        model,
        name=name,
        initial_types=[(INPUT_NAME, FloatTensorType([None, feature_count]))],
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": ONNX_ML_OPSET},
        options=options,
    )


def _xgboost(model: Any, feature_count: int, name: str) -> Any:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    # The converter reads split features as f0, f1, ...; a booster trained on named columns breaks it.
    model.get_booster().feature_names = None
    return convert_xgboost(
        model,
        name=name,
        initial_types=[(INPUT_NAME, FloatTensorType([None, feature_count]))],
        target_opset=ONNX_OPSET,
    )


def _lightgbm(model: Any, feature_count: int, name: str) -> Any:
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    return convert_lightgbm(
        model,
        name=name,
        initial_types=[(INPUT_NAME, FloatTensorType([None, feature_count]))],
        target_opset=ONNX_OPSET,
        zipmap=False,
    )


@dataclass(frozen=True)
class Parity:
    """Largest absolute difference between each ONNX export and its native model on the held-out rows."""

    max_abs_diff: Mapping[str, float]
    rows: int

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values())


def run_onnx(model_bytes: bytes, x: Any) -> list[Any]:
    """All outputs of an ONNX model for float32 rows ``x``, on one CPU thread."""
    import numpy as np
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the converters declare label shapes loosely; ORT warns on every run
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return list(session.run(None, {INPUT_NAME: np.asarray(x, dtype=np.float32)}))


def check_parity(ensemble: Ensemble, exports: Mapping[str, bytes], x_raw: Any, name: str) -> Parity:
    """Run every export on the held-out rows and compare with the native model; raise when any differs.

    The scaler is compared on the scaled features; each member on P(class 1) for the same scaled
    float32 rows, so a difference is the export's own and not inherited from the scaler's rounding.
    """
    import numpy as np

    x_raw = np.asarray(x_raw, dtype=np.float64)
    scaled_native = ensemble.scaler.transform(x_raw)
    scaled_onnx = run_onnx(exports["scaler"], x_raw.astype(np.float32))[0]
    diffs = {"scaler": _max_abs(scaled_native, scaled_onnx)}
    x_scaled = scaled_native.astype(np.float32)
    native = ensemble.member_probabilities(x_scaled)
    for part in ("rf", "xgb", "lgb"):
        outputs = run_onnx(exports[part], x_scaled)
        probabilities = next(o for o in outputs if getattr(o, "ndim", 0) == 2 and o.shape[1] == 2)
        diffs[part] = _max_abs(native[part], probabilities[:, 1])
    for part, diff in diffs.items():
        if not diff <= PARITY_TOLERANCE:  # also catches NaN
            raise OnnxParityError(
                f"{name} {part}",
                f"ONNX export differs from the native model by {diff:.3g} on the held-out rows "
                f"(tolerance {PARITY_TOLERANCE:g})",
            )
    return Parity(max_abs_diff=diffs, rows=len(x_raw))


def _max_abs(a: Any, b: Any) -> float:
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0
