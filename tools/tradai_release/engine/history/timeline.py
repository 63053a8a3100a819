"""An environment's deployments in order, with their journal and, for records without pins, their commit's
manifests read from git objects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.errors import GitError, InputError
from tradai_release.engine.deployments import pull_request_number
from tradai_release.engine.history.values import Key, LivePin
from tradai_release.engine.release_table import Deployment, JournalEntry, ReleaseTable

if TYPE_CHECKING:
    from tradai_release.stores import KeyValueTable


class Timeline:
    """An environment's deployments, oldest first, with the journal read once when an answer needs it."""

    def __init__(self, table: KeyValueTable, env: str, repo_root: Path | str) -> None:
        self.releases = ReleaseTable(table, env)
        self.env = env
        self.root = Path(repo_root)
        self.deployments = [d for d in reversed(self.releases.deployments()) if d.deployment_id]
        self._journal: dict[str, list[JournalEntry]] | None = None
        self._at_commit: dict[str, dict[Key, LivePin]] = {}
        self._messages: dict[str, int | None] = {}

    def journal(self, deployment_id: str) -> list[JournalEntry]:
        """The journal entries of one deployment, in action order (the whole journal is one query)."""
        if self._journal is None:
            self._journal = self.releases.journals()
        return self._journal.get(deployment_id, [])

    def pins(self, deployment: Deployment) -> dict[Key, LivePin]:
        """What ``deployment`` made live: its record's pins, else its commit's manifests (git objects)."""
        if deployment.pins is not None:
            found = (LivePin.from_record(entry) for entry in deployment.pins)
            return {pin.key: pin for pin in found}
        commit = deployment.commit
        if commit not in self._at_commit:
            self._at_commit[commit] = self._manifest_pins(deployment)
        return dict(self._at_commit[commit])

    def _manifest_pins(self, deployment: Deployment) -> dict[Key, LivePin]:
        from tradai_release.repository.tree import ReleaseTree

        try:
            with ReleaseTree.at(self.root, deployment.commit) as tree:
                manifests = tree.manifests(self.env)
        except GitError:
            reason = (
                f"records no pins and its commit {deployment.commit[:12]} is not in this clone "
                "(fetch full history)"
            )
            raise InputError("history", f"deployment {deployment.deployment_id}", reason) from None
        pins = {}
        for manifest in manifests:
            for name, pin in manifest.strategies.items():
                live = LivePin(
                    manifest.profile,
                    name,
                    pin.model.name,
                    pin.model.production,
                    pin.model.staging,
                    manifest.artifacts.tag,
                    manifest.artifacts.sha256,
                    pin.config,
                    None,
                )
                pins[live.key] = live
        return pins

    def pull_request(self, deployment: Deployment) -> int | None:
        """The record's pull request number; for records older than that field, read from git."""
        if deployment.pins is not None or deployment.pull_request is not None:
            return deployment.pull_request
        if deployment.commit not in self._messages:
            from tradai_release.repository.gitrepo import GitRepo

            try:
                with GitRepo(self.root) as git:
                    self._messages[deployment.commit] = pull_request_number(git.message(deployment.commit))
            except GitError:
                self._messages[deployment.commit] = None
        return self._messages[deployment.commit]
