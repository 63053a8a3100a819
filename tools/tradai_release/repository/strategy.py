"""A strategy of the release repository: its tradai.yaml, ml_config.json and config hash.

See docs/architecture.md §3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradai_release.core.confighash import config_hash
from tradai_release.core.errors import InputError
from tradai_release.core.yamlio import Document

STRATEGIES_DIR = "strategies"
TRADAI_FILE = "tradai.yaml"
ML_CONFIG_FILE = "ml_config.json"

FEATURE_CATALOGUE: tuple[str, ...] = (
    "ret_1",
    "ret_3",
    "ret_6",
    "ret_12",
    "ret_24",
    "vol_12",
    "vol_24",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_pos_20",
    "atr_14",
    "volume_z_24",
    "hl_range",
    "close_sma_ratio_20",
    "close_sma_ratio_50",
    "hour_sin",
    "hour_cos",
)
"""Every feature training can compute; ml_config.json may only name these."""


def tradai_path(name: str) -> str:
    """``strategies/<name>/tradai.yaml``"""
    return f"{STRATEGIES_DIR}/{name}/{TRADAI_FILE}"


def ml_config_path(name: str) -> str:
    """``strategies/<name>/ml_config.json``"""
    return f"{STRATEGIES_DIR}/{name}/{ML_CONFIG_FILE}"


@dataclass(frozen=True)
class SignalTarget:
    """The signal model's label: forward return over ``horizon`` candles above ``threshold``."""

    horizon: int
    threshold: float


@dataclass(frozen=True)
class PositionTarget:
    """The position model's label horizon, in candles."""

    horizon: int


@dataclass(frozen=True)
class MLConfig:
    """ml_config.json: the features and targets of a strategy's models."""

    features: tuple[str, ...]
    signal: SignalTarget
    position: PositionTarget
    test_fraction: float
    fee: float
    seed: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLConfig:
        """Build from a dict that already passed the ml_config schema."""
        return cls(
            features=tuple(data["features"]),
            signal=SignalTarget(
                horizon=int(data["signal"]["horizon"]), threshold=float(data["signal"]["threshold"])
            ),
            position=PositionTarget(horizon=int(data["position"]["horizon"])),
            test_fraction=float(data["test_fraction"]),
            fee=float(data["fee"]),
            seed=int(data["seed"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as in ml_config.json."""
        return {
            "features": list(self.features),
            "signal": {"horizon": self.signal.horizon, "threshold": self.signal.threshold},
            "position": {"horizon": self.position.horizon},
            "test_fraction": self.test_fraction,
            "fee": self.fee,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class StrategySpec:
    """One strategy as committed: raw tradai.yaml (interpolation left as written), typed ml_config, hash."""

    name: str
    tradai: dict[str, Any]
    ml_config: MLConfig
    config_hash: str

    @property
    def version(self) -> str:
        """``strategy.version`` of tradai.yaml."""
        return str(self.tradai["strategy"]["version"])

    @property
    def image_repository(self) -> str:
        """``deployment.ecr.repository`` of tradai.yaml: where the bot's image lives."""
        return str(self.tradai["deployment"]["ecr"]["repository"])

    @property
    def resources(self) -> tuple[int, int]:
        """``deployment.ecs`` (cpu units, memory MiB) of tradai.yaml."""
        ecs = self.tradai["deployment"]["ecs"]
        return int(ecs["cpu"]), int(ecs["memory"])

    @property
    def timeframe(self) -> str:
        """``strategy.timeframe`` of tradai.yaml (e.g. ``1h``)."""
        return str(self.tradai["strategy"]["timeframe"])

    @property
    def max_age_days(self) -> int | None:
        """``retraining.max_age_days``, or None when the strategy does not ask for scheduled retraining."""
        retraining = self.tradai.get("retraining")
        return int(retraining["max_age_days"]) if retraining else None

    @property
    def dir(self) -> str:
        """``strategies/<name>`` relative to the repository root."""
        return f"{STRATEGIES_DIR}/{self.name}"

    @property
    def entry_point(self) -> EntryPoint:
        """``strategy.entry_point`` of tradai.yaml: the Freqtrade strategy class in the strategy's folder."""
        return EntryPoint.parse(self.name, str(self.tradai["strategy"]["entry_point"]))


@dataclass(frozen=True)
class EntryPoint:
    """Where a strategy's Freqtrade ``IStrategy`` is: ``<module path>:<class>`` under ``strategies/<name>/``.

    ``pascal.strategy:PascalStrategy`` is the class ``PascalStrategy`` of
    ``strategies/PascalStrategy/pascal/strategy.py``; Freqtrade loads it by class name from that file's
    directory (its ``--strategy-path``).
    """

    strategy: str
    module: str
    class_name: str

    @classmethod
    def parse(cls, strategy: str, value: str) -> EntryPoint:
        """From the schema-checked ``module.path:Class`` string."""
        module, _, class_name = value.partition(":")
        return cls(strategy=strategy, module=module, class_name=class_name)

    @property
    def file(self) -> str:
        """The module's file, relative to the repository root."""
        return f"{STRATEGIES_DIR}/{self.strategy}/{self.module.replace('.', '/')}.py"

    @property
    def directory(self) -> str:
        """The module file's directory (Freqtrade's ``--strategy-path``), relative to the repository root."""
        return self.file.rsplit("/", 1)[0]


def check_tradai(name: str, document: Document) -> list[InputError]:
    """Schema of tradai.yaml, plus ``strategy.name`` equal to the directory name."""
    from tradai_release.core.schema import check

    problems = check("tradai", document)
    if problems:
        return problems
    declared = document.data["strategy"]["name"]
    if declared != name:
        problems.append(
            document.error(["strategy", "name"], f"{declared!r} differs from its directory name {name!r}")
        )
    return problems


def check_ml_config(document: Document) -> list[InputError]:
    """Schema of ml_config.json, plus every feature taken from FEATURE_CATALOGUE."""
    from tradai_release.core.schema import check

    problems = check("ml_config", document)
    if problems:
        return problems
    catalogue = set(FEATURE_CATALOGUE)
    for index, feature in enumerate(document.data["features"]):
        if feature not in catalogue:
            problems.append(
                document.error(
                    ["features", index], f"unknown feature {feature!r} (not in the feature catalogue)"
                )
            )
    return problems


def build_strategy(name: str, tradai: Document, ml_config: Document) -> StrategySpec:
    """The typed strategy from two documents that passed :func:`check_tradai` / :func:`check_ml_config`."""
    return StrategySpec(
        name=name,
        tradai=tradai.data,
        ml_config=MLConfig.from_dict(ml_config.data),
        config_hash=config_hash(tradai.data),
    )
