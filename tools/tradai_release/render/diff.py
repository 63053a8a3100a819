"""Terminal output of ``invoke diff``: strategies, fields and pins that changed between two commits."""

from __future__ import annotations

import json
from typing import Any

from tradai_release.domain.diff import ReleaseDiff
from tradai_release.render import console, print_errors, short


def _value(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, str):
        return short(value)
    return json.dumps(value)


def _change(old: Any, new: Any) -> str:
    from rich.markup import escape

    return f"{escape(_value(old))} -> {escape(_value(new))}"


def render_diff(diff: ReleaseDiff) -> None:
    """The diff as indented text: one line per changed field or pin."""
    from rich.markup import escape

    out = console()
    out.print(f"[bold]diff[/bold] {escape(diff.base)} -> {escape(diff.head)}")
    if diff.problems:
        print_errors(diff.problems)
    if diff.is_empty():
        out.print("no changes to strategies or release pins")
        return
    if diff.strategies:
        out.print("[bold]strategies[/bold]")
        for change in diff.strategies:
            out.print(f"  {change.kind:8} {change.name}")
            if change.kind == "changed":
                for field in change.fields:
                    name = field.file.rsplit("/", 1)[-1]
                    out.print(f"           {name}: {escape(field.field)}: {_change(field.old, field.new)}")
    if diff.manifests:
        out.print("[bold]manifests[/bold]")
        for manifest in diff.manifests:
            out.print(f"  {manifest.kind:8} {manifest.environment}/profile-{manifest.profile}")
            for field in manifest.fields:
                out.print(f"           {escape(field.field)}: {_change(field.old, field.new)}")
            for pin in diff.pins:
                if (pin.environment, pin.profile) == (manifest.environment, manifest.profile):
                    out.print(f"           {pin.strategy}.{escape(pin.field)}: {_change(pin.old, pin.new)}")
