"""Safe YAML/JSON loading of user-written files: size limit, alias-bomb guard, duplicate keys, lines."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from tradai_release.core.errors import InputError

MAX_BYTES = 1024 * 1024
"""Largest file we parse; release files are a few KiB, anything bigger is a mistake or an attack."""

MAX_NODES = 100_000
"""Largest document after alias expansion (a billion-laughs document expands to ~10^9 nodes)."""

_STR = "tag:yaml.org,2002:str"
_PLAIN_TAGS = frozenset(
    {
        _STR,
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:seq",
        "tag:yaml.org,2002:map",
    }
)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate keys and reads dates as strings (config values stay JSON)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
                if key in seen:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1, seen[key])
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# Dates stay strings ("20240101" and "2024-01-01" alike) so every value is JSON and hashes stably.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, first_line: int) -> None:
        super().__init__(key)
        self.key = key
        self.line = line
        self.first_line = first_line


@dataclass(frozen=True)
class Document:
    """A parsed file: its data plus enough of the YAML node tree to say on which line a field is."""

    file: str
    data: Any
    root: yaml.Node | None = None

    def line_of(self, path: Iterable[str | int]) -> int | None:
        """1-based line of the deepest node along ``path`` that exists, or None for JSON files."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in path:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        line = key_node.start_mark.line + 1
                        child = value_node
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                child = node.value[part]
                line = child.start_mark.line + 1
            if child is None:
                break
            node = child
        return line

    def where(self, path: Iterable[str | int] = ()) -> str:
        """``file:line`` for an error message (just ``file`` when the line is unknown)."""
        line = self.line_of(path)
        return f"{self.file}:{line}" if line is not None else self.file

    def error(self, path: Iterable[str | int], reason: str) -> InputError:
        """An InputError located at ``path`` (file:line, dotted field)."""
        parts = list(path)
        return InputError(self.where(parts), dotted(parts), reason)


def dotted(path: Iterable[str | int]) -> str:
    """``strategies.PascalStrategy.model.production``; ``symbols[0]`` for list items; ``(root)`` if empty."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _check_size(raw: bytes, file: str, max_bytes: int) -> None:
    if len(raw) > max_bytes:
        raise InputError(file, "(file)", f"{len(raw)} bytes is over the {max_bytes}-byte limit")


def load_yaml(raw: bytes, file: str, *, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> Document:
    """Parse one YAML document safely; every problem is an InputError naming ``file:line`` and field."""
    _check_size(raw, file, max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(file, "(file)", f"not UTF-8 text (byte {err.start})") from None
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise InputError(file, "(root)", "the file is empty")
        _check_nodes(root, file, max_nodes)
        data = loader.construct_document(root)
    except _DuplicateKey as dup:
        raise InputError(
            f"{file}:{dup.line}", dup.key, f"duplicate key (first defined on line {dup.first_line})"
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        reason = " ".join(part for part in (err.context, err.problem) if part) or "malformed YAML"
        raise InputError(where, "(yaml)", f"malformed YAML: {reason}") from None
    except yaml.YAMLError as err:
        raise InputError(file, "(yaml)", f"malformed YAML: {err}") from None
    finally:
        loader.dispose()
    return Document(file=file, data=data, root=root)


def _check_nodes(root: yaml.Node, file: str, max_nodes: int) -> None:
    """Refuse alias bombs, recursive anchors, non-string keys and non-JSON values, before constructing.

    Sizes are memoised per node, so a billion-laughs document is rejected after
    visiting its few dozen distinct nodes instead of expanding them.
    """
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: yaml.Node) -> int:
        ident = id(node)
        known = sizes.get(ident)
        if known is not None:
            return known
        if ident in visiting:
            raise InputError(f"{file}:{node.start_mark.line + 1}", "(yaml)", "recursive alias")
        total = 1
        if isinstance(node, yaml.ScalarNode):
            _check_scalar(node, file)
        else:
            visiting.add(ident)
            if node.tag not in _PLAIN_TAGS:
                raise _bad_tag(node, file)
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR):
                        line = key_node.start_mark.line + 1
                        raise InputError(f"{file}:{line}", "(yaml)", "mapping keys must be strings")
                    total += 1 + size(value_node)
                    if total > max_nodes:
                        break
            else:
                for item in node.value:
                    total += size(item)
                    if total > max_nodes:
                        break
            visiting.discard(ident)
        if total > max_nodes:
            raise InputError(
                f"{file}:{node.start_mark.line + 1}",
                "(yaml)",
                f"document expands to more than {max_nodes} nodes (alias bomb?)",
            )
        sizes[ident] = total
        return total

    size(root)


def _check_scalar(node: yaml.ScalarNode, file: str) -> None:
    if node.tag not in _PLAIN_TAGS and node.tag != _TIMESTAMP:
        raise _bad_tag(node, file)
    if node.tag == "tag:yaml.org,2002:float":
        value = node.value.lower().lstrip("+-")
        if value in (".inf", ".nan"):
            raise InputError(f"{file}:{node.start_mark.line + 1}", "(yaml)", f"{node.value} is not allowed")


def _bad_tag(node: yaml.Node, file: str) -> InputError:
    return InputError(f"{file}:{node.start_mark.line + 1}", "(yaml)", f"unsupported YAML tag {node.tag}")


def load_json(raw: bytes, file: str, *, max_bytes: int = MAX_BYTES) -> Document:
    """Parse a JSON file strictly (duplicate keys and NaN are errors)."""
    _check_size(raw, file, max_bytes)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise _DuplicateKey(key, 0, 0)
            out[key] = value
        return out

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    try:
        data = json.loads(raw, object_pairs_hook=pairs, parse_constant=no_constant)
    except _DuplicateKey as dup:
        raise InputError(file, dup.key, "duplicate key") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{file}:{err.lineno}", "(json)", f"malformed JSON: {err.msg}") from None
    except (ValueError, RecursionError) as err:
        raise InputError(file, "(json)", f"malformed JSON: {err}") from None
    if isinstance(data, float) and not math.isfinite(data):
        raise InputError(file, "(json)", "malformed JSON: not a finite number")
    return Document(file=file, data=data, root=None)
