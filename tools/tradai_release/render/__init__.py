"""Presentation of domain values for terminals: consoles and helpers shared by the render modules.

rich is imported inside the functions so tasks that print nothing stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError, TradaiError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def console(stderr: bool = False) -> Console:
    """A rich Console on stdout (or stderr); colour only when it is a terminal, no soft wrapping."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs, files) gets a wide fixed width so hashes are never cut.
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, soft_wrap=True, highlight=False, width=width)


def print_errors(problems: list[InputError] | tuple[InputError, ...] | list[TradaiError]) -> None:
    """Every problem on stderr, one line each, starting ``error:`` (docs/architecture.md §10)."""
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)


def short(value: Any, width: int = 12) -> str:
    """A value for a table cell: hashes cut to ``width`` characters, None shown as a dash."""
    if value is None:
        return "-"
    text = str(value)
    if len(text) == 64 and all(ch in "0123456789abcdef" for ch in text):
        return text[:width]
    return text


def titled_table(title: str, columns: Sequence[str], right: Collection[str] = ()) -> Table:
    """A table with a left-aligned title; the ``right`` columns (numbers) are right-aligned."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table
