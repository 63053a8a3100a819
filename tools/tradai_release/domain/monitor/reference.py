"""A live bundle's PSI references per model, and how to run the model's ONNX files, from its metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradai_release.core.errors import InputError
from tradai_release.repository.bundle_metadata import MODEL_METADATA_GLOB, ModelMetadata


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
    found = sorted(strategy_dir.glob(MODEL_METADATA_GLOB))
    if not found:
        raise InputError(f"{where}", "metadata", "no *metadata.json in the bundle")
    references = []
    for path in found:
        metadata = ModelMetadata.read(path, f"{where}/{path.relative_to(strategy_dir).as_posix()}")
        psi = metadata.psi_references()
        references.append(
            ModelReference(
                role=metadata.role,
                directory=metadata.directory,
                features=metadata.features or tuple(str(name) for name in psi.features),
                feature_refs=psi.features,
                prediction_ref=psi.prediction,
                onnx_files=metadata.onnx_files,
                onnx_input=metadata.onnx_input,
                where=metadata.where,
            )
        )
    return references
