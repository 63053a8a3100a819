"""What an apply records about itself: deployment ids and outcomes, the pins it made live, its pull request.

The records themselves (:class:`~tradai_release.engine.release_table.Deployment`, the journal) are the
release-state table's items.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tradai_release.core.clock import utc_now
from tradai_release.engine.release_table import Deployment, ReleaseTable
from tradai_release.engine.state import EngineBackends

if TYPE_CHECKING:
    from tradai_release.configs.entities import ConfigVersion
    from tradai_release.core.settings import Settings
    from tradai_release.engine.state import DesiredState
    from tradai_release.repository.environments import Environment

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
NOOP = "noop"


def new_deployment_id() -> str:
    """Time-ordered (to the microsecond, so two applies in one second sort right) and unique.

    ``d20261123T122501123456Z-3f9a1c``
    """
    return utc_now().strftime("d%Y%m%dT%H%M%S%fZ-") + secrets.token_hex(3)


def recorded_pins(
    desired: DesiredState, active: Mapping[str, ConfigVersion] | None = None
) -> tuple[dict[str, Any], ...]:
    """What a deployment of ``desired`` makes live, per profile x strategy (``Deployment.pins``);
    ``active`` (the ACTIVE configs read after the apply) gives each config id."""
    pins = []
    for manifest in desired.manifests:
        for name, pin in sorted(manifest.strategies.items()):
            config = active.get(name) if active is not None else None
            pins.append(
                {
                    "profile": manifest.profile,
                    "strategy": name,
                    "model": pin.model.name,
                    "version": pin.model.production,
                    "staging": pin.model.staging,
                    "tag": manifest.artifacts.tag,
                    "sha256": manifest.artifacts.sha256,
                    "config_hash": pin.config,
                    "config_id": config.config_id if config is not None and config.config_hash == pin.config
                    else None,
                }
            )
    return tuple(pins)


_MERGE_PR = re.compile(r"^Merge pull request #(\d+)\b")
_SQUASH_PR = re.compile(r"\(#(\d+)\)\s*$")


def pull_request_number(message: str) -> int | None:
    """The pull request a commit message names: GitHub's merge commit (``Merge pull request #12 from
    ...``) or a squash merge (``Subject (#12)``) on its first line; None for any other commit."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    match = _MERGE_PR.match(first) or _SQUASH_PR.search(first)
    return int(match.group(1)) if match else None


def list_deployments(settings: Settings, env: Environment) -> list[Deployment]:
    """Every recorded deployment of ``env`` from settings' release-state table, newest first."""
    backends = EngineBackends.from_settings(settings, env)
    return ReleaseTable(backends.releases, backends.env).deployments()
