"""Render the board into a directory of HTML pages, one stylesheet and SVG chart files.

The site is written into a scratch directory beside ``out`` and renamed into place, so a failed build
leaves the previous site (or nothing). Pages reference only files inside the directory, with relative
links, so the site works from disk (``file://``) and from any web path, and loads nothing from another
host. ``out`` must be missing, empty, or a site this function wrote (it holds ``MARKER``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError
from tradai_release.core.redact import scrub_text

if TYPE_CHECKING:
    from jinja2 import Environment as Templates

    from tradai_release.core.settings import Settings
    from tradai_release.report.board import Board, Cell, EnvBoard, StrategyEnv

MARKER = ".tradai-report"
MAX_WORKERS = 4  # chart-drawing processes at most (each imports matplotlib once, about a second)
PARALLEL_FROM = 24  # charts; fewer are drawn in this process
TEMPLATES = Path(__file__).parent / "templates"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class SiteResult:
    """What ``build_site`` wrote."""

    out: Path
    index: Path
    pages: int
    charts: int
    bytes: int
    seconds: float
    envs: tuple[str, ...]
    strategies: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "index": str(self.index),
            "pages": self.pages,
            "charts": self.charts,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 2),
            "envs": list(self.envs),
            "strategies": self.strategies,
        }


def build_site(
    settings: Settings, out: Path, envs: Iterable[str] | None = None, commit: str = "HEAD"
) -> SiteResult:
    """Read the board of ``envs`` (default: every declared environment) and write the site to ``out``."""
    from tradai_release.report.board import read_board

    started = time.perf_counter()
    out = Path(out).expanduser().resolve()
    _check_out(out)
    board = read_board(settings, envs, commit)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    try:
        pages, charts = write_site(board, scratch)
        scratch.chmod(0o755)
        from tradai_release.core.fsutil import swap_into_place

        swap_into_place(scratch, out)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    return SiteResult(
        out=out,
        index=out / "index.html",
        pages=pages,
        charts=charts,
        bytes=size,
        seconds=time.perf_counter() - started,
        envs=tuple(env.env for env in board.envs),
        strategies=len(board.strategies),
    )


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "--out", "is a file; give a directory for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise InputError(str(out), "--out", "is not empty and holds no earlier report; give a new directory")


def page_name(strategy: str) -> str:
    """The file of a strategy's page (names are identifiers already; anything else is replaced)."""
    return f"strategies/{_SAFE.sub('_', strategy)}.html"


def write_site(board: Board, root: Path) -> tuple[int, int]:
    """Write every page, the stylesheet and the charts under ``root``; returns (pages, charts)."""
    templates = _templates()
    charts = _Charts(root / "charts")
    (root / "strategies").mkdir(parents=True)
    (root / MARKER).write_text("written by invoke report; the whole directory is replaced on the next run\n")
    shutil.copyfile(TEMPLATES / "style.css", root / "style.css")
    common = {"board": board, "page_name": page_name}
    (root / "index.html").write_text(
        templates.get_template("board.html.j2").render(**common, up="", title="Release board"),
        encoding="utf-8",
    )
    (root / "deployments.html").write_text(
        templates.get_template("deployments.html.j2").render(**common, up="", title="Deployments"),
        encoding="utf-8",
    )
    pages = 2
    strategy_page = templates.get_template("strategy.html.j2")
    for name, entries in board.strategies.items():
        sections = [_section(name, entry, charts) for entry in entries]
        (root / page_name(name)).write_text(
            strategy_page.render(**common, up="../", title=name, strategy=name, sections=sections),
            encoding="utf-8",
        )
        pages += 1
    charts.draw()
    return pages, charts.count


def _section(name: str, entry: StrategyEnv, charts: _Charts) -> dict[str, Any]:
    from tradai_release.report import charts as draw

    lines = [
        draw.Line(f"v{row.info.version} {row.role}", row.role, row.equity)
        for row in entry.charted
        if row.equity is not None
    ]
    equity = None
    if lines:
        # No environment in the chart: environments registering the same versions share one file.
        equity = charts.add(
            ("equity", name, [(line.label, line.curve.points) for line in lines]),
            draw.equity_svg, f"{name}: held-out equity", lines,
        )
    without = [row.info.version for row in entry.charted if row.equity is None]
    drift = None
    live = sorted(set(entry.champions.values()))
    checks = [check for check in entry.drift if check.version in live]
    if checks:
        latest = checks[0]
        key = ("psi", entry.env, name, [(c.checked_at, [(r.name, r.psi) for r in c.psi]) for c in checks])
        drift = {
            "check": latest,
            "chart": charts.add(
                key, draw.psi_svg, f"PSI of v{latest.version} in {entry.env}", latest, checks[:30]
            ),
            "history": checks,
        }
    return {"entry": entry, "equity": equity, "without_curve": without, "drift": drift,
            "live": _live_chart(name, entry, charts)}


def _live_chart(name: str, entry: StrategyEnv, charts: _Charts) -> str | None:
    """The live equity chart of the strategy's verification in ``entry.env`` (None without readings)."""
    from tradai_release.report import charts as draw

    verification = entry.verification
    if verification is None or not verification.challenger:
        return None
    bot = [r for r in verification.challenger if r.answered and r.since is not None]
    if not bot:
        return None
    start = bot[-1].since
    assert start is not None
    bot = [r for r in bot if r.since == start]

    def hours(reading: Any) -> float:
        return max(0.0, (reading.observed_at - start).total_seconds() / 3600)

    new = verification.candidate
    lines = [draw.LiveLine(f"v{new} {'challenger' if verification.reached == 0 else 'live'}", "challenger",
                           tuple(hours(r) for r in bot), tuple(1 + r.closed_profit for r in bot))]
    champion = [r for r in verification.champion if r.answered and r.observed_at >= start]
    if champion:
        base = champion[0].closed_profit
        lines.append(draw.LiveLine(f"v{champion[-1].model_version} champion", "champion",
                                   tuple(hours(r) for r in champion),
                                   tuple(1 + r.closed_profit - base for r in champion)))
    if verification.expected_per_hour is not None:
        end = max(line.hours[-1] for line in lines)
        lines.append(draw.LiveLine(f"v{new} backtest expectation", "expected", (0.0, end),
                                   (1.0, 1 + verification.expected_per_hour * end)))
    key = ("live", entry.env, name, [(line.label, line.hours, line.equity) for line in lines])
    title = f"{name} p{verification.profile} in {entry.env}: live dry-run equity"
    return charts.add(key, draw.live_svg, title, lines)


class _Charts:
    """Chart files named by a digest of what they show: each drawn once, however many pages show it.

    Pages only need the names, so charts are collected while the pages render and drawn afterwards,
    in worker processes when there are many (matplotlib is CPU-bound and holds the GIL).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, tuple[Callable[..., str], tuple[Any, ...]]] = {}

    @property
    def count(self) -> int:
        return len(self.jobs)

    def add(self, key: Any, draw: Callable[..., str], *args: Any) -> str:
        """The chart's file name; ``draw(*args)`` (module-level, picklable) makes its SVG later."""
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:20]
        self.jobs.setdefault(digest, (draw, args))
        return f"charts/{digest}.svg"

    def draw(self) -> None:
        from tradai_release.report.charts import write_chart

        jobs = [(self.directory / f"{digest}.svg", draw, args) for digest, (draw, args) in self.jobs.items()]
        workers = min(MAX_WORKERS, os.cpu_count() or 1)
        if len(jobs) < PARALLEL_FROM or workers < 2:
            for job in jobs:
                write_chart(job)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the parent holds MLflow and boto3 clients (and their threads' locks).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            list(pool.map(write_chart, jobs, chunksize=max(1, len(jobs) // (workers * 4))))


def _templates() -> Templates:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    templates = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters["short"] = _short
    templates.filters["redact"] = scrub_text  # a deployment's recorded error may predate the scrubber
    templates.filters["metric"] = _metric
    templates.filters["css"] = lambda text: _SAFE.sub("-", str(text)).lower()
    templates.filters["when"] = _when
    templates.globals["commit_url"] = _commit_url
    templates.globals["grid"] = _grid
    templates.globals["zip"] = zip
    return templates


def _grid(env: EnvBoard) -> tuple[list[int], list[tuple[str, list[Cell | None]]]]:
    """The board of one environment as rows (strategies, by name) x columns (profiles, by number)."""
    profiles = sorted({cell.profile for cell in env.cells})
    by_key = {(cell.strategy, cell.profile): cell for cell in env.cells}
    names = sorted({cell.strategy for cell in env.cells})
    return profiles, [(name, [by_key.get((name, profile)) for profile in profiles]) for name in names]


def _when(value: str | None) -> str:
    """A stored instant as ``2026-11-23 12:25 UTC`` (the seconds and offset only make a cell wrap)."""
    if not value:
        return "-"
    from tradai_release.core.clock import parse_stamp

    try:
        moment = parse_stamp(value)
    except ValueError:
        return value
    from datetime import UTC

    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _short(value: Any, width: int = 12) -> str:
    if value is None or value == "":
        return "-"
    text = str(value)
    return text[:width] if len(text) >= 40 and all(c in "0123456789abcdef" for c in text) else text


def _metric(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4g}"


def _commit_url(board: Board, commit: str) -> str | None:
    if not board.repository_url:
        return None
    return f"{board.repository_url.rstrip('/')}/commit/{commit}"
