"""ModelComparator: the seed's threshold table, the weighted comparison, manual review."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradai_release.core.errors import InputError
from tradai_release.registry.comparator import (
    DEFAULT_THRESHOLDS,
    KEEP,
    MANUAL_REVIEW,
    PROMOTE,
    ModelComparator,
    thresholds_from_dict,
    thresholds_from_file,
)

GOOD = {"total_profit": 120.0, "sharpe_ratio": 1.2, "max_drawdown": 0.12, "win_rate": 0.55,
        "total_trades": 40.0}


def with_value(metric: str, value: float) -> dict[str, float]:
    return {**GOOD, metric: value}


@pytest.mark.parametrize(
    ("metric", "passing", "failing"),
    [
        ("total_profit", 0.01, 0.0),
        ("sharpe_ratio", 0.5, 0.4999),
        ("max_drawdown", 0.30, 0.3001),
        ("win_rate", 0.40, 0.3999),
        ("total_trades", 10.0, 9.0),
    ],
)
def test_each_threshold_just_passing_and_just_failing(metric: str, passing: float, failing: float) -> None:
    comparator = ModelComparator()
    passed = comparator.compare(with_value(metric, passing), None)
    assert passed.decision == PROMOTE
    assert next(row for row in passed.rows if row.metric == metric).passed is True

    failed = comparator.compare(with_value(metric, failing), None)
    row = next(row for row in failed.rows if row.metric == metric)
    assert row.passed is False
    if metric == "win_rate":  # optional: informs, never vetoes
        assert failed.decision == PROMOTE
        assert any("optional" in reason for reason in failed.reasons)
    elif metric == "total_trades":  # too few trades = not enough data to judge
        assert failed.decision == MANUAL_REVIEW
        assert any("insufficient data" in reason for reason in failed.reasons)
    else:
        assert failed.decision == KEEP
        assert any(reason.startswith(metric) for reason in failed.reasons)


def test_rows_carry_threshold_required_and_both_values() -> None:
    champion = with_value("sharpe_ratio", 0.9)
    result = ModelComparator().compare(GOOD, champion)
    assert [row.metric for row in result.rows] == [t.metric for t in DEFAULT_THRESHOLDS]
    sharpe = result.rows[1]
    assert (sharpe.challenger, sharpe.champion, sharpe.operator, sharpe.threshold, sharpe.required) == (
        1.2, 0.9, ">=", 0.5, True)
    assert result.rows[3].required is False


def test_challenger_must_beat_champion_on_weighted_score() -> None:
    comparator = ModelComparator()
    champion = GOOD
    better = {**GOOD, "total_profit": 200.0, "sharpe_ratio": 1.5}
    promoted = comparator.compare(better, champion)
    assert promoted.decision == PROMOTE
    assert promoted.score_challenger is not None and promoted.score_champion is not None
    assert promoted.score_challenger > promoted.score_champion

    identical = comparator.compare(GOOD, champion)
    assert identical.decision == KEEP
    assert identical.score_challenger == identical.score_champion

    # better on two low/medium metrics but worse on two high ones: keep
    mixed = {**GOOD, "total_profit": 100.0, "sharpe_ratio": 1.0, "max_drawdown": 0.05, "win_rate": 0.6}
    kept = comparator.compare(mixed, champion)
    assert kept.decision == KEEP
    assert kept.score_challenger == 1.0 + 2.0 + 0.5  # drawdown (medium) + win_rate (low) + tie on trades
    assert kept.score_champion == 3.0 + 3.0 + 0.5


def test_lower_drawdown_counts_as_better() -> None:
    comparator = ModelComparator()
    result = comparator.compare(with_value("max_drawdown", 0.05), GOOD)
    assert result.decision == PROMOTE


def test_missing_metric_needs_manual_review() -> None:
    challenger = {key: value for key, value in GOOD.items() if key != "sharpe_ratio"}
    result = ModelComparator().compare(challenger, GOOD)
    assert result.decision == MANUAL_REVIEW
    assert result.reasons == ("missing metric sharpe_ratio",)
    assert result.rows[1].passed is None


def test_champion_without_metrics_needs_manual_review() -> None:
    result = ModelComparator().compare(GOOD, {"total_profit": 1.0})
    assert result.decision == MANUAL_REVIEW
    assert "champion lacks metric sharpe_ratio" in result.reasons


def test_failed_required_threshold_keeps_even_if_better_than_champion() -> None:
    weak_champion = {**GOOD, "total_profit": -50.0}
    result = ModelComparator().compare(with_value("sharpe_ratio", 0.1), weak_champion)
    assert result.decision == KEEP


def test_thresholds_from_dict_and_file(tmp_path: Path) -> None:
    spec = {"total_profit": {"op": ">", "value": 100, "weight": "high"},
            "win_rate": {"op": ">=", "value": 0.6, "required": False, "weight": 0.5}}
    comparator = ModelComparator(thresholds_from_dict(spec))
    assert comparator.compare({"total_profit": 150.0, "win_rate": 0.5}, None).decision == PROMOTE
    assert comparator.compare({"total_profit": 50.0, "win_rate": 0.9}, None).decision == KEEP
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps(spec))
    assert thresholds_from_file(path) == comparator.thresholds
    assert ModelComparator.from_file(path).thresholds == comparator.thresholds


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"x": 1}, "x"),
        ({"x": {"op": "==", "value": 1}}, "x.op"),
        ({"x": {"op": ">", "value": "1"}}, "x.value"),
        ({"x": {"op": ">", "value": True}}, "x.value"),
        ({"x": {"op": ">", "value": 1, "required": "yes"}}, "x.required"),
        ({"x": {"op": ">", "value": 1, "weight": "huge"}}, "x.weight"),
        ({"x": {"op": ">", "value": 1, "weight": -1}}, "x.weight"),
        ({}, "thresholds"),
    ],
)
def test_bad_threshold_specs_name_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as caught:
        thresholds_from_dict(spec, "t.json")
    assert caught.value.file == "t.json"
    assert caught.value.field == field


def test_bad_threshold_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        thresholds_from_file(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{\n  nope")
    with pytest.raises(InputError, match="line 2"):
        thresholds_from_file(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(InputError, match="JSON object"):
        thresholds_from_file(listed)
