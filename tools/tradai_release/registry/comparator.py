"""Champion/challenger comparison of model versions on the seed's metric table (docs/architecture.md §5)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tradai_release.core.errors import InputError

Decision = Literal["promote", "keep", "manual-review"]
PROMOTE: Decision = "promote"
KEEP: Decision = "keep"
MANUAL_REVIEW: Decision = "manual-review"

WEIGHTS: dict[str, float] = {"high": 3.0, "medium": 2.0, "low": 1.0}
_OPERATORS = (">", ">=", "<", "<=")
# Metrics the weighted score maximises; the others (drawdown) count as better when smaller.
_LOWER_IS_BETTER_OPERATORS = ("<", "<=")


@dataclass(frozen=True)
class Threshold:
    """``metric <operator> value``; ``required`` thresholds veto a promotion, optional ones only inform."""

    metric: str
    operator: str
    value: float
    required: bool
    weight: float

    def passes(self, measured: float) -> bool:
        if self.operator == ">":
            return measured > self.value
        if self.operator == ">=":
            return measured >= self.value
        if self.operator == "<":
            return measured < self.value
        return measured <= self.value

    @property
    def higher_is_better(self) -> bool:
        return self.operator not in _LOWER_IS_BETTER_OPERATORS


# The seed's table; max_drawdown and win_rate are fractions as TrainingResult records them.
DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("total_profit", ">", 0.0, required=True, weight=WEIGHTS["high"]),
    Threshold("sharpe_ratio", ">=", 0.5, required=True, weight=WEIGHTS["high"]),
    Threshold("max_drawdown", "<=", 0.30, required=True, weight=WEIGHTS["medium"]),
    Threshold("win_rate", ">=", 0.40, required=False, weight=WEIGHTS["low"]),
    Threshold("total_trades", ">=", 10.0, required=True, weight=WEIGHTS["low"]),
)
# The metric whose threshold failing means "not enough data to judge" rather than "worse".
TRADES_METRIC = "total_trades"


@dataclass(frozen=True)
class MetricRow:
    """One row of the comparison table."""

    metric: str
    challenger: float | None
    champion: float | None
    operator: str
    threshold: float
    required: bool
    weight: float
    passed: bool | None  # None: the challenger lacks the metric


@dataclass(frozen=True)
class Comparison:
    decision: Decision
    rows: tuple[MetricRow, ...]
    score_challenger: float | None
    score_champion: float | None
    reasons: tuple[str, ...]


def thresholds_from_dict(data: Mapping[str, Any], source: str = "thresholds") -> tuple[Threshold, ...]:
    """Thresholds from ``{metric: {"op": ">=", "value": 0.5, "required": true, "weight": "high"}}``.

    ``weight`` is a number or one of high/medium/low; ``required`` defaults to true.
    """
    thresholds: list[Threshold] = []
    for metric, spec in data.items():
        field = f"{metric}"
        if not isinstance(spec, Mapping):
            raise InputError(source, field, "must be a mapping with op and value")
        operator = spec.get("op", spec.get("operator"))
        if operator not in _OPERATORS:
            raise InputError(source, f"{field}.op", f"must be one of {', '.join(_OPERATORS)}")
        value = spec.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(source, f"{field}.value", "must be a number")
        required = spec.get("required", True)
        if not isinstance(required, bool):
            raise InputError(source, f"{field}.required", "must be true or false")
        weight = spec.get("weight", "medium")
        if isinstance(weight, str):
            if weight not in WEIGHTS:
                choices = ", ".join(WEIGHTS)
                raise InputError(source, f"{field}.weight", f"must be a number or one of {choices}")
            weight = WEIGHTS[weight]
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise InputError(source, f"{field}.weight", "must be a non-negative number")
        thresholds.append(Threshold(metric, operator, float(value), required, float(weight)))
    if not thresholds:
        raise InputError(source, "thresholds", "at least one threshold is needed")
    return tuple(thresholds)


def thresholds_from_file(path: Path) -> tuple[Threshold, ...]:
    """Thresholds from a JSON file in the ``thresholds_from_dict`` shape."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(path), "thresholds", "file not found") from None
    except json.JSONDecodeError as err:
        raise InputError(str(path), f"line {err.lineno}", err.msg) from None
    if not isinstance(data, Mapping):
        raise InputError(str(path), "thresholds", "must be a JSON object")
    return thresholds_from_dict(data, str(path))


class ModelComparator:
    """Judges a challenger's metrics against the thresholds and the champion's metrics."""

    def __init__(self, thresholds: Iterable[Threshold] = DEFAULT_THRESHOLDS) -> None:
        self.thresholds = tuple(thresholds)

    @classmethod
    def from_file(cls, path: Path) -> ModelComparator:
        return cls(thresholds_from_file(path))

    def score(self, metrics: Mapping[str, float], reference: Mapping[str, float]) -> float:
        """Weighted score of ``metrics`` relative to ``reference``: each metric earns its weight when
        it is at least as good as the reference's (a tie earns half)."""
        total = 0.0
        for threshold in self.thresholds:
            mine, theirs = metrics.get(threshold.metric), reference.get(threshold.metric)
            if mine is None or theirs is None:
                continue
            if mine == theirs:
                total += threshold.weight / 2
            elif (mine > theirs) == threshold.higher_is_better:
                total += threshold.weight
        return total

    def compare(self, challenger: Mapping[str, float], champion: Mapping[str, float] | None) -> Comparison:
        """promote / keep / manual-review, with the per-metric table and the reasons."""
        rows: list[MetricRow] = []
        missing: list[str] = []
        failed_required: list[str] = []
        failed_optional: list[str] = []
        for threshold in self.thresholds:
            value = challenger.get(threshold.metric)
            passed = None if value is None else threshold.passes(float(value))
            rows.append(MetricRow(
                metric=threshold.metric,
                challenger=None if value is None else float(value),
                champion=None if champion is None or champion.get(threshold.metric) is None
                else float(champion[threshold.metric]),
                operator=threshold.operator,
                threshold=threshold.value,
                required=threshold.required,
                weight=threshold.weight,
                passed=passed,
            ))
            label = f"{threshold.metric} {threshold.operator} {threshold.value:g}"
            if passed is None:
                missing.append(threshold.metric)
            elif not passed and threshold.required:
                failed_required.append(f"{threshold.metric} = {value:g} fails {label}")
            elif not passed:
                failed_optional.append(f"{threshold.metric} = {value:g} misses optional {label}")
        table = tuple(rows)

        insufficient = [reason for reason in failed_required if reason.startswith(TRADES_METRIC + " ")]
        if missing or insufficient:
            reasons = [f"missing metric {metric}" for metric in missing]
            reasons += [f"insufficient data: {reason}" for reason in insufficient]
            return Comparison(MANUAL_REVIEW, table, None, None, tuple(reasons))
        if failed_required:
            return Comparison(KEEP, table, None, None, tuple(failed_required + failed_optional))
        if champion is None:
            reasons = ["no champion: every required threshold passes", *failed_optional]
            return Comparison(PROMOTE, table, None, None, tuple(reasons))

        champion_missing = [t.metric for t in self.thresholds if t.metric not in champion]
        if champion_missing:
            reasons = [f"champion lacks metric {metric}" for metric in champion_missing]
            return Comparison(MANUAL_REVIEW, table, None, None, tuple(reasons))
        mine = self.score(challenger, champion)
        theirs = self.score(champion, challenger)
        if mine > theirs:
            reasons = [f"challenger beats champion on weighted score {mine:g} > {theirs:g}", *failed_optional]
            return Comparison(PROMOTE, table, mine, theirs, tuple(reasons))
        verdict = f"challenger does not beat champion on weighted score {mine:g} <= {theirs:g}"
        reasons = [verdict, *failed_optional]
        return Comparison(KEEP, table, mine, theirs, tuple(reasons))
