"""An environment, parsed once at the edge: its name, its place in the promotion order and its backends.

The environments a repository has are declared in ``releases/policy.yaml`` (default dev, staging,
prod); code below the edge receives an :class:`Environment` and never re-validates a name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradai_release.core.errors import UnknownEnvironment
from tradai_release.repository.policy import is_gated

if TYPE_CHECKING:
    from tradai_release.core.settings import Backends, Settings


@dataclass(frozen=True)
class Environment:
    """One declared environment of the release repository."""

    name: str
    order: tuple[str, ...]  # every declared environment, in promotion order
    backends: Backends

    def __str__(self) -> str:
        return self.name

    @property
    def position(self) -> int:
        """0 for the first environment a change reaches."""
        return self.order.index(self.name)

    @property
    def previous(self) -> str | None:
        """The environment a change passes through before this one (None for the first)."""
        return self.order[self.position - 1] if self.position > 0 else None

    @property
    def gated(self) -> bool:
        """True for production, the last environment of the order: a production pin moving forward
        there needs the comparator's approval or a recorded override."""
        return is_gated(self.name, self.order)


def declared_environments(settings: Settings) -> tuple[str, ...]:
    """The environments the working tree's ``releases/policy.yaml`` declares, in promotion order."""
    from tradai_release.repository.tree import ReleaseTree

    return ReleaseTree.work(settings.repo).environments()


def environment(settings: Settings, name: str) -> Environment:
    """``name`` parsed: UnknownEnvironment (one ``error:`` line) unless the working tree declares it.

    Called at the edge only (a task's ``--env``); a verb on a commit opens a
    :class:`~tradai_release.engine.context.ReleaseContext`, which reads the order the commit declares.
    """
    order = declared_environments(settings)
    if name not in order:
        raise UnknownEnvironment(str(name), order)
    return Environment(name, order, settings.backends(name))


def environments(settings: Settings, names: Iterable[str] | None = None) -> list[Environment]:
    """Each of ``names`` parsed (default: every declared environment, in promotion order)."""
    if names is None:
        order = declared_environments(settings)
        return [Environment(name, order, settings.backends(name)) for name in order]
    return [environment(settings, name) for name in names]
