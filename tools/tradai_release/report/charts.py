"""The report's charts, drawn by matplotlib (object API, SVG backend; imported only here, when drawing).

Each chart is an SVG document with its text kept as text (smaller, and searchable in a browser),
no timestamp and a fixed id salt, so the same data gives the same bytes (and the same file name).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tradai_release.core.equity import EquityCurve
    from tradai_release.engine.release_table import RecordedCheck

# Colour-blind-safe (Okabe-Ito) and told apart by line style as well, so a grey print still reads.
ROLE_STYLES: dict[str, tuple[str, str, float]] = {
    "champion": ("#0072B2", "-", 2.2),
    "challenger": ("#E69F00", "--", 1.6),
    "previous champion": ("#7f7f7f", ":", 1.6),
}
LEVEL_COLOURS = {"stable": "#009E73", "moderate": "#E69F00", "significant": "#D55E00"}
POINTS = 200  # per line: every curve is resampled to the same x grid (share of its held-out window)


@dataclass(frozen=True)
class Line:
    """One version's equity curve on the chart."""

    label: str
    role: str
    curve: EquityCurve


@dataclass(frozen=True)
class LiveLine:
    """One bot's live equity (1 + closed profit since the window's start) against hours of the window."""

    label: str
    role: str  # challenger / champion / expected
    hours: tuple[float, ...]
    equity: tuple[float, ...]


def write_chart(job: tuple[Path, Callable[..., str], tuple[Any, ...]]) -> None:
    """Draw one chart into its file (a worker process's unit of work: picklable in, nothing out)."""
    path, draw, args = job
    path.write_text(draw(*args), encoding="utf-8")


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "tradai-report",
            "font.family": "sans-serif",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#e5e7eb",
            "grid.linewidth": 0.6,
        }
    ):
        yield


def _svg(figure: Figure) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(figure)
    buffer = io.StringIO()
    # Fixed margins (set by each chart), not bbox_inches="tight": that draws every figure twice.
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def equity_svg(title: str, lines: Sequence[Line]) -> str:
    """Equity of each version over its held-out window (x: share of the window, so windows of different
    length line up), one line per version, styled by role, with the final equity in the legend."""
    from matplotlib.figure import Figure

    with _style():
        figure = Figure(figsize=(7.6, 3.4))
        figure.subplots_adjust(left=0.09, right=0.98, bottom=0.15, top=0.9)
        axes = figure.add_subplot()
        grid = [100 * index / (POINTS - 1) for index in range(POINTS)]
        for order, line in enumerate(lines):
            colour, dash, width = ROLE_STYLES.get(line.role, ("#56B4E9", "-.", 1.4))
            label = f"{line.label}: {line.curve.final:.3f}"
            # The first line (the champion) is drawn on top of the others.
            axes.plot(grid, line.curve.resampled(POINTS), color=colour, linestyle=dash, linewidth=width,
                      label=label, zorder=10 - order)
        axes.axhline(1.0, color="#9ca3af", linewidth=0.8)
        axes.set_xlim(0, 100)
        axes.set_xlabel("held-out window (%)")
        axes.set_ylabel("equity (start = 1)")
        axes.set_title(title, loc="left", fontsize=10)
        axes.legend(loc="upper left", frameon=False, title="version: final equity", title_fontsize=8)
        return _svg(figure)


def psi_svg(title: str, check: RecordedCheck, history: Sequence[RecordedCheck]) -> str:
    """PSI per feature (and per model's predictions) of ``check`` as horizontal bars coloured by level, with
    the moderate and significant levels drawn; beside it the max PSI of each recorded check over time."""
    from matplotlib.figure import Figure

    rows = list(check.psi)
    with _style():
        wide = len(history) > 1
        height = max(2.4, 0.24 * len(rows) + 1.2)
        figure = Figure(figsize=(10.4 if wide else 7.6, height))
        inch = 1 / height  # margins in inches, whatever the number of rows
        bottom = (1.05 if wide else 0.55) * inch  # the trend's rotated dates need room
        figure.subplots_adjust(left=0.2 if wide else 0.24, right=0.98, bottom=bottom, top=1 - 0.35 * inch,
                               wspace=0.3)
        axes = figure.add_subplot(1, 2, 1) if wide else figure.add_subplot()
        labels = [row.name if row.kind == "feature" else f"prediction: {row.name}" for row in rows]
        values = [row.psi for row in rows]
        axes.barh(labels, values, color=[LEVEL_COLOURS.get(row.level, "#56B4E9") for row in rows])
        axes.invert_yaxis()
        _levels(axes, check, vertical=True)
        axes.set_xlabel("PSI")
        axes.set_title(title, loc="left", fontsize=10)
        axes.grid(axis="y", visible=False)
        for index, value in enumerate(values):
            axes.annotate(f"{value:.3f}", (value, index), xytext=(3, 0), textcoords="offset points",
                          va="center", fontsize=7)
        if wide:
            trend = figure.add_subplot(1, 2, 2)
            ordered = list(reversed(history))  # oldest first
            # month-day hour:minute: short enough for rotated labels inside the figure
            trend.plot([c.checked_at[5:16].replace("T", " ") for c in ordered], [c.max_psi for c in ordered],
                       marker="o", color="#0072B2", linewidth=1.4)
            _levels(trend, check, vertical=False)
            trend.set_ylim(0, 1.15 * max([check.thresholds.significant, *(c.max_psi for c in ordered)]))
            trend.set_ylabel("max PSI")
            trend.set_title("max PSI of each recorded check", loc="left", fontsize=10)
            for label in trend.get_xticklabels():
                label.set(rotation=30, ha="right", fontsize=7)
        return _svg(figure)


def _levels(axes: Any, check: RecordedCheck, *, vertical: bool) -> None:
    limits = check.thresholds
    draw = axes.axvline if vertical else axes.axhline
    draw(limits.moderate, color=LEVEL_COLOURS["moderate"], linestyle="--", linewidth=1,
         label=f"moderate {limits.moderate:g}")
    draw(limits.significant, color=LEVEL_COLOURS["significant"], linestyle="--", linewidth=1,
         label=f"significant {limits.significant:g}")
    axes.legend(loc="lower right", frameon=False, fontsize=7)


def live_svg(title: str, lines: Sequence[LiveLine]) -> str:
    """The live dry-run equity of the new version's bot against the champion's over the same hours and the
    backtest's expectation (a straight line at its held-out profit per hour)."""
    from matplotlib.figure import Figure

    styles = {**ROLE_STYLES, "expected": ("#7f7f7f", ":", 1.4)}
    with _style():
        figure = Figure(figsize=(7.6, 3.2))
        figure.subplots_adjust(left=0.09, right=0.98, bottom=0.16, top=0.9)
        axes = figure.add_subplot()
        for order, line in enumerate(lines):
            colour, dash, width = styles.get(line.role, ("#56B4E9", "-.", 1.4))
            final = f"{line.equity[-1]:.4f}" if line.equity else "-"
            axes.plot(line.hours, line.equity, color=colour, linestyle=dash, linewidth=width,
                      marker="o" if len(line.hours) < 3 else None, markersize=3,
                      label=f"{line.label}: {final}", zorder=10 - order)
        axes.axhline(1.0, color="#9ca3af", linewidth=0.8)
        axes.set_xlabel("hours since the challenger started")
        axes.set_ylabel("equity (start = 1)")
        axes.set_title(title, loc="left", fontsize=10)
        axes.legend(loc="upper left", frameon=False, title="bot: latest equity", title_fontsize=8)
        return _svg(figure)
