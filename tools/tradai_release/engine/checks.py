"""Live validation (``invoke validate`` without ``--offline``): the manifest rules that need the backends,
plus the comparator gate for production pins that move forward in the gated (last) environment.

Reads are batched like plan's: per environment one registry ``versions()`` call, and per
distinct hub tag one manifest read, one head per blob (``--deep``: plus a streamed read of each
blob the store keeps no SHA-256 checksum of) and one read per strategy's model_compat.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from tradai_release.core.errors import HubError, InputError, TradaiError
from tradai_release.repository.environments import environment

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.domain.diff import Changes
    from tradai_release.hub import ModelHub, TagManifest
    from tradai_release.registry.adapter import ModelRegistry, ModelVersionInfo
    from tradai_release.registry.comparator import ModelComparator
    from tradai_release.repository.manifest import ReleaseManifest
    from tradai_release.repository.tree import ReleaseRepo

REGISTRATION_TAGS: tuple[str, ...] = ("strategy_name", "feature_count", "trace_id", "git_commit")
"""Version tags the registrar writes on every version; ``r2_tag`` only when it pushed to the hub."""


def validate_live(
    settings: Settings, release_repo: ReleaseRepo, changed: Changes | None, *, deep: bool = False
) -> list[InputError]:
    """Every live problem of the manifests in scope (all, or only what changed since ``--base``);
    ``deep`` checks the content of every blob of their tags, not only its size."""
    from tradai_release.hub.hub import ModelHub
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.registry.comparator import ModelComparator

    manifests = manifests_in_scope(release_repo, changed)
    if not manifests:
        return []
    problems = check_artifacts(ModelHub.from_settings(settings), release_repo, manifests, deep=deep)
    comparator = ModelComparator()
    for env in sorted({m.environment for m in manifests}):
        of_env = [m for m in manifests if m.environment == env]
        registry = MlflowRegistry.for_env(environment(settings, env), settings)
        problems += check_registry(registry, release_repo, of_env, comparator)
    return problems


def manifests_in_scope(release_repo: ReleaseRepo, changed: Changes | None) -> list[ReleaseManifest]:
    """All manifests, or (with a base) those that changed or pin a strategy whose files changed."""
    manifests = [release_repo.manifests[key] for key in sorted(release_repo.manifests)]
    if changed is None:
        return manifests
    return [
        m
        for m in manifests
        if (m.environment, m.profile) in changed.manifests or changed.strategies & set(m.strategies)
    ]


def check_artifacts(
    hub: ModelHub, release_repo: ReleaseRepo, manifests: Sequence[ReleaseManifest], *, deep: bool = False
) -> list[InputError]:
    """Tag exists and hashes to ``sha256``; every file present with its size (``deep``: its content,
    see ``ModelHub.verify``); model_compat agrees."""
    problems: list[InputError] = []
    by_tag: dict[tuple[str, str], list[ReleaseManifest]] = {}
    for manifest in manifests:
        by_tag.setdefault((manifest.artifacts.tag, manifest.artifacts.sha256), []).append(manifest)
    for (tag, sha), users in sorted(by_tag.items()):
        first = users[0]
        try:
            tag_manifest = hub.read_tag(tag, expected_sha256=sha)
        except HubError as err:
            field = "artifacts.sha256" if "expected" in str(err) else "artifacts.tag"
            problems += [InputError(m.path, field, str(err)) for m in users]
            continue
        except InputError as err:
            problems += [InputError(m.path, "artifacts.tag", str(err)) for m in users]
            continue
        for problem in hub.verify_tag(tag, sha, deep=deep):
            problems.append(InputError(first.path, "artifacts.tag", problem))
        strategies = sorted({name for m in users for name in m.strategies})
        for name in strategies:
            spec = release_repo.strategies.get(name)
            if spec is None:
                continue
            reason = _compat_problem(hub, tag_manifest, name, len(spec.ml_config.features))
            if reason:
                user = next(m for m in users if name in m.strategies)
                problems.append(InputError(user.path, f"strategies.{name}", f"tag {tag}: {reason}"))
    return problems


def _compat_problem(hub: ModelHub, tag: TagManifest, strategy: str, expected: int) -> str | None:
    from tradai_release.hub.compat import COMPAT_FILE

    path = f"{strategy}/{COMPAT_FILE}"
    if path not in tag.files:
        return f"no {path} in the tag"
    try:
        data = json.loads(hub.read_file(tag, path))
    except (TradaiError, ValueError, UnicodeDecodeError) as err:
        return f"{path} unreadable: {err}"
    count = data.get("feature_count") if isinstance(data, dict) else None
    if count != expected:
        return f"{path} feature_count is {count!r}, ml_config.json lists {expected} features"
    return None


def check_registry(
    registry: ModelRegistry,
    release_repo: ReleaseRepo,
    manifests: Sequence[ReleaseManifest],
    comparator: ModelComparator,
) -> list[InputError]:
    """Pinned versions exist, are READY, carry the registration tags; in the gated environment (the
    last of the policy's promotion order) a production pin moving forward passes the gate."""
    from tradai_release.repository.policy import is_gated

    names = sorted({pin.model.name for m in manifests for pin in m.strategies.values()})
    history = registry.versions(names) if names else {}
    problems: list[InputError] = []
    for manifest in manifests:
        gated = is_gated(manifest.environment, release_repo.policy.environments)
        for strategy, pin in manifest.strategies.items():
            listed = {info.version: info for info in history.get(pin.model.name, ())}
            pinned = [("production", pin.model.production)]
            if pin.model.staging is not None:
                pinned.append(("staging", pin.model.staging))
            for which, version in pinned:
                field = f"strategies.{strategy}.model.{which}"
                info = listed.get(version)
                if info is None:
                    problems.append(
                        InputError(
                            manifest.path,
                            field,
                            f"{pin.model.name} version {version} "
                            f"does not exist in the {manifest.environment} registry",
                        )
                    )
                    continue
                problems += _version_problems(manifest, field, info, release_repo, strategy)
            if pin.model.production in listed:
                problem = gate_problem(manifest, strategy, listed, comparator, gated=gated)
                if problem is not None:
                    problems.append(problem)
    return problems


def _version_problems(
    manifest: ReleaseManifest, field: str, info: ModelVersionInfo, release_repo: ReleaseRepo, strategy: str
) -> list[InputError]:
    problems = []
    if info.status != "READY":
        problems.append(
            InputError(manifest.path, field, f"{info.name} v{info.version} is {info.status}, not READY")
        )
    missing = [tag for tag in REGISTRATION_TAGS if not info.tags.get(tag)]
    if missing:
        problems.append(
            InputError(
                manifest.path,
                field,
                f"{info.name} v{info.version} lacks registration tag(s) {', '.join(missing)}",
            )
        )
    spec = release_repo.strategies.get(strategy)
    count = info.tags.get("feature_count")
    if spec is not None and count and count != str(len(spec.ml_config.features)):
        problems.append(
            InputError(
                manifest.path,
                field,
                f"{info.name} v{info.version} has feature_count "
                f"{count}, ml_config.json lists {len(spec.ml_config.features)}",
            )
        )
    return problems


def gate_problem(
    manifest: ReleaseManifest,
    strategy: str,
    listed: Mapping[int, ModelVersionInfo],
    comparator: ModelComparator,
    *,
    gated: bool,
) -> InputError | None:
    """The gate on a production pin: in the ``gated`` environment, moving forward past the live champion
    needs the comparator's approval or a recorded override; returning to a former Production version
    needs neither."""
    from tradai_release.domain.gate import champion, production_move

    pin = manifest.strategies[strategy].model
    if champion(manifest.profile, listed) is None:
        return None  # never applied: nothing live to judge against yet
    verdict = production_move(manifest.profile, pin.name, listed, pin.production, comparator,
                              gated=gated, overridden=pin.override is not None)
    if verdict is None or not verdict.blocked:
        return None
    why = "; ".join(verdict.reasons) or "not approved"
    return InputError(
        manifest.path,
        f"strategies.{strategy}.model.production",
        f"v{verdict.champion} -> v{pin.production}: comparator says {verdict.decision} ({why}); "
        "record model.override with approved_by and reason to release it anyway",
    )
