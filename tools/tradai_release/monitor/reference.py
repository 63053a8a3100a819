"""A live bundle's PSI references per model, and how to run the model's ONNX files, from its metadata."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradai_release.errors import InputError

METADATA_GLOB = "*/*metadata.json"


@dataclass(frozen=True)
class ModelReference:
    """One model of a bundle (signal or position): its PSI references and how to run its ONNX files."""

    role: str
    directory: Path
    features: tuple[str, ...]
    feature_refs: Mapping[str, Mapping[str, Any]]
    prediction_ref: Mapping[str, Any] | None
    onnx_files: Mapping[str, str]  # part -> file name in ``directory``; "scaler" plus the members
    onnx_input: str = "input"
    where: str = ""


def model_references(strategy_dir: Path, where: str) -> list[ModelReference]:
    """The PSI references of each model of a strategy's bundle (from its ``*metadata.json``)."""
    found = sorted(strategy_dir.glob(METADATA_GLOB))
    if not found:
        raise InputError(f"{where}", "metadata", "no *metadata.json in the bundle")
    references = []
    for path in found:
        label = f"{where}/{path.relative_to(strategy_dir).as_posix()}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(label, "(json)", f"unreadable: {err}") from None
        reference = data.get("drift_reference") if isinstance(data, dict) else None
        if not isinstance(reference, dict) or not isinstance(reference.get("features"), dict):
            raise InputError(
                label, "drift_reference", "missing: the model predates PSI references; retrain it"
            )
        features = tuple(str(name) for name in data.get("features") or reference["features"])
        for name in features:
            _check_reference(reference["features"].get(name), label, f"drift_reference.features.{name}")
        prediction = reference.get("prediction")
        if prediction is not None:
            _check_reference(prediction, label, "drift_reference.prediction")
        files = data.get("files") if isinstance(data.get("files"), dict) else {}
        onnx = {
            part: str(spec["onnx"])
            for part, spec in files.items()
            if isinstance(spec, dict) and "onnx" in spec
        }
        references.append(
            ModelReference(
                role=str(data.get("model") or path.parent.name),
                directory=path.parent,
                features=features,
                feature_refs=reference["features"],
                prediction_ref=prediction,
                onnx_files=onnx,
                onnx_input=str(data.get("onnx_input") or "input"),
                where=label,
            )
        )
    return references


def _check_reference(ref: Any, where: str, field_name: str) -> None:
    if not isinstance(ref, dict):
        raise InputError(where, field_name, "missing")
    edges, proportions = ref.get("edges"), ref.get("proportions")
    if not isinstance(edges, list) or not isinstance(proportions, list) or len(proportions) != len(edges) + 1:
        raise InputError(where, field_name, "needs edges and proportions (one more proportion than edges)")
