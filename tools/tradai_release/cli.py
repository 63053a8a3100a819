"""The one place where errors meet the user: the task-entry handler, required flags and output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tradai_release.core.errors import InputError, TradaiError, user_error
from tradai_release.core.redact import scrub_text

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.engine.context import ReleaseContext
    from tradai_release.repository.environments import Environment

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(body: F) -> F:
    """Wrap a task body: a TradaiError prints ``error: <message>`` on stderr and exits 1, and so
    does a library missing because its extra is not installed (the line names the extra).

    Anything else propagates with its traceback: it is a bug.
    """

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except (TradaiError, ModuleNotFoundError) as err:
            found = user_error(err)
            if found is None:
                raise
            print(f"error: {scrub_text(str(found))}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Print one JSON document on stdout (the ``--json`` output of every task)."""
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def emit(as_json: bool, data: Any, render: Callable[[], object], json_file: str = "") -> None:
    """``--json``: ``data`` (its ``to_dict()`` when it has one) as one JSON document; else ``render()``.

    ``json_file`` (a task's ``--json-file``) also writes that document to the file, so a CI step gets the
    readable output and the machine-readable one from one run.
    """
    document = data.to_dict() if hasattr(data, "to_dict") else data
    if json_file:
        with open(json_file, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, sort_keys=True, default=str)
            out.write("\n")
    if as_json:
        print_json(document)
    else:
        render()


def required(command: str, flag: str, value: str | None, hint: str = "") -> str:
    """``value`` when given; else the one-line error ``<command>: <flag>: required (<hint>)``."""
    if not value:
        raise InputError(command, flag, f"required ({hint})" if hint else "required")
    return value


def required_env(command: str, value: str | None, settings: Settings) -> Environment:
    """``--env`` parsed against the working tree's promotion order; when it is missing, the one-line
    error names the declared environments (``dev, staging or prod``)."""
    from tradai_release.repository.environments import declared_environments, environment

    if not value:
        names = declared_environments(settings)
        hint = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
        required(command, "--env", value, hint)
    return environment(settings, str(value))


def required_release(
    command: str, value: str | None, settings: Settings, commit: str = "HEAD"
) -> ReleaseContext:
    """``--env`` opened at ``commit``: the environment as that commit declares it, for the verbs that
    read a commit (plan, apply, deploy-status, history)."""
    from tradai_release.engine.context import ReleaseContext

    name = required_env(command, value, settings).name
    return ReleaseContext.open(settings, name, commit=commit)
