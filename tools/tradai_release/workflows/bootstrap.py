"""One step from a fresh clone to a live state the committed manifests agree with.

``bootstrap`` trains every strategy, pushes one hub tag holding all of them, registers the
models as a version in each environment's registry, refreshes the manifests' pins (hub sha256,
model versions, config hashes) and, when the manifests already agree, applies each environment.

It is reproducible: training is deterministic, and the tag carries a fixed creation time and,
in its message, the git tree id of ``strategies/`` (not a commit: a tree id is the same in a
shallow clone and changes exactly when the strategies do), so on a fresh clone the tag's sha256
is the one the manifests pin and nothing needs committing. Re-running it is harmless and quick: a strategy
whose inputs, training code and libraries are unchanged is not trained again (training/reuse.py), an
existing tag with the same content is reused, and a version registered from the same tag is not
registered twice.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import HubError, InputError
from tradai_release.engine.context import ReleaseContext
from tradai_release.repository.gitrepo import GitRepo

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.repository.environments import Environment
    from tradai_release.repository.tree import ReleaseTree
    from tradai_release.training.result import TrainingResult

BOOTSTRAP_TAG = "v20261101"
BOOTSTRAP_CREATED_AT = "2026-11-01T00:00:00Z"
BOOTSTRAP_MESSAGE = "bootstrap: every strategy trained from strategies/ at git tree {tree}"


@dataclass(frozen=True)
class BootstrapResult:
    """What bootstrap did; ``changed`` lists manifests whose pins it rewrote (to be committed)."""

    tag: str
    sha256: str
    pushed: bool
    versions: dict[str, dict[str, int]]  # env -> strategy -> registered version
    changed: list[str] = field(default_factory=list)
    committed: str | None = None
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)  # strategies whose unchanged training was reused

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "sha256": self.sha256,
            "pushed": self.pushed,
            "versions": self.versions,
            "changed": self.changed,
            "committed": self.committed,
            "applied": self.applied,
            "metrics": self.metrics,
            "reused": self.reused,
        }


def bootstrap(
    settings: Settings,
    *,
    envs: Iterable[str] | None = None,
    tag: str = BOOTSTRAP_TAG,
    commit: bool = False,
    apply: bool = True,
    fresh: bool = False,
) -> BootstrapResult:
    """Train, push, register and pin; then apply each env if the committed manifests agree.

    ``commit``: commit rewritten manifests (the demo's scratch repository does; in a real
    repository the change is a pull request like any other, so the default only writes files).
    A strategy whose inputs, training code and libraries are unchanged since an earlier bootstrap
    reuses that training (training/reuse.py); ``fresh`` trains every strategy again (and stores it).
    """
    from tradai_release.hub import ModelHub
    from tradai_release.repository.environments import environments
    from tradai_release.repository.tree import ReleaseTree
    from tradai_release.training.reuse import train_all_reusing

    repo = settings.repo
    selected = environments(settings, envs)  # an unknown env is one line before anything is trained
    with GitRepo(repo) as git:
        head = git.head()
        tree = git.object_id("HEAD", "strategies")
    release = ReleaseTree.work(repo)
    hub = ModelHub.from_settings(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bootstrap-", dir=settings.state_dir) as scratch:
        models = Path(scratch) / "models"
        # MLflow records the commit trained from; the hub tag only what decides its content.
        results, reused = train_all_reusing(repo, models, git_commit=head, fresh=fresh)
        sha, pushed = _push_or_reuse(hub, models, tag, BOOTSTRAP_MESSAGE.format(tree=tree))
        # Registration logs the bundle as the run's artifact, so it runs while the files exist.
        configs = {name: release.tradai(name).data for name in release.strategy_names()}
        versions = {env.name: _register(settings, env, results, tag, configs) for env in selected}
    changed = _pin(repo, release, selected, tag, sha, versions)
    committed = None
    if commit and changed:
        with GitRepo(repo) as git:
            message = f"bootstrap: pin hub tag {tag} and the registered model versions"
            committed = git.commit_paths(changed, message)
    applied: dict[str, dict[str, Any]] = {}
    if apply and (committed or not changed):
        from tradai_release.engine.apply import apply_env

        for env in selected:
            applied[env.name] = apply_env(
                ReleaseContext.open(settings, env.name, commit="HEAD"), actor="bootstrap"
            ).to_dict()
    return BootstrapResult(
        tag=tag,
        sha256=sha,
        pushed=pushed,
        versions=versions,
        changed=changed,
        committed=committed,
        applied=applied,
        metrics={result.strategy_name: dict(result.metrics) for result in results},
        reused=reused,
    )


def _push_or_reuse(hub: Any, models: Path, tag: str, message: str) -> tuple[str, bool]:
    """Push the bundle as ``tag``; an existing tag is reused only if it holds exactly these files."""
    from tradai_release.core.fsutil import file_sha256
    from tradai_release.hub.transfer import bundle_files

    if not hub.tag_exists(tag):
        pushed = hub.push(
            models,
            tag=tag,
            message=message,
            git_commit=None,
            created_at=BOOTSTRAP_CREATED_AT,
        )
        return str(pushed.manifest_sha256), True
    existing = hub.read_tag(tag)
    local = {rel: file_sha256(path) for rel, path in bundle_files(models).items()}
    stored = {rel: entry.sha256 for rel, entry in existing.files.items()}
    if local != stored:
        differing = sorted(set(local.items()) ^ set(stored.items()))
        raise HubError(
            f"tag {tag}",
            f"exists with other content ({differing[0][0]} differs); training did not reproduce it",
        )
    return str(hub.tag_sha256(tag)), False


def _register(
    settings: Settings, env: Environment, results: list[TrainingResult], tag: str,
    configs: dict[str, dict[str, Any]],
) -> dict[str, int]:
    """Register each strategy's bundle in ``env`` unless a version from this tag is already there."""
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.registry.registrar import register_training

    registry = MlflowRegistry.for_env(env, settings)
    known = registry.versions([result.strategy_name for result in results])
    versions: dict[str, int] = {}
    for result in results:
        reuse = [v.version for v in known.get(result.strategy_name, []) if v.tags.get("r2_tag") == tag]
        if reuse:
            versions[result.strategy_name] = min(reuse)
            continue
        registered = register_training(
            settings, result, r2_tag=tag, envs=[env], config=configs.get(result.strategy_name)
        )
        versions[result.strategy_name] = int(registered[env.name].version)
    return versions


def _pin(
    repo: Path, release: ReleaseTree, envs: Iterable[Environment], tag: str, sha: str,
    versions: dict[str, dict[str, int]],
) -> list[str]:
    """Point every manifest of ``envs`` at the tag and the registered versions (promote's rules);
    refresh config hashes; write what changed. The paths written, sorted."""
    from tradai_release.domain.pins import PinEdit
    from tradai_release.repository.manifest_edit import write_atomic

    names = set(release.strategy_names())
    edit = PinEdit.of(release, [m for env in envs for m in release.manifests(env.name)])
    for manifest in edit.manifests.values():
        edit.set_artifacts(manifest.path, tag, sha)
        registered = versions[manifest.environment]
        for strategy in manifest.strategies:
            if strategy in registered:
                edit.promote(manifest.path, strategy, registered[strategy])
    for strategy in sorted({s for m in edit.manifests.values() for s in m.strategies} & names):
        try:
            edit.refresh_config(strategy, release.config_hash(strategy))
        except InputError:
            continue  # an invalid tradai.yaml has no hash: its pins are left for validate to report
    texts = edit.texts()
    for path, text in texts.items():
        write_atomic(repo / path, text)
    return sorted(texts)
