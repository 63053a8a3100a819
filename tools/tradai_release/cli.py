"""The one place where errors meet the user: the task-entry handler and JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from tradai_release.errors import TradaiError

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(body: F) -> F:
    """Wrap a task body: a TradaiError prints ``error: <message>`` on stderr and exits 1.

    Anything else propagates with its traceback: it is a bug.
    """

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except TradaiError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Print one JSON document on stdout (the ``--json`` output of every task)."""
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
