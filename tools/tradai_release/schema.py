"""JSON Schema checks of parsed files, turning jsonschema's errors into ``file:line: field: reason`` lines."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from tradai_release.errors import InputError
from tradai_release.yamlio import Document

if TYPE_CHECKING:
    from jsonschema import ValidationError

SCHEMAS = ("tradai", "release", "ml_config")
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


@functools.cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


def check(name: str, document: Document) -> list[InputError]:
    """Every schema problem of ``document``, one per field, most relevant first.

    An empty list means the document matches schema ``name``.
    """
    validator = _validator(name)
    from jsonschema.exceptions import relevance

    problems: list[InputError] = []
    seen: set[tuple[str, str]] = set()
    for error in sorted(validator.iter_errors(document.data), key=relevance):
        for path, reason in _explain(error):
            problem = document.error(path, reason)
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
