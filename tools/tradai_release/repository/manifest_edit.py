"""Round-trip edits of release manifests that keep comments and key order, written atomically."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tradai_release.core.errors import InputError
from tradai_release.core.yamlio import load_yaml
from tradai_release.repository.manifest import check_manifest, parse_manifest_name


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


class ManifestEditor:
    """Edits one manifest's YAML text in place; ``text()`` is the result with comments kept.

    Every setter is a no-op when the value is already what is asked, so ``changed``
    tells whether anything needs writing.
    """

    def __init__(self, text: str, file: str = "manifest") -> None:
        self.file = file
        self._yaml = _yaml()
        self._original = text
        try:
            self._doc = self._yaml.load(text)
        except Exception as err:  # ruamel raises many unrelated classes for bad input
            raise InputError(file, "(yaml)", f"malformed YAML: {err}".splitlines()[0]) from None
        if not hasattr(self._doc, "get"):
            raise InputError(file, "(root)", "expected a mapping")
        self.changed = False

    def _set(self, node: Any, key: str, value: Any) -> None:
        if key in node and node[key] == value and type(node[key]) is type(value):
            return
        node[key] = value
        self.changed = True

    def _strategy(self, strategy: str) -> Any:
        strategies = self._doc.get("strategies")
        if not hasattr(strategies, "get") or strategy not in strategies:
            raise InputError(self.file, f"strategies.{strategy}", "strategy is not pinned in this manifest")
        entry = strategies[strategy]
        if not hasattr(entry, "get"):
            raise InputError(self.file, f"strategies.{strategy}", "expected a mapping")
        return entry

    def _model(self, strategy: str) -> Any:
        entry = self._strategy(strategy)
        if not hasattr(entry.get("model"), "get"):
            raise InputError(self.file, f"strategies.{strategy}.model", "expected a mapping")
        return entry["model"]

    def strategies(self) -> list[str]:
        """Names of the strategies the manifest pins, in file order."""
        strategies = self._doc.get("strategies")
        return list(strategies) if hasattr(strategies, "keys") else []

    def config_of(self, strategy: str) -> str | None:
        """The current ``strategies.<strategy>.config`` (None when absent)."""
        entry = self._strategy(strategy)
        value = entry.get("config") if hasattr(entry, "get") else None
        return None if value is None else str(value)

    def set_config(self, strategy: str, config_hash: str) -> None:
        """Pin ``strategies.<strategy>.config`` (plain, also where a quoted placeholder stood)."""
        from ruamel.yaml.scalarstring import PlainScalarString

        entry = self._strategy(strategy)
        if entry.get("config") != config_hash:
            self._set(entry, "config", PlainScalarString(config_hash))

    def set_image(self, strategy: str, image: str | None) -> None:
        """Pin ``strategies.<strategy>.image`` (a tag or ``sha256:<digest>``); None goes back to the
        strategy's version."""
        entry = self._strategy(strategy)
        if image is None:
            if "image" in entry:
                del entry["image"]
                self.changed = True
            return
        self._set(entry, "image", image)

    def set_production(self, strategy: str, version: int) -> None:
        """Pin ``strategies.<strategy>.model.production``."""
        self._set(self._model(strategy), "production", int(version))

    def set_staging(self, strategy: str, version: int | None) -> None:
        """Pin ``model.staging``; None removes the staging pin."""
        model = self._model(strategy)
        if version is None:
            if "staging" in model:
                del model["staging"]
                self.changed = True
            return
        self._set(model, "staging", int(version))

    def set_keep_production(self, strategy: str, versions: list[int] | tuple[int, ...]) -> None:
        """Record ``model.keep_production`` (versions that stay Production unpinned); empty removes it."""
        from ruamel.yaml.comments import CommentedSeq

        model = self._model(strategy)
        wanted = [int(version) for version in versions]
        if not wanted:
            if "keep_production" in model:
                del model["keep_production"]
                self.changed = True
            return
        current = model.get("keep_production")
        if isinstance(current, list) and [int(v) for v in current] == wanted:
            return
        sequence = CommentedSeq(wanted)
        sequence.fa.set_flow_style()
        model["keep_production"] = sequence
        self.changed = True

    def set_override(self, strategy: str, approved_by: str | None, reason: str | None = None) -> None:
        """Record ``model.override``: who approved a pin the comparator did not, and why; None removes it."""
        from ruamel.yaml.comments import CommentedMap

        model = self._model(strategy)
        if approved_by is None:
            if "override" in model:
                del model["override"]
                self.changed = True
            return
        if not reason:
            raise InputError(
                self.file, f"strategies.{strategy}.model.override.reason", "a reason is required"
            )
        current = model.get("override")
        if (
            hasattr(current, "get")
            and current.get("approved_by") == approved_by
            and current.get("reason") == reason
        ):
            return
        override = CommentedMap()
        override["approved_by"] = approved_by
        override["reason"] = reason
        model["override"] = override
        self.changed = True

    def set_policy_override(self, approved_by: str | None, reason: str | None = None) -> None:
        """Record ``policy_override``: who let this profile's change through a freeze or a soak, and
        why; None removes it."""
        from ruamel.yaml.comments import CommentedMap

        if approved_by is None:
            if "policy_override" in self._doc:
                del self._doc["policy_override"]
                self.changed = True
            return
        if not reason:
            raise InputError(self.file, "policy_override.reason", "a reason is required")
        current = self._doc.get("policy_override")
        same = hasattr(current, "get") and current.get("approved_by") == approved_by
        if same and current.get("reason") == reason:
            return
        override = CommentedMap()
        override["approved_by"] = approved_by
        override["reason"] = reason
        self._doc["policy_override"] = override
        self.changed = True

    def set_artifacts(self, tag: str, sha256: str) -> None:
        """Pin ``artifacts.tag`` and ``artifacts.sha256``."""
        from ruamel.yaml.comments import CommentedMap

        artifacts = self._doc.get("artifacts")
        if not hasattr(artifacts, "get"):
            artifacts = CommentedMap()
            self._doc["artifacts"] = artifacts
            self.changed = True
        self._set(artifacts, "tag", tag)
        self._set(artifacts, "sha256", sha256)

    def add_strategy(
        self,
        strategy: str,
        config_hash: str,
        production: int,
        *,
        model_name: str | None = None,
        staging: int | None = None,
    ) -> None:
        """Pin a strategy the manifest did not pin yet (appended after the others)."""
        from ruamel.yaml.comments import CommentedMap

        strategies = self._doc.get("strategies")
        if not hasattr(strategies, "get"):
            strategies = CommentedMap()
            self._doc["strategies"] = strategies
        if strategy in strategies:
            raise InputError(self.file, f"strategies.{strategy}", "strategy is already pinned")
        model = CommentedMap()
        model["name"] = model_name or strategy
        model["production"] = int(production)
        if staging is not None:
            model["staging"] = int(staging)
        entry = CommentedMap()
        entry["config"] = config_hash
        entry["model"] = model
        strategies[strategy] = entry
        self.changed = True

    def remove_strategy(self, strategy: str) -> None:
        """Stop pinning a strategy."""
        self._strategy(strategy)
        del self._doc["strategies"][strategy]
        self.changed = True

    def text(self) -> str:
        """The edited YAML (the original text, byte for byte, when nothing changed)."""
        if not self.changed:
            return self._original
        buffer = io.StringIO()
        self._yaml.dump(self._doc, buffer)
        return buffer.getvalue()


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename: readers see the old file or the new one, never half."""
    path = Path(path)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@contextmanager
def edit_manifest(path: Path | str, label: str | None = None) -> Iterator[ManifestEditor]:
    """Edit the manifest at ``path``; on a clean exit write it atomically if anything changed.

    An edit must not make the manifest worse: a problem (schema, environment/profile
    agreeing with the path) that the original did not have raises InputError and nothing
    is written. Problems the file already had are left for ``invoke validate`` to report.
    """
    path = Path(path)
    file = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(file, "(file)", "file not found") from None
    editor = ManifestEditor(text, file)
    yield editor
    if editor.changed:
        new_text = editor.text()
        check_edited(text, new_text, path, file)
        write_atomic(path, new_text)


def check_edited(old_text: str, new_text: str, path: Path, file: str) -> None:
    """Raise the first problem the edit introduced (so a bad edit is never written)."""
    before = {str(problem) for problem in _problems(old_text, path, file)}
    for problem in _problems(new_text, path, file):
        if str(problem) not in before:
            raise problem


def _problems(text: str, path: Path, file: str) -> list[InputError]:
    try:
        document = load_yaml(text.encode("utf-8"), file)
    except InputError as err:
        return [err]
    profile = parse_manifest_name(path.name)
    if profile is None:
        return []
    return check_manifest(path.parent.name, profile, document)
