"""A trained model's metadata in a bundle, read once into a typed value: the one reader of what training
wrote.

Training writes ``<strategy>/<model>/<prefix>_metadata.json`` for each model of a strategy (signal and
position; see ``training/train.py``): the ONNX file of each part and the graph's input name, the features,
the held-out scores, and the PSI references. The hub summarises the scores into a tag's manifest, the
drift monitor scores recent data against the references and runs the ONNX files; both read it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradai_release.core.errors import InputError
from tradai_release.core.fsutil import read_json_object

METADATA_SUFFIX = "metadata.json"
MODEL_METADATA_GLOB = f"*/*{METADATA_SUFFIX}"
"""The metadata files of a strategy's bundle, relative to its directory (one per model)."""
SIGNAL_ONNX = "signal/ensemble_rf.onnx"
"""The signal model's random-forest ONNX file, as training names it, relative to a strategy's directory:
with the compat file, what a bot's start-up takes as the mark of models present."""


def is_metadata(name: str) -> bool:
    """Whether a bundle file's name is a model's metadata."""
    return name.endswith(METADATA_SUFFIX)


@dataclass(frozen=True)
class PsiReferences:
    """What PSI is measured against: quantile edges and shares per feature on the training rows, and of the
    predicted probability on the held-out rows (``{"edges": [...], "proportions": [...]}`` each)."""

    features: Mapping[str, Mapping[str, Any]]
    prediction: Mapping[str, Any] | None


@dataclass(frozen=True)
class ModelMetadata:
    """One model's metadata file; ``where`` names it in errors.

    ``accuracy`` and ``metrics`` hold numbers only (``metrics`` None when the file has no metrics object);
    ``onnx_files`` maps each part (``scaler`` and the ensemble's members) to its file in ``directory``.
    """

    where: str
    directory: Path
    role: str
    features: tuple[str, ...]
    onnx_files: Mapping[str, str]
    onnx_input: str
    accuracy: int | float | None
    metrics: Mapping[str, int | float] | None
    drift_reference: Any

    @classmethod
    def read(cls, path: Path, where: str) -> ModelMetadata:
        """The metadata in ``path``; an unreadable file, or JSON other than an object, is an InputError."""
        data = read_json_object(path, where)
        files = data.get("files")
        parts = files if isinstance(files, dict) else {}
        metrics = data.get("metrics")
        return cls(
            where=where,
            directory=path.parent,
            role=str(data.get("model") or path.parent.name),
            features=tuple(str(name) for name in data.get("features") or ()),
            onnx_files={
                part: str(spec["onnx"])
                for part, spec in parts.items()
                if isinstance(spec, dict) and "onnx" in spec
            },
            onnx_input=str(data.get("onnx_input") or "input"),
            accuracy=data["accuracy"] if _is_number(data.get("accuracy")) else None,
            metrics=(
                {key: value for key, value in sorted(metrics.items()) if _is_number(value)}
                if isinstance(metrics, dict)
                else None
            ),
            drift_reference=data.get("drift_reference"),
        )

    def psi_references(self) -> PsiReferences:
        """The PSI references, each checked for shape; an InputError when missing (a model trained before
        references were recorded) or malformed."""
        reference = self.drift_reference
        if not isinstance(reference, dict) or not isinstance(reference.get("features"), dict):
            raise InputError(
                self.where, "drift_reference", "missing: the model predates PSI references; retrain it"
            )
        for name in self.features or reference["features"]:
            _check_reference(reference["features"].get(name), self.where, f"drift_reference.features.{name}")
        prediction = reference.get("prediction")
        if prediction is not None:
            _check_reference(prediction, self.where, "drift_reference.prediction")
        return PsiReferences(reference["features"], prediction)


def _check_reference(ref: Any, where: str, field_name: str) -> None:
    if not isinstance(ref, dict):
        raise InputError(where, field_name, "missing")
    edges, proportions = ref.get("edges"), ref.get("proportions")
    if not isinstance(edges, list) or not isinstance(proportions, list) or len(proportions) != len(edges) + 1:
        raise InputError(where, field_name, "needs edges and proportions (one more proportion than edges)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
