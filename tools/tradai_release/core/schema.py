"""JSON Schema checks of parsed files, turning jsonschema's errors into ``file:line: field: reason`` lines."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError
from tradai_release.core.yamlio import Document

if TYPE_CHECKING:
    from jsonschema import ValidationError

SCHEMAS = ("tradai", "release", "ml_config", "policy")
"""Names of the schema files in ``tradai_release/schemas/`` (``<name>.schema.json``)."""

_TYPE_NAMES = {
    dict: "mapping",
    list: "list",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``name`` (one of SCHEMAS), read from the package data."""
    text = resources.files("tradai_release").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


_SPLITTABLE = frozenset(
    {"type", "properties", "additionalProperties", "required", "propertyNames", "title", "description"}
)
_ROOT_ONLY = frozenset({"$schema", "$id", "$defs"})
_MEMO_LIMIT = 20_000


class _Checker:
    """Validates against one schema, memoising the verdict on each repeated sub-value.

    Manifests repeat the same pin in every profile and strategies share whole
    sections, so object schemas are split into a shallow check (required, unknown
    keys, key names) plus one check per property value, and each leaf check is
    memoised on the value's canonical JSON. The errors are jsonschema's own, with
    paths re-rooted, so messages are exactly those of a whole-document validation.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        from jsonschema import Draft202012Validator

        self._cls = Draft202012Validator
        self._defs = {key: schema[key] for key in _ROOT_ONLY if key in schema}
        self._root = schema
        self._validators: dict[int, Any] = {}
        self._memo: dict[tuple[int, str], list[ValidationError]] = {}

    def errors(self, data: Any) -> list[tuple[list[str | int], ValidationError]]:
        found: list[tuple[list[str | int], ValidationError]] = []
        self._check(self._root, data, [], found)
        return found

    def _validator(self, schema: dict[str, Any]) -> Any:
        key = id(schema)
        validator = self._validators.get(key)
        if validator is None:
            validator = self._cls({**schema, **self._defs})
            self._validators[key] = validator
        return validator

    def _check(
        self,
        schema: Any,
        data: Any,
        path: list[str | int],
        found: list[tuple[list[str | int], ValidationError]],
    ) -> None:
        if not isinstance(schema, dict):
            if schema is False:
                found += [(path, error) for error in self._cls(False).iter_errors(data)]
            return
        keywords = set(schema) - _ROOT_ONLY
        if isinstance(data, dict) and schema.get("type") == "object" and keywords <= _SPLITTABLE:
            properties = schema.get("properties", {})
            extra = schema.get("additionalProperties", True)
            shallow = {key: value for key, value in schema.items() if key not in _ROOT_ONLY}
            shallow["properties"] = {key: True for key in properties}
            shallow["additionalProperties"] = extra if isinstance(extra, bool) else True
            shallow_errors = list(self._validator_for_shallow(schema, shallow).iter_errors(data))
            found += [(path, error) for error in shallow_errors]
            for key, value in data.items():
                child = properties.get(key, extra if isinstance(extra, dict) else None)
                if child is not None:
                    self._check(child, value, [*path, key], found)
            return
        try:
            memo_key = (id(schema), json.dumps(data, sort_keys=True, separators=(",", ":")))
        except (TypeError, ValueError):
            found += [(path, error) for error in self._validator(schema).iter_errors(data)]
            return
        cached = self._memo.get(memo_key)
        if cached is None:
            if len(self._memo) > _MEMO_LIMIT:
                self._memo.clear()
            cached = list(self._validator(schema).iter_errors(data))
            self._memo[memo_key] = cached
        found += [(path, error) for error in cached]

    def _validator_for_shallow(self, schema: dict[str, Any], shallow: dict[str, Any]) -> Any:
        key = -id(schema)
        validator = self._validators.get(key)
        if validator is None:
            validator = self._cls({**shallow, **self._defs})
            self._validators[key] = validator
        return validator


@functools.cache
def _checker(name: str) -> _Checker:
    return _Checker(load_schema(name))


def check(name: str, document: Document) -> list[InputError]:
    """Every schema problem of ``document``, one per field, most relevant first.

    An empty list means the document matches schema ``name``.
    """
    from jsonschema.exceptions import relevance

    problems: list[InputError] = []
    seen: set[tuple[str, str]] = set()
    found = _checker(name).errors(document.data)
    for prefix, error in sorted(found, key=lambda item: relevance(item[1])):
        for path, reason in _explain(error):
            problem = document.error([*prefix, *path], reason)
            key = (problem.field, problem.reason)
            if key not in seen:
                seen.add(key)
                problems.append(problem)
    return problems


def _explain(error: ValidationError) -> list[tuple[list[str | int], str]]:
    """(field path, reason) pairs for one jsonschema error, in words a config author reads easily."""
    path: list[str | int] = list(error.absolute_path)
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "propertyNames" in error.absolute_schema_path and isinstance(instance, str):
        return [([*path, instance], f"invalid key: {error.message}")]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = schema.get("properties", {})
        allowed = ", ".join(sorted(known))
        hint = f" (allowed: {allowed})" if allowed else ""
        extras = [key for key in instance if key not in known]
        return [([*path, key], f"unknown key{hint}") for key in extras]
    if error.validator == "required" and isinstance(instance, dict):
        missing = [key for key in error.validator_value if key not in instance]
        return [([*path, key], "required key is missing") for key in missing]
    if error.validator == "type":
        expected = error.validator_value
        wanted = " or ".join(expected) if isinstance(expected, list) else str(expected)
        return [(path, f"expected {wanted}, got {_describe(instance)}")]
    if error.validator == "enum":
        choices = ", ".join(json.dumps(choice) for choice in error.validator_value)
        return [(path, f"{json.dumps(instance)} is not one of {choices}")]
    if error.validator == "pattern":
        return [(path, f"{json.dumps(instance)} does not match {error.validator_value}")]
    return [(path, error.message)]


def _describe(value: Any) -> str:
    name = _TYPE_NAMES.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        return name
    return f"{name} {json.dumps(value, default=str)}"
