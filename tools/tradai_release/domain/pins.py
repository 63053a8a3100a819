"""The one set of rules that moves pins in release manifests, computed in memory (nothing is written).

promote, rollback, retrain and bootstrap all edit manifests through :class:`PinEdit`; what differs
between them is which rule they call with which arguments, never a copy of a rule
(docs/architecture.md §7 "Edits").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError
from tradai_release.registry.lifecycle import PRODUCTION, STAGING
from tradai_release.repository.manifest import ModelPin, Override, ReleaseManifest, StrategyPin
from tradai_release.repository.manifest_edit import ManifestEditor, check_edited

if TYPE_CHECKING:
    from tradai_release.repository.tree import ReleaseTree


@dataclass(frozen=True)
class PinChange:
    """One manifest field an edit changes: ``strategies.S.model.production`` 6 -> 7."""

    path: str
    field: str
    old: Any
    new: Any

    @property
    def strategy(self) -> str | None:
        """The strategy whose pin changed (None for fields outside ``strategies``)."""
        parts = self.field.split(".")
        return parts[1] if parts[0] == "strategies" and len(parts) > 1 else None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "field": self.field, "old": self.old, "new": self.new}

    def describe(self) -> str:
        return f"{self.path}: {self.field} {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return text[:12] if len(text) == 64 else text


def _override_text(override: Override | None) -> str | None:
    return None if override is None else f"{override.approved_by}: {override.reason}"


class PinEdit:
    """Pending edits of some manifests, each read as a typed value and as its YAML text (comments kept)."""

    def __init__(self, manifests: Mapping[str, ReleaseManifest], texts: Mapping[str, str]) -> None:
        self.manifests = dict(manifests)
        self._texts = dict(texts)
        self._editors: dict[str, ManifestEditor] = {}
        self.changes: list[PinChange] = []

    @classmethod
    def of(cls, tree: ReleaseTree, manifests: Iterable[ReleaseManifest]) -> PinEdit:
        """An edit of ``manifests`` as ``tree`` holds them."""
        chosen = {manifest.path: manifest for manifest in manifests}
        return cls(chosen, {path: tree.text(path) for path in chosen})

    def _editor(self, path: str) -> ManifestEditor:
        editor = self._editors.get(path)
        if editor is None:
            editor = ManifestEditor(self._texts[path], path)
            self._editors[path] = editor
        return editor

    def _change(self, path: str, field: str, old: Any, new: Any) -> None:
        self.changes.append(PinChange(path, field, old, new))

    def _pin(self, path: str, strategy: str) -> ModelPin:
        manifest = self.manifests[path]
        if strategy not in manifest.strategies:
            raise InputError(path, f"strategies.{strategy}", "strategy is not pinned in this manifest")
        return manifest.strategies[strategy].model

    # --- the rules ----------------------------------------------------------------------------------

    def promote(
        self,
        path: str,
        strategy: str,
        version: int,
        *,
        stage: str = PRODUCTION,
        keep_previous: bool = False,
        override: Override | None = None,
    ) -> bool:
        """Pin ``version`` as the ``stage`` version of ``strategy`` in the manifest at ``path``.

        Returns True when the manifest changes. ``override`` is recorded only when the production
        pin moves (pass it when the gate did not approve the move).
        """
        pin = self._pin(path, strategy)
        editor = self._editor(path)
        model = f"strategies.{strategy}.model"
        if stage == STAGING:
            if pin.production == version:
                raise InputError(path, f"{model}.staging", f"version {version} is already the production pin")
            if pin.staging == version:
                return False
            editor.set_staging(strategy, version)
            self._change(path, f"{model}.staging", pin.staging, version)
            return True
        if pin.production == version and pin.staging != version:
            return False
        if pin.production != version:
            editor.set_production(strategy, version)
            self._change(path, f"{model}.production", pin.production, version)
        if pin.staging == version:  # the challenger graduates: it no longer dry-runs beside itself
            editor.set_staging(strategy, None)
            self._change(path, f"{model}.staging", pin.staging, None)
        keep = [v for v in pin.keep_production if v != version]
        if keep_previous and pin.production != version and pin.production not in keep:
            keep.append(pin.production)
        if tuple(keep) != pin.keep_production:
            editor.set_keep_production(strategy, keep)
            self._change(path, f"{model}.keep_production", list(pin.keep_production) or None, keep or None)
        wanted = pin.override if pin.production == version else override
        if wanted != pin.override:
            editor.set_override(
                strategy, wanted.approved_by if wanted else None, wanted.reason if wanted else None
            )
            self._change(path, f"{model}.override", _override_text(pin.override), _override_text(wanted))
        return True

    def restore(self, path: str, strategy: str, then: ModelPin) -> bool:
        """Give ``strategy``'s model pins the values of ``then`` (an earlier manifest's); True on change."""
        now = self._pin(path, strategy)
        editor = self._editor(path)
        model = f"strategies.{strategy}.model"
        before = len(self.changes)
        if now.production != then.production:
            editor.set_production(strategy, then.production)
            self._change(path, f"{model}.production", now.production, then.production)
        if now.staging != then.staging:
            editor.set_staging(strategy, then.staging)
            self._change(path, f"{model}.staging", now.staging, then.staging)
        if now.keep_production != then.keep_production:
            editor.set_keep_production(strategy, list(then.keep_production))
            self._change(path, f"{model}.keep_production", list(now.keep_production) or None,
                         list(then.keep_production) or None)
        if now.override != then.override:
            editor.set_override(strategy, then.override.approved_by if then.override else None,
                                then.override.reason if then.override else None)
            self._change(path, f"{model}.override", now.override.approved_by if now.override else None,
                         then.override.approved_by if then.override else None)
        return len(self.changes) > before

    def add_strategy(self, path: str, strategy: str, pin: StrategyPin) -> None:
        """Pin a strategy the manifest does not pin yet."""
        self._editor(path).add_strategy(strategy, pin.config, pin.model.production,
                                        model_name=pin.model.name, staging=pin.model.staging)
        self._change(path, f"strategies.{strategy}", None, f"v{pin.model.production}")

    def remove_strategy(self, path: str, strategy: str) -> None:
        """Stop pinning a strategy."""
        production = self._pin(path, strategy).production
        self._editor(path).remove_strategy(strategy)
        self._change(path, f"strategies.{strategy}", f"v{production}", None)

    def set_config(self, path: str, strategy: str, digest: str) -> bool:
        """Pin config ``digest`` for ``strategy`` in the manifest at ``path`` (if it pins the strategy)."""
        current = self.manifests[path].strategies.get(strategy)
        if current is None or current.config == digest:
            return False
        self._editor(path).set_config(strategy, digest)
        self._change(path, f"strategies.{strategy}.config", current.config, digest)
        return True

    def refresh_config(self, strategy: str, digest: str) -> list[str]:
        """Every manifest of the edit pinning ``strategy`` pins config ``digest``; the paths changed."""
        return [path for path in self.manifests if self.set_config(path, strategy, digest)]

    def set_artifacts(self, path: str, tag: str, sha256: str) -> bool:
        """Pin the profile's hub tag (and its manifest's sha256); True on change."""
        current = self.manifests[path].artifacts
        if (current.tag, current.sha256) == (tag, sha256):
            return False
        self._editor(path).set_artifacts(tag, sha256)
        self._change(path, "artifacts.tag", current.tag, tag)
        return True

    # --- the result ---------------------------------------------------------------------------------

    def texts(self) -> dict[str, str]:
        """Path -> new text of every manifest that changed, each checked: an edit must not make a
        manifest worse (a problem the original did not have raises InputError)."""
        texts = {path: editor.text() for path, editor in self._editors.items() if editor.changed}
        for path, text in texts.items():
            check_edited(self._texts[path], text, Path(path), path)
        return texts


# --- the hub tag of an edited profile -------------------------------------------------------------------


@dataclass(frozen=True)
class TagChoice:
    """The hub tag a profile must pin so its bot runs ``strategy``'s files of ``donor``.

    ``sha256`` is None when the tag is still to be made: spliced in the hub from the profile's
    current tag (``source``) with the strategy's files taken from ``donor``.
    """

    path: str
    strategy: str
    tag: str
    sha256: str | None
    source: str
    source_sha256: str
    donor: str
    message: str = ""

    @property
    def spliced(self) -> bool:
        return self.sha256 is None and self.tag != self.donor


def choose_tag(
    manifest: ReleaseManifest,
    pinned_files: Mapping[str, Any],
    donor: str,
    donor_files: Mapping[str, Any],
    strategy: str,
    *,
    donor_sha256: str | None,
    splice_name: str,
    message: str,
) -> TagChoice | None:
    """The tag ``manifest``'s profile must pin after ``strategy`` takes its files from tag ``donor``.

    ``pinned_files`` / ``donor_files`` are the two tags' files by path (``<strategy>/...``). None when
    the pinned tag already holds the donor's files of the strategy; the donor itself when the other
    strategies the profile pins have the same files in both tags; else ``splice_name``, to be spliced.
    """

    def files_of(files: Mapping[str, Any], names: set[str]) -> dict[str, Any]:
        return {path: entry for path, entry in files.items() if path.split("/", 1)[0] in names}

    if files_of(donor_files, {strategy}) == files_of(pinned_files, {strategy}):
        return None
    current = manifest.artifacts
    others = set(manifest.strategies) - {strategy}
    if files_of(donor_files, others) == files_of(pinned_files, others):
        return TagChoice(manifest.path, strategy, donor, donor_sha256, current.tag, current.sha256, donor)
    return TagChoice(manifest.path, strategy, splice_name[:128], None, current.tag, current.sha256, donor,
                     message)
