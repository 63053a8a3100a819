"""Population Stability Index: reference distributions recorded at training, and PSI against new data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# Bins with no observations get this share instead of 0, so ln(p/q) stays finite.
EPSILON = 1e-4
# Values closer than this (relative) are one value for binning: float noise, not information.
RELATIVE_TOLERANCE = 1e-9


def reference_distribution(values: Sequence[float], bins: int = 10) -> dict[str, Any]:
    """Quantile bin edges of ``values`` and the share of values in each bin.

    Returns ``{"edges": [...], "proportions": [...]}`` where ``edges`` are the interior cut
    points (``len(proportions) - 1`` of them; the outer bins are open-ended), so the record
    is plain JSON and nothing of the training data has to be kept to compute PSI later.
    """
    import numpy as np

    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return {"edges": [], "proportions": [1.0]}
    cuts = np.unique(np.quantile(data, np.linspace(0, 1, bins + 1)[1:-1]))
    # A quantile often IS a data value (features like hour_sin take a few distinct values, each
    # with last-bit noise). An edge on a value splits that value's mass by a hair, so rounding the
    # edge when it is stored, or a last-bit difference in the live feature, moves the whole mass
    # to the other bin (PSI ~0.5 between identical data). So values closer than a relative 1e-9
    # form one cluster, each cut moves to the midpoint of the gap below the first cluster reaching
    # it, and every reference value sits well inside its bin.
    distinct = np.unique(data)
    gap = np.diff(distinct) > RELATIVE_TOLERANCE * np.maximum(1.0, np.abs(distinct[1:]))
    starts = np.concatenate(([0], np.nonzero(gap)[0] + 1))
    lows = distinct[starts]
    highs = distinct[np.concatenate((starts[1:] - 1, [distinct.size - 1]))]
    cluster = np.searchsorted(highs, cuts, side="left")  # first cluster whose largest value >= cut
    cluster = cluster[cluster > 0]  # a cut at the minimum would leave its lower bin empty
    edges = np.unique((highs[cluster - 1] + lows[cluster]) / 2)
    return {"edges": [float(c) for c in edges], "proportions": _proportions(data, edges)}


def _proportions(data: Any, edges: Any) -> list[float]:
    import numpy as np

    counts = np.bincount(np.searchsorted(edges, data, side="right"), minlength=len(edges) + 1)
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts]


def psi(reference: dict[str, Any], values: Sequence[float]) -> float:
    """PSI of ``values`` against a reference from :func:`reference_distribution`.

    ``sum((actual - expected) * ln(actual / expected))`` over the reference bins; empty bins
    on either side are floored at EPSILON so the result is finite.
    """
    import numpy as np

    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    expected = [max(p, EPSILON) for p in reference["proportions"]]
    actual = [max(p, EPSILON) for p in _proportions(data, np.asarray(reference["edges"], dtype=float))]
    return float(sum((a - e) * math.log(a / e) for a, e in zip(actual, expected, strict=True)))
