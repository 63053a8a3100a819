"""One environment of the release repository at one commit: opened once at the edge, handed to every verb.

The environment is parsed against the promotion order that the commit itself declares (its
``releases/policy.yaml``), so plan, apply and prune read one version of the repository. The desired
state and the backends are read when first asked for, once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.errors import UnknownEnvironment
from tradai_release.repository.environments import Environment

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.engine.state import DesiredState, EngineBackends


@dataclass
class ReleaseContext:
    """``env`` as declared by ``commit`` of the repository at ``root``, with its backends."""

    settings: Settings
    env: Environment
    root: Path
    commit: str = "HEAD"
    _backends: EngineBackends | None = field(default=None, repr=False)
    _desired: DesiredState | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        settings: Settings,
        env: str,
        *,
        commit: str = "HEAD",
        repo: Path | str | None = None,
        backends: EngineBackends | None = None,
    ) -> ReleaseContext:
        """UnknownEnvironment (one ``error:`` line) unless ``commit`` declares ``env``; nothing else is
        read yet. ``repo`` defaults to ``settings.repo``; tests pass ``backends``."""
        (context,) = cls.open_all(settings, [env], commit=commit, repo=repo)
        context._backends = backends
        return context

    @classmethod
    def open_all(
        cls,
        settings: Settings,
        envs: Iterable[str] | None = None,
        *,
        commit: str = "HEAD",
        repo: Path | str | None = None,
    ) -> list[ReleaseContext]:
        """A context for each of ``envs`` (default: every environment ``commit`` declares, in promotion
        order); UnknownEnvironment for a name the commit does not declare."""
        from tradai_release.repository.tree import ReleaseTree

        root = Path(repo if repo is not None else settings.repo)
        with ReleaseTree.at(root, commit) as tree:
            order = tree.environments()  # the commit's own policy: a bad one is named with its ref
        names = list(order if envs is None else envs)
        for name in names:
            if name not in order:
                raise UnknownEnvironment(name, order)
        return [
            cls(settings, Environment(name, order, settings.backends(name)), root, commit) for name in names
        ]

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def desired(self) -> DesiredState:
        """The environment's desired state at the commit (validated offline; read once)."""
        if self._desired is None:
            from tradai_release.engine.state import load_desired

            self._desired = load_desired(self.root, self.env.name, self.commit)
        return self._desired

    @property
    def backends(self) -> EngineBackends:
        """The environment's live systems (built from settings once, unless given)."""
        if self._backends is None:
            from tradai_release.engine.state import EngineBackends

            self._backends = EngineBackends.from_settings(self.settings, self.env)
        return self._backends
