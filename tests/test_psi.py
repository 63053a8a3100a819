"""PSI against values computed by hand: identical -> 0, a known shift -> its value, empty bins finite."""

from __future__ import annotations

import json
import math

import pytest

from tradai_release.core.psi import EPSILON, psi, reference_distribution


def test_reference_distribution_quantile_edges() -> None:
    ref = reference_distribution([float(v) for v in range(1, 11)], bins=2)
    assert ref == {"edges": [5.5], "proportions": [0.5, 0.5]}
    assert json.loads(json.dumps(ref)) == ref  # plain JSON, stored in metadata.json


def test_reference_distribution_ten_bins() -> None:
    ref = reference_distribution([float(v) for v in range(100)], bins=10)
    assert len(ref["edges"]) == 9
    assert ref["proportions"] == pytest.approx([0.1] * 10)


def test_identical_distribution_is_zero() -> None:
    values = [math.sin(i) * 3 + i % 7 for i in range(1000)]
    assert psi(reference_distribution(values), values) == 0.0


def test_known_shift_matches_hand_computed_value() -> None:
    reference = {"edges": [0.0], "proportions": [0.5, 0.5]}
    values = [-1.0] * 80 + [1.0] * 20  # 80 % below the cut, 20 % above
    # (0.8 - 0.5) ln(0.8 / 0.5) + (0.2 - 0.5) ln(0.2 / 0.5)
    #   = 0.3 * 0.4700036 + 0.3 * 0.9162907 = 0.1410011 + 0.2748872 = 0.4158883
    assert psi(reference, values) == pytest.approx(0.4158883, abs=1e-7)


def test_three_bin_shift_hand_computed() -> None:
    reference = {"edges": [1.0, 2.0], "proportions": [0.25, 0.5, 0.25]}
    values = [0.5] * 10 + [1.5] * 50 + [2.5] * 40  # 0.1 / 0.5 / 0.4
    # (0.1-0.25) ln(0.1/0.25) + 0 + (0.4-0.25) ln(0.4/0.25)
    #   = 0.15 * 0.9162907 + 0.15 * 0.4700036 = 0.1374436 + 0.0705005 = 0.2079442
    assert psi(reference, values) == pytest.approx(0.2079442, abs=1e-7)


def test_value_on_an_edge_goes_to_the_upper_bin() -> None:
    reference = {"edges": [0.0], "proportions": [0.5, 0.5]}
    assert psi(reference, [-1.0, 0.0]) == 0.0  # 0.0 counts in the upper bin: 50/50


def test_empty_actual_bin_is_floored_not_infinite() -> None:
    reference = {"edges": [0.0], "proportions": [0.5, 0.5]}
    value = psi(reference, [-1.0] * 100)  # nothing in the upper bin
    # (1 - 0.5) ln(1 / 0.5) + (1e-4 - 0.5) ln(1e-4 / 0.5)
    #   = 0.5 * 0.6931472 + 0.4999 * 8.5171932 = 0.3465736 + 4.2577449 = 4.6043185
    assert math.isfinite(value)
    assert value == pytest.approx(4.6043185, abs=1e-6)


def test_empty_reference_bin_is_floored_not_division_by_zero() -> None:
    reference = {"edges": [0.0], "proportions": [1.0, 0.0]}
    value = psi(reference, [-1.0] * 50 + [1.0] * 50)
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    assert math.isfinite(value)
    assert value == pytest.approx(expected)


def test_no_finite_values_is_finite() -> None:
    reference = {"edges": [0.0], "proportions": [0.5, 0.5]}
    value = psi(reference, [float("nan"), float("inf")])
    expected = 2 * (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert value == pytest.approx(expected)


def test_constant_feature_reference() -> None:
    ref = reference_distribution([1.0] * 50)
    assert sum(ref["proportions"]) == pytest.approx(1.0)
    assert psi(ref, [1.0] * 20) == 0.0
    assert math.isfinite(psi(ref, [5.0] * 20))


def test_empty_reference_values() -> None:
    ref = reference_distribution([])
    assert ref == {"edges": [], "proportions": [1.0]}
    assert psi(ref, [1.0, 2.0]) == 0.0


def test_psi_is_symmetric_in_the_bins_it_compares() -> None:
    a = {"edges": [0.0], "proportions": [0.8, 0.2]}
    b = {"edges": [0.0], "proportions": [0.2, 0.8]}
    to_b = psi(a, [-1.0] * 20 + [1.0] * 80)
    to_a = psi(b, [-1.0] * 80 + [1.0] * 20)
    assert to_b == pytest.approx(to_a)


def test_discrete_feature_survives_stored_rounding() -> None:
    # hour_sin: 24 distinct values with last-bit noise (sin(a) and sin(pi - a) differ in the 16th digit).
    # Training stores edges rounded to 10 significant digits; an edge sitting exactly on a value would
    # flip that value's whole mass into the other bin (PSI ~0.47 for identical data before the fix).
    values = [math.sin(2 * math.pi * (i % 24) / 24) for i in range(2000)]
    ref = reference_distribution(values)
    stored = json.loads(json.dumps({"edges": [float(f"{e:.10g}") for e in ref["edges"]],
                                    "proportions": ref["proportions"]}))
    assert psi(stored, values) == 0.0
    distinct = sorted(set(values))
    for edge in ref["edges"]:
        assert min(abs(edge - v) for v in distinct) > 1e-6  # every edge sits in a gap, not on a value
