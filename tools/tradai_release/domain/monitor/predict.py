"""A model's predictions from its ONNX files with onnxruntime (the pickles of a bundle are never loaded)."""

from __future__ import annotations

from typing import Any

from tradai_release.core.errors import InputError
from tradai_release.domain.monitor.reference import ModelReference


def predict(reference: ModelReference, x: Any) -> Any:
    """The model's soft vote, P(class 1) per row: the ONNX scaler, then the mean of the ONNX members."""
    import numpy as np
    import onnxruntime

    if "scaler" not in reference.onnx_files or len(reference.onnx_files) < 2:
        raise InputError(reference.where, "files", "no ONNX scaler and members listed")

    def run(part: str, rows: Any) -> list[Any]:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        path = reference.directory / reference.onnx_files[part]
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            return list(session.run(None, {name: np.asarray(rows, dtype=np.float32)}))
        except Exception as err:  # onnxruntime raises its own untyped errors for bad files
            raise InputError(f"{reference.where}", f"files.{part}", f"ONNX run failed: {err}") from None

    scaled = np.asarray(run("scaler", x)[0], dtype=np.float32)
    members = []
    for part in sorted(p for p in reference.onnx_files if p != "scaler"):
        outputs = run(part, scaled)
        probabilities = next((o for o in outputs if getattr(o, "ndim", 0) == 2 and o.shape[1] == 2), None)
        if probabilities is None:
            raise InputError(reference.where, f"files.{part}", "no [n, 2] probability output")
        members.append(np.asarray(probabilities[:, 1], dtype=np.float64))
    return np.mean(members, axis=0)
