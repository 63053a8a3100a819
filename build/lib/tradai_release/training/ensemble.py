"""The soft-voting ensemble of the seed: a StandardScaler, then RandomForest, XGBoost and LightGBM.

Each member sees the scaled features as float32 (what the ONNX exports take), and the ensemble's
probability is the plain mean of the three members' P(class 1). Every member is seeded and runs
single-threaded with deterministic settings, so the same rows give byte-identical model files.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Small on purpose: a strategy trains in seconds on two cores and the bundle stays a few MB.
RF_PARAMS: dict[str, Any] = {"n_estimators": 60, "max_depth": 7, "min_samples_leaf": 10}
XGB_PARAMS: dict[str, Any] = {
    "n_estimators": 80,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
}
LGB_PARAMS: dict[str, Any] = {
    "n_estimators": 80,
    "num_leaves": 15,
    "max_depth": 5,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "min_child_samples": 20,
}
MEMBERS: tuple[str, ...] = ("rf", "xgb", "lgb")
PICKLE_PROTOCOL = 5  # fixed, so the bytes do not depend on the interpreter's default


def training_params() -> dict[str, Any]:
    """The members' hyper-parameters, flat (what the registry logs as params)."""
    flat: dict[str, Any] = {}
    for prefix, params in (("rf", RF_PARAMS), ("xgb", XGB_PARAMS), ("lgb", LGB_PARAMS)):
        flat.update({f"{prefix}.{key}": value for key, value in params.items()})
    return flat


@dataclass(frozen=True)
class Ensemble:
    """A fitted scaler and the three fitted members (native library objects)."""

    scaler: Any
    rf: Any
    xgb: Any
    lgb: Any

    def scale(self, x: Any) -> Any:
        """Raw feature rows (float64) -> the float32 rows every member takes."""
        import numpy as np

        return self.scaler.transform(np.asarray(x, dtype=np.float64)).astype(np.float32)

    def member_probabilities(self, x_scaled: Any) -> dict[str, Any]:
        """P(class 1) of each member for scaled float32 rows."""
        return {name: getattr(self, name).predict_proba(x_scaled)[:, 1] for name in MEMBERS}

    def probability(self, x: Any) -> Any:
        """The soft vote: mean P(class 1) of the members, for raw feature rows."""
        import numpy as np

        members = self.member_probabilities(self.scale(x))
        return np.mean([members[name] for name in MEMBERS], axis=0)


def fit_ensemble(x_train: Any, y_train: Any, seed: int) -> Ensemble:
    """Fit scaler and members on the training rows (numpy, no column names), seeded and single-threaded."""
    import lightgbm
    import numpy as np
    import xgboost
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(np.asarray(x_train, dtype=np.float64))
    x = scaler.transform(np.asarray(x_train, dtype=np.float64)).astype(np.float32)
    y = np.asarray(y_train, dtype=np.int64)
    rf = RandomForestClassifier(**RF_PARAMS, random_state=seed, n_jobs=1).fit(x, y)
    xgb = xgboost.XGBClassifier(
        **XGB_PARAMS, random_state=seed, n_jobs=1, tree_method="hist", eval_metric="logloss"
    ).fit(x, y)
    lgb = lightgbm.LGBMClassifier(
        **LGB_PARAMS,
        random_state=seed,
        n_jobs=1,
        deterministic=True,
        force_col_wise=True,
        verbose=-1,
    ).fit(x, y)
    return Ensemble(scaler=scaler, rf=rf, xgb=xgb, lgb=lgb)


def native_files(prefix: str) -> dict[str, str]:
    """The seed's native file names of one model (``ensemble`` for signal, ``position`` for position)."""
    return {
        "rf": f"{prefix}_rf.pkl",
        "xgb": f"{prefix}_xgb.json",
        "lgb": f"{prefix}_lgb.txt",
        "scaler": f"{prefix}_scaler.pkl",
    }


def save_native(ensemble: Ensemble, directory: Path, prefix: str) -> None:
    """Write the members natively: pickles for scikit-learn, JSON for XGBoost, text for LightGBM."""
    names = native_files(prefix)
    for member in ("rf", "scaler"):
        (directory / names[member]).write_bytes(
            pickle.dumps(getattr(ensemble, member), protocol=PICKLE_PROTOCOL)
        )
    ensemble.xgb.get_booster().save_model(str(directory / names["xgb"]))
    ensemble.lgb.booster_.save_model(str(directory / names["lgb"]))
