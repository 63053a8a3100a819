"""``${VAR}`` and ``${VAR:-default}`` interpolation of config strings (docs/architecture.md §3).

``$${`` writes a literal ``${``. Hashing never interpolates: the hash covers the text as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from tradai_release.core.errors import InputError
from tradai_release.core.yamlio import dotted

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_OPENING = re.compile(r"(?<!\$)\$\{")


def interpolate(data: Any, environ: Mapping[str, str], file: str = "") -> Any:
    """A copy of ``data`` with every ``${VAR}`` / ``${VAR:-default}`` in its strings replaced.

    A variable that is unset and has no default, or a malformed reference, is an
    InputError naming ``file`` and the dotted field path.
    """
    return _walk(data, environ, file, [])


def _walk(data: Any, environ: Mapping[str, str], file: str, path: list[str | int]) -> Any:
    if isinstance(data, str):
        return interpolate_string(data, environ, file, dotted(path))
    if isinstance(data, dict):
        return {key: _walk(value, environ, file, [*path, key]) for key, value in data.items()}
    if isinstance(data, list):
        return [_walk(item, environ, file, [*path, index]) for index, item in enumerate(data)]
    return data


def interpolate_string(value: str, environ: Mapping[str, str], file: str = "", field: str = "") -> str:
    """Interpolate one string; see :func:`interpolate`."""
    if "${" not in value:
        return value
    _check_syntax(value, file, field)

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        found = environ.get(name)
        if found is not None and (found != "" or default is None):
            return found
        if default is not None:
            return default
        raise InputError(file, field, f"environment variable {name} is not set and has no default")

    return _REFERENCE.sub(replace, value)


def _check_syntax(value: str, file: str, field: str) -> None:
    stripped = _REFERENCE.sub("", value)
    if _OPENING.search(stripped):
        raise InputError(file, field, f"malformed reference in {value!r}: use ${{VAR}} or ${{VAR:-default}}")


def references(data: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str, str, str | None]]:
    """Every ``(field, VAR, default)`` referenced in ``data``; malformed references raise InputError."""
    if isinstance(data, str):
        if "${" in data:
            _check_syntax(data, "", dotted(path))
            for match in _REFERENCE.finditer(data):
                if match.group(1):
                    yield dotted(path), match.group(1), match.group(2)
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from references(value, (*path, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from references(item, (*path, index))
