"""The ``--data`` flag of ``invoke drift`` and ``invoke retrain-check``: which candles CSV holds each
strategy's recent window."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tradai_release.core.errors import InputError


def parse_data_options(values: Sequence[str], strategy: str | Sequence[str] | None = None) -> dict[str, Path]:
    """``--data`` values: ``STRATEGY=PATH`` each, or one bare ``PATH`` with exactly one ``--strategy``."""
    if isinstance(strategy, str) or strategy is None:
        only = strategy
    else:
        only = strategy[0] if len(strategy) == 1 else None
    data: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name and path:
            data[name] = Path(path)
        elif only:
            data[only] = Path(value)
        else:
            raise InputError(
                "--data", "data", f"{value!r}: give STRATEGY=PATH, or PATH together with --strategy"
            )
    return data
