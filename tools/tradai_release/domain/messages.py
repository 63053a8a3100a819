"""Text that edits write into git: the champion-vs-challenger table of a commit message / pull-request body.

A commit message is a record kept in the repository's history, written by the workflow that makes
the commit, so its Markdown is made here rather than by the terminal renderers.
"""

from __future__ import annotations

from tradai_release.registry.comparator import Comparison

PERCENT_METRICS: tuple[str, ...] = ("total_profit", "max_drawdown", "win_rate")
"""Metrics recorded as fractions and shown as percentages."""


def metric_text(metric: str, value: float | None) -> str:
    """A metric's value as people read it: fractions as percentages, trade counts whole."""
    if value is None:
        return "-"
    if metric in PERCENT_METRICS:
        return f"{value * 100:.2f} %"
    if metric == "total_trades":
        return f"{value:.0f}"
    return f"{value:.4g}"


def comparison_table(comparison: Comparison) -> list[str]:
    """The comparator's table, weighted scores and reasons as Markdown lines."""
    lines = [
        "| metric | challenger | champion | threshold | required | pass |",
        "|---|---:|---:|---|---|---|",
    ]
    for row in comparison.rows:
        passed = "-" if row.passed is None else ("yes" if row.passed else "no")
        lines.append(
            f"| {row.metric} | {metric_text(row.metric, row.challenger)} "
            f"| {metric_text(row.metric, row.champion)} "
            f"| {row.operator} {metric_text(row.metric, row.threshold)} | {'yes' if row.required else 'no'} "
            f"| {passed} |"
        )
    if comparison.score_challenger is not None:
        lines += [
            "",
            f"Weighted score: challenger {comparison.score_challenger:g}, "
            f"champion {comparison.score_champion:g}.",
        ]
    lines.append("")
    lines.extend(f"- {reason}" for reason in comparison.reasons)
    return lines
