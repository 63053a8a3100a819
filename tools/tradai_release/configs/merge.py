"""Merging config layers by priority, remembering where each value came from (seed: ConfigMergeService).

A layer is a (possibly partial) nested mapping plus the name of its source. Layers
merge lowest priority first: mappings merge key by key, any other value (scalars,
lists) replaces what is below it. Every field of the result keeps the source that
set it, so a validation failure names the field AND the env var, MLflow tag, stored
version or file it came from.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tradai_release.core.errors import StartupError
from tradai_release.core.yamlio import Document, dotted

Path = tuple[str | int, ...]
_INT = re.compile(r"^[+-]?[0-9]+$")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True)
class ConfigLayer:
    """One source of config values.

    ``source`` names it in errors ("tradai.yaml", "active config v3-abcd1234");
    ``field_sources`` gives a finer name per dotted field (one env var or one tag).
    """

    source: str
    data: Mapping[str, Any]
    field_sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MergedConfig:
    """The merged data and, per dotted field, the source that set it."""

    data: dict[str, Any]
    sources: dict[str, str]

    def source_of(self, field: str) -> str:
        """The source of ``field`` or of its nearest ancestor that has one ("merged config" if none)."""
        best = ""
        for known in self.sources:
            if (field == known or field.startswith((known + ".", known + "["))) and len(known) > len(best):
                best = known
        return self.sources[best] if best else "merged config"


class ConfigMergeService:
    """Merge layers by priority and validate the result against a JSON Schema (``tradai`` by default)."""

    def __init__(self, schema: str = "tradai") -> None:
        self.schema_name = schema

    def merge(self, layers: Sequence[ConfigLayer]) -> MergedConfig:
        """Merge ``layers``, lowest priority first (tradai.yaml, stored config, MLflow tags, env vars)."""
        data: dict[str, Any] = {}
        sources: dict[Path, str] = {}
        for layer in layers:
            _merge_into(data, layer.data, (), layer, sources)
        return MergedConfig(data=data, sources={dotted(path): label for path, label in sources.items()})

    def validate(self, merged: MergedConfig) -> None:
        """Raise StartupError naming the first bad field and its source when the schema rejects ``merged``."""
        from tradai_release.core.schema import check

        problems = check(self.schema_name, Document(file="merged config", data=merged.data))
        if problems:
            first = problems[0]
            raise StartupError(
                first.field, merged.source_of(first.field), first.reason, more=len(problems) - 1
            )

    def schema_node(self, path: Sequence[str | int]) -> dict[str, Any] | None:
        """The schema that applies at ``path``, or None when the schema knows no such field."""
        from tradai_release.core.schema import load_schema

        root = load_schema(self.schema_name)
        node: dict[str, Any] | None = _resolve(root, root)
        for part in path:
            if node is None:
                return None
            if isinstance(part, int):
                items = node.get("items")
                node = _resolve(root, items) if isinstance(items, dict) else None
                continue
            properties = node.get("properties", {})
            extra = node.get("additionalProperties")
            if part in properties:
                node = _resolve(root, properties[part])
            elif isinstance(extra, dict):
                node = _resolve(root, extra)
            else:
                return None
        return node

    def resolve_keys(self, segments: Sequence[str]) -> tuple[str, ...]:
        """Map path segments to the schema's spelling, matching case-insensitively when not exact.

        ``STRATEGY_SERVICE``/``DEFAULTS`` -> ``strategy_service``/``defaults``; unknown
        segments stay as written (validation then reports them as unknown keys).
        """
        resolved: list[str] = []
        for segment in segments:
            node = self.schema_node(resolved)
            properties = node.get("properties", {}) if node else {}
            if segment not in properties:
                matches = [name for name in properties if name.lower() == segment.lower()]
                if len(matches) == 1:
                    segment = matches[0]
            resolved.append(segment)
        return tuple(resolved)

    def coerce(self, path: Sequence[str | int], raw: str) -> Any:
        """Turn a string from an env var or a tag into the type the schema expects at ``path``.

        integer/number parse as numbers; boolean accepts true/false/yes/no/on/off/1/0;
        arrays take a JSON list or comma-separated items (each coerced by the item
        schema); objects take JSON; anything that does not parse stays a string so
        validation names it.
        """
        node = self.schema_node(path)
        if node is None:
            return raw
        declared = node.get("type")
        types = [declared] if isinstance(declared, str) else list(declared or [])
        text = raw.strip()
        for kind in types:
            value = _parse_as(kind, text, raw)
            if value is not _NO:
                if kind == "array" and isinstance(value, list) and not text.startswith("["):
                    return [self.coerce([*path, index], item) for index, item in enumerate(value)]
                return value
        return raw


_NO = object()


def _parse_as(kind: str, text: str, raw: str) -> Any:
    lowered = text.lower()
    if kind == "integer" and _INT.match(text):
        return int(text)
    if kind == "number":
        if _INT.match(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return _NO
        return number if number == number and abs(number) != float("inf") else _NO
    if kind == "boolean":
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    if kind == "null" and lowered in ("null", "none", "~"):
        return None
    if kind == "array":
        if text.startswith("["):
            return _json(text, list)
        return [item.strip() for item in raw.split(",") if item.strip()]
    if kind == "object" and text.startswith("{"):
        return _json(text, dict)
    if kind == "string":
        return raw
    return _NO


def _json(text: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return _NO
    return value if isinstance(value, kind) else _NO


def _resolve(root: dict[str, Any], node: Any) -> dict[str, Any] | None:
    if not isinstance(node, dict):
        return None
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root, root.get("$defs", {}).get(ref[len("#/$defs/") :]))
    return node


def _merge_into(
    target: dict[str, Any],
    incoming: Mapping[str, Any],
    path: Path,
    layer: ConfigLayer,
    sources: dict[Path, str],
) -> None:
    for key, value in incoming.items():
        here = (*path, key)
        label = layer.field_sources.get(dotted(here), layer.source)
        current = target.get(key)
        if isinstance(value, Mapping):
            if not isinstance(current, dict):  # a mapping replaces a scalar: forget what was below
                _forget_below(sources, here)
                current = target[key] = {}
                sources[here] = label
            sources.setdefault(here, label)
            _merge_into(current, value, here, layer, sources)
            continue
        _forget_below(sources, here)
        target[key] = copy.deepcopy(value)
        sources[here] = label


def _forget_below(sources: dict[Path, str], path: Path) -> None:
    for known in [known for known in sources if known[: len(path)] == path and known != path]:
        del sources[known]
