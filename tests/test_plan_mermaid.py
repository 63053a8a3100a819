"""The plan comment's equity chart: Mermaid xychart blocks that parse, and the equity curve they draw.

No Mermaid CLI is installed here, so the blocks are checked against the xychart-beta grammar of Mermaid's
parser (packages/mermaid/src/diagrams/xychart/parser/xychart.jison), restricted to what the renderer
emits: an optional ``%%{init: JSON}%%`` directive, the ``xychart-beta`` header, then ``title "text"``,
``x-axis "title" MIN --> MAX`` or ``x-axis "title" [a, b]``, ``y-axis "title" MIN --> MAX`` and
``line [n, n, ...]`` / ``bar [...]`` statements; numbers as the grammar reads them.
"""

from __future__ import annotations

import pytest

from helpers import MermaidSyntaxError, mermaid_blocks, parse_xychart
from tradai_release.core.equity import EQUITY_TAG, MAX_POINTS, EquityCurve, downsample, from_tags
from tradai_release.domain.gate import ModelChange
from tradai_release.engine.plan import Plan
from tradai_release.registry.comparator import ModelComparator
from tradai_release.render.plan import EQUITY_POINTS, render_markdown


def curve(final: float, points: int = 300) -> EquityCurve:
    values = [1 + (final - 1) * index / (points - 1) for index in range(points)]
    return EquityCurve(downsample(values), points - 1, "2024-04-01T00:00:00Z", "2024-05-12T00:00:00Z")


def change(champion: EquityCurve | None, challenger: EquityCurve | None, *, champion_version: int | None = 1
           ) -> ModelChange:
    metrics = {"total_profit": 0.2, "sharpe_ratio": 2.0, "max_drawdown": 0.1, "win_rate": 0.5,
               "total_trades": 40.0}
    better = {**metrics, "total_profit": 0.3}
    return ModelChange(
        profile=3, model="PascalStrategy", alias="p3", champion=champion_version, challenger=2,
        champion_metrics=metrics, challenger_metrics=better, rollback=False,
        comparison=ModelComparator().compare(better, metrics if champion_version else None),
        champion_equity=champion, challenger_equity=challenger,
    )


def markdown_of(*changes: ModelChange) -> str:
    return render_markdown(Plan(env="prod", commit="a" * 40, actions=(), drift=(), model_changes=changes))


def test_each_model_change_gets_a_chart_of_champion_and_challenger_that_parses() -> None:
    text = markdown_of(change(curve(1.25), curve(1.28)))
    (block,) = mermaid_blocks(text)
    chart = parse_xychart(block)
    champion, challenger = chart["series"]  # type: ignore[misc]
    assert champion[0] == challenger[0] == "line"
    assert len(champion[1]) == EQUITY_POINTS
    assert champion[1][0] == pytest.approx(1.0) and champion[1][-1] == pytest.approx(1.25, abs=1e-4)
    assert challenger[1][-1] == pytest.approx(1.28, abs=1e-4)
    low, high = chart["y"]  # type: ignore[misc]
    assert low < 1.0 and high > 1.28  # every point inside the axis
    assert chart["x"] == (0.0, 100.0)
    palette = chart["init"]["themeVariables"]["xyChart"]["plotColorPalette"]  # type: ignore[index]
    assert len(palette.split(",")) == 2
    # the chart sits under the metric table, and the caption says which line is which (no legend in Mermaid)
    assert text.index("| metric |") < text.index("```mermaid")
    assert "grey line: champion v1, final equity 1.2500" in text
    assert "blue line: challenger v2, final equity 1.2800" in text


def test_a_version_without_a_curve_is_named_and_the_other_drawn_alone() -> None:
    text = markdown_of(change(None, curve(1.1)))
    (block,) = mermaid_blocks(text)
    assert len(parse_xychart(block)["series"]) == 1  # type: ignore[arg-type]
    assert "No curve recorded for champion v1." in text
    first_apply = markdown_of(change(None, curve(1.1), champion_version=None))
    caption = next(line for line in first_apply.splitlines() if line.startswith("Equity:"))
    assert caption.startswith("Equity: blue line: challenger v2") and "champion" not in caption


def test_no_curve_at_all_means_no_block_and_a_note() -> None:
    text = markdown_of(change(None, None))
    assert mermaid_blocks(text) == []
    assert "_No held-out equity curve recorded for champion v1 or challenger v2._" in text


def test_the_grammar_check_rejects_what_mermaid_would() -> None:
    good = 'xychart-beta\n    x-axis "x" 0 --> 100\n    line [1, 2.5, -3]'
    assert parse_xychart(good)["series"] == [("line", [1.0, 2.5, -3.0])]
    for bad in (
        'x-axis "x" 0 --> 100\n line [1]',  # no header
        'xychart-beta\n    line [1, , 2]',  # empty value
        'xychart-beta\n    line [1, 2]\n    line [1]',  # ragged series
        'xychart-beta\n    title unquoted\n    line [1]',
        'xychart-beta\n    x-axis "x" 100 --> 0\n    line [1]',
        '%%{init: {bad json}}%%\nxychart-beta\n    line [1]',
        'xychart-beta\n    line [1e3]',  # the grammar has no exponent
    ):
        with pytest.raises(MermaidSyntaxError):
            parse_xychart(bad)


def test_equity_curves_are_downsampled_tagged_and_read_back() -> None:
    values = [1 + 0.001 * index for index in range(1, 2001)]
    points = downsample(values)
    assert len(points) == MAX_POINTS and points[0] == 1.0 and points[-1] == round(values[-1], 5)
    short = downsample([1.01, 1.02])
    assert short == (1.0, 1.01, 1.02)
    recorded = EquityCurve(points, 2000, "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
    tag = recorded.to_tag()
    assert len(tag) < 5000  # a small tag: read with every version listing
    assert from_tags({EQUITY_TAG: tag}) == recorded
    assert recorded.resampled(3) == pytest.approx((1.0, recorded.resampled(3)[1], points[-1]))
    for broken in ("", "not json", '{"equity": []}', '{"equity": ["x"]}', '{"candles": 3}'):
        assert from_tags({EQUITY_TAG: broken}) is None
    assert from_tags({}) is None
