"""A strategy's released models as the bot runs them: each model's ONNX scaler and members, in onnxruntime.

The directory is the one the runtime verified (``<models_dir>/<Strategy>``, docs/usage.md "Training"):
``model_compat.json`` gives the features and the input's name, and ``signal/`` and ``position/`` hold
``<prefix>_<part>.onnx`` for the scaler and each member. Only ONNX files are loaded (never a pickle),
on one CPU thread, so a bot's decisions are the exported graphs' and a model file cannot run code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradai_release.core.errors import InputError

ROLES: dict[str, str] = {"signal": "ensemble", "position": "position"}
"""Each model's directory and its files' prefix (the seed's names)."""
MEMBERS: tuple[str, ...] = ("rf", "xgb", "lgb")
COMPAT_FILE = "model_compat.json"
ENTRY_THRESHOLD = 0.5
"""Enter long when both models' probabilities are above this (a strategy may raise it)."""
EXIT_THRESHOLD = 0.5
"""Exit when both are below this."""


@dataclass(frozen=True)
class OnnxModel:
    """One model (signal or position): the scaler's and the members' inference sessions."""

    role: str
    features: tuple[str, ...]
    input_name: str
    sessions: Mapping[str, Any]  # part -> onnxruntime.InferenceSession

    def probability(self, rows: Any) -> Any:
        """The soft vote, mean P(class 1) of the members, for raw feature rows (taken as float32)."""
        import numpy as np

        raw = np.asarray(rows, dtype=np.float32)
        if raw.ndim != 2 or raw.shape[1] != len(self.features):
            raise ValueError(f"{self.role}: expected rows of {len(self.features)} features, got {raw.shape}")
        if not len(raw):
            return np.zeros(0, dtype=np.float64)
        scaled = self.sessions["scaler"].run(None, {self.input_name: raw})[0].astype(np.float32)
        votes = []
        for member in MEMBERS:
            outputs = self.sessions[member].run(None, {self.input_name: scaled})
            # The [n, 2] probabilities tensor (the other output is the label); exported without ZipMap.
            probabilities = next(o for o in outputs if getattr(o, "ndim", 0) == 2 and o.shape[1] == 2)
            votes.append(np.asarray(probabilities[:, 1], dtype=np.float64))
        return np.mean(votes, axis=0)


@dataclass(frozen=True)
class ReleasedModels:
    """The signal and position models of one strategy, loaded from its verified directory."""

    directory: Path
    features: tuple[str, ...]
    signal: OnnxModel
    position: OnnxModel

    @classmethod
    def load(cls, directory: Path, *, expected_features: Sequence[str] | None = None) -> ReleasedModels:
        """Load both models; a missing or unreadable file, or unexpected features, is an InputError."""
        directory = Path(directory)
        compat_path = directory / COMPAT_FILE
        try:
            compat = json.loads(compat_path.read_text(encoding="utf-8"))
            features = tuple(str(name) for name in compat["features"])
            input_name = str(compat["onnx_input"]["name"])
        except OSError as err:
            raise InputError(str(compat_path), "(file)", f"cannot read: {err.strerror or err}") from None
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(
                str(compat_path), "features", f"not a bundle's model_compat.json: {err}"
            ) from None
        if expected_features is not None and tuple(expected_features) != features:
            raise InputError(
                str(compat_path),
                "features",
                f"the models take {list(features)}, the strategy computes {list(expected_features)}",
            )
        return cls(
            directory=directory,
            features=features,
            signal=_load_model(directory, "signal", features, input_name),
            position=_load_model(directory, "position", features, input_name),
        )


    def probabilities(self, candles: Any, *, time: str = "date") -> tuple[Any, Any]:
        """P(signal) and P(position) for every candle (NaN until the features are warm).

        ``candles`` holds OHLCV columns and the candle time in ``time`` (Freqtrade's ``date``,
        training's ``timestamp``); the features are the ones training computed (``bot.features``).
        """
        import numpy as np

        from tradai_release.bot.features import compute_features

        rows = compute_features(candles, self.features, where="candles", time=time).to_numpy(dtype=np.float64)
        ready = np.isfinite(rows).all(axis=1)
        signal = np.full(len(rows), np.nan)
        position = np.full(len(rows), np.nan)
        if ready.any():
            signal[ready] = self.signal.probability(rows[ready])
            position[ready] = self.position.probability(rows[ready])
        return signal, position


def _load_model(directory: Path, role: str, features: tuple[str, ...], input_name: str) -> OnnxModel:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the converters declare label shapes loosely; ORT warns on every run
    sessions: dict[str, Any] = {}
    for part in ("scaler", *MEMBERS):
        path = directory / role / f"{ROLES[role]}_{part}.onnx"
        try:
            sessions[part] = onnxruntime.InferenceSession(
                path.read_bytes(), options, providers=["CPUExecutionProvider"]
            )
        except OSError as err:
            raise InputError(str(path), "(file)", f"cannot read: {err.strerror or err}") from None
        except Exception as err:  # onnxruntime raises its own untyped errors for a bad graph
            raise InputError(str(path), "(file)", f"not a loadable ONNX model: {err}") from None
    return OnnxModel(role=role, features=features, input_name=input_name, sessions=sessions)
