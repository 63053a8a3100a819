"""Retraining: retrain -> compare -> propose as a git branch (the check is in ``retrain_check``, the
outcome and the proposal's texts in ``retrain_proposal``).

The seed ran this as Lambdas (check-retraining-needed, compare-models, promote-model); here a
promotion is a proposal: ``retrain`` trains a challenger, pushes it to the hub as a tag that still
carries every other strategy of the profiles, registers it in the environment, judges it against
each profile's champion with the ModelComparator, and when the comparator says promote writes the
pin change as a commit on a new branch (``retrain/<env>-<strategy>-v<V>``) whose message is the
pull-request body. It never applies anything and never touches the working tree, the index or
the checked-out branch: the commit is built from git objects. When the comparator says keep or
manual-review, nothing is proposed; the reasons are returned, tagged on the challenger version
(``retrain.decision`` / ``retrain.reasons``) and notified.

A profile whose pinned hub tag already holds exactly the retrained files of the strategy (same paths,
SHA-256 and sizes) is **unchanged**: there is nothing to compare or propose for it. When every selected
profile is unchanged, nothing is pushed, registered or proposed; otherwise only the changed profiles'
tags are composed and compared, and a challenger whose files some version already has is that version
(the registrar returns it marked duplicate instead of minting a new one).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError, TradaiError
from tradai_release.workflows.retrain_proposal import (
    ProfileVerdict,
    RetrainResult,
    proposal_message,
    proposed_pins,
)

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.hub import ModelHub
    from tradai_release.hub.manifest import FileEntry
    from tradai_release.registry.adapter import ModelRegistry
    from tradai_release.registry.comparator import ModelComparator
    from tradai_release.repository.environments import Environment
    from tradai_release.repository.manifest import ReleaseManifest
    from tradai_release.repository.strategy import StrategySpec
    from tradai_release.repository.tree import ReleaseRepo
    from tradai_release.training.result import TrainingResult

# ``trainer(repo, strategy, models_dir, *, git_commit=..., trace_id=...)``: training.train_strategy.
Trainer = Callable[..., "TrainingResult"]
BRANCH_PREFIX = "retrain"
DECISION_TAG = "retrain.decision"
REASONS_TAG = "retrain.reasons"
_TAG_VALUE_LIMIT = 4900


def parse_profiles(value: str | int | None) -> list[int] | None:
    """``--profile``: a number, ``all`` (None) or a comma-separated list (which exist is checked later,
    against the environment's manifests)."""
    if value is None or str(value).strip() in ("", "all"):
        return None
    from tradai_release.repository.manifest import parse_profile

    return sorted({parse_profile(part) for part in str(value).split(",")})


@dataclass(frozen=True)
class PreparedRetrain:
    """What a retrain reads before training: the release at ``base`` and the profiles it judges."""

    strategy: str
    env: Environment
    release: ReleaseRepo
    base: str
    texts: Mapping[str, str]
    spec: StrategySpec
    manifests: tuple[ReleaseManifest, ...]


def first_environment(settings: Settings) -> Environment:
    """Where a challenger is registered and first proposed: the first environment of the promotion order."""
    from tradai_release.repository.environments import environments

    return environments(settings)[0]


def retrain(
    settings: Settings,
    strategy: str,
    env: Environment | None = None,
    *,
    profiles: Sequence[int] | None = None,
    trainer: Trainer | None = None,
    comparator: ModelComparator | None = None,
    commit: str = "HEAD",
    send: bool = True,
) -> RetrainResult:
    """Train a challenger, push it, register it in ``env``, compare per profile, propose a branch on promote.

    ``env`` defaults to the first environment of the promotion order: a challenger is trained once and
    registered there; ``promote --from`` carries that very version on. ``profiles`` = None means every
    profile of ``env`` that pins ``strategy``. A profile whose pinned
    hub tag holds exactly the retrained files is unchanged (no tag, no comparison); when all are,
    nothing is pushed or registered. ``trainer`` defaults to
    ``training.train_strategy``; it trains from the working tree, so ``strategies/<strategy>`` must
    have no uncommitted changes (the challenger must be reproducible from ``commit``). The proposal
    moves the pins with the same rules as ``promote`` (staging graduation, keep_production, overrides,
    config pins), then points each promoted profile at its challenger tag.
    """
    prepared = prepare_retrain(settings, strategy, env or first_environment(settings), profiles, commit)
    trainer = trainer or _default_trainer()
    trace_id = new_trace_id()
    with retrain_scratch(settings) as scratch:
        models = scratch / "models"
        result = trainer(settings.repo, strategy, models, git_commit=prepared.base, trace_id=trace_id)
        return conclude_retrain(settings, prepared, result, models, trace_id, comparator, send)


def new_trace_id() -> str:
    return f"retrain-{uuid.uuid4().hex[:12]}"


@contextmanager
def retrain_scratch(settings: Settings) -> Iterator[Path]:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="retrain-", dir=settings.state_dir) as scratch:
        yield Path(scratch)


def prepare_retrain(
    settings: Settings, strategy: str, env: Environment, profiles: Sequence[int] | None, commit: str
) -> PreparedRetrain:
    """Every input checked before training: the strategy, the profiles, a clean strategies/<strategy>."""
    from tradai_release.repository.gitrepo import GitRepo
    from tradai_release.repository.tree import ReleaseTree

    repo = settings.repo
    with ReleaseTree.at(repo, commit) as tree:
        release = tree.load()
        base = str(tree.commit)
        texts = {m.path: tree.text(m.path) for m in release.manifests_of(env.name)}
    release.require_valid()
    spec = release.strategies.get(strategy)
    if spec is None:
        known = ", ".join(sorted(release.strategies)) or "none"
        raise InputError(f"strategies/{strategy}", "--strategy", f"no such strategy (known: {known})")
    pinning = [m for m in release.manifests_of(env.name) if strategy in m.strategies]
    unknown = sorted(set(profiles or ()) - {m.profile for m in release.manifests_of(env.name)})
    if unknown:
        available = ", ".join(str(m.profile) for m in release.manifests_of(env.name)) or "none"
        raise InputError(
            "--profile", "profile", f"unknown profile {unknown[0]} ({env.name} has profiles {available})"
        )
    manifests = [m for m in pinning if profiles is None or m.profile in set(profiles)]
    if not manifests:
        which = "any profile" if profiles is None else "profile " + ", ".join(map(str, profiles))
        raise InputError(
            f"releases/{env.name}", "--profile", f"{strategy} is not pinned in {which} of {env.name}"
        )
    with GitRepo(repo) as git:
        dirty = git.changed_paths([f"strategies/{strategy}"], untracked=True)
    if dirty:
        raise InputError(
            dirty[0],
            "(working tree)",
            "uncommitted change; commit it first so the challenger is reproducible from a commit",
        )
    return PreparedRetrain(strategy, env, release, base, texts, spec, tuple(manifests))


def conclude_retrain(
    settings: Settings,
    prepared: PreparedRetrain,
    result: TrainingResult,
    models: Path,
    trace_id: str,
    comparator: ModelComparator | None,
    send: bool,
) -> RetrainResult:
    """After training: push the changed profiles' tags, register, compare, propose, record, notify."""
    from tradai_release.hub import ModelHub
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.registry.comparator import PROMOTE, ModelComparator
    from tradai_release.registry.registrar import register_training
    from tradai_release.repository.gitrepo import GitRepo

    strategy, env, base, manifests = prepared.strategy, prepared.env, prepared.base, prepared.manifests
    comparator = comparator or ModelComparator()
    hub = ModelHub.from_settings(settings)
    same = _unchanged_tags(hub, manifests, strategy, models)
    changed = [m for m in manifests if m.artifacts.tag not in same]
    tags: dict[str, tuple[str, str]] = {}
    for manifest in changed:
        source = manifest.artifacts.tag
        if source in tags:
            continue
        pushed = hub.compose(
            models,
            [strategy],
            source=source,
            source_sha256=manifest.artifacts.sha256,
            message=f"retrain {strategy} for {env.name} (challenger, trace {trace_id}) on top of {source}",
            git_commit=base,
        )
        tags[source] = (pushed.tag, pushed.manifest_sha256)
    registered = None
    if changed:
        r2_tag = tags[changed[0].artifacts.tag][0]
        registered = register_training(settings, result, r2_tag=r2_tag, envs=[env],
                                       config=prepared.spec.tradai)[env.name]
    model_name = manifests[0].strategies[strategy].model.name
    verdicts = [
        ProfileVerdict(m.profile, m.strategies[strategy].model.production, None, m.path, m.artifacts.tag)
        for m in manifests
        if m.artifacts.tag in same
    ]
    registry = None
    if registered is not None:
        registry = MlflowRegistry.for_env(env, settings)
        verdicts += _verdicts(registry, changed, strategy, model_name, registered.version, comparator)
    verdicts.sort(key=lambda verdict: verdict.profile)
    outcome = RetrainResult(
        env=env.name,
        strategy=strategy,
        model=model_name,
        challenger=registered.version if registered is not None else None,
        tags=tags,
        metrics=dict(result.metrics),
        trace_id=trace_id,
        base_commit=base,
        verdicts=tuple(verdicts),
        duplicate=registered is not None and registered.duplicate,
    )
    promoted = [v for v in verdicts if v.decision == PROMOTE]
    if promoted and registered is not None:
        challenger = registered.version
        branch = f"{BRANCH_PREFIX}/{env.name}-{strategy}-v{challenger}"
        message = proposal_message(outcome)
        edits = proposed_pins(prepared.release.manifests_of(env.name), prepared.texts, promoted, strategy,
                              challenger, tags, prepared.spec.config_hash)
        with GitRepo(settings.repo) as git:
            if registered.duplicate and git.branch_exists(branch):
                # An earlier retrain proposed this very version and its branch is still open: no second one.
                outcome = replace(outcome, branch=branch, commit=git.resolve(branch), already_proposed=True,
                                  message=git.run("log", "-1", "--format=%B", branch))
            else:
                new_commit = git.write_branch(
                    branch, edits, message, base=base, hint="delete it or retrain again for a new version"
                )
                outcome = replace(outcome, branch=branch, commit=new_commit, message=message)
    if registry is not None and outcome.challenger is not None:
        _record(registry, model_name, outcome.challenger, outcome.decision, outcome.reasons)
    if send and not outcome.already_proposed:  # the earlier proposal was notified
        outcome = replace(outcome, notified=_notify(settings, outcome))
    return outcome


def _unchanged_tags(
    hub: ModelHub, manifests: Sequence[ReleaseManifest], strategy: str, models: Path
) -> set[str]:
    """The pinned hub tags (of ``manifests``) whose ``<strategy>/`` files are exactly the retrained ones
    under ``models``: the same paths with the same SHA-256 and size (each tag's manifest read once,
    checked against the sha256 the manifest pins)."""
    from tradai_release.hub.manifest import strategy_of
    from tradai_release.hub.transfer import bundle_files, file_entries

    paths = {rel: path for rel, path in bundle_files(models).items() if strategy_of(rel) == strategy}
    retrained: dict[str, FileEntry] = file_entries(paths, hub.workers)
    same: set[str] = set()
    seen: set[str] = set()
    for manifest in manifests:
        tag = manifest.artifacts.tag
        if tag in seen:
            continue
        seen.add(tag)
        pinned = hub.read_tag(tag, expected_sha256=manifest.artifacts.sha256)
        if pinned.files_of([strategy]) == retrained:
            same.add(tag)
    return same


def _verdicts(
    registry: ModelRegistry,
    manifests: Sequence[ReleaseManifest],
    strategy: str,
    model: str,
    challenger: int,
    comparator: ModelComparator,
) -> list[ProfileVerdict]:
    """The gate's verdict on the challenger against each profile's champion (the version live for it)."""
    from tradai_release.domain.gate import by_version, champion, judge

    versions = by_version(registry.versions([model]).get(model, []))
    if challenger not in versions:  # a registry that does not list it yet: read it directly
        versions[challenger] = registry.get_version(model, challenger)
    verdicts = []
    for manifest in manifests:
        pinned = manifest.strategies[strategy].model.production
        current = champion(manifest.profile, versions, pinned)
        if current is None:
            current = registry.get_version(model, pinned)
        # Compared on metrics even when the challenger is a duplicate of a version that was live once:
        # retraining reproduced it, which is not a rollback someone asked for.
        verdict = judge(manifest.profile, model, current, versions[challenger], comparator,
                        path=manifest.path, rollbacks=False)
        tag = manifest.artifacts.tag
        verdicts.append(ProfileVerdict(manifest.profile, current.version, verdict, manifest.path, tag))
    return verdicts


def _default_trainer() -> Trainer:
    from tradai_release.training import train_strategy

    return train_strategy


def _record(registry: Any, name: str, version: int, decision: str, reasons: Sequence[str]) -> None:
    """Tag the challenger version with the decision, so the registry says why it was (not) proposed."""
    try:
        registry.set_version_tag(name, version, DECISION_TAG, decision)
        registry.set_version_tag(name, version, REASONS_TAG, "; ".join(reasons)[:_TAG_VALUE_LIMIT] or "-")
    except TradaiError:
        pass  # the decision is still in the result, the JSON output and the notification


def _notify(settings: Settings, outcome: RetrainResult) -> bool:
    from tradai_release.domain.notify import notify

    details: dict[str, Any] = {"env": outcome.env, "strategy": outcome.strategy}
    if outcome.challenger is not None:
        duplicate = " (already registered with the same files)" if outcome.duplicate else ""
        details["challenger"] = f"{outcome.model} v{outcome.challenger}{duplicate}"
        details["hub tag"] = ", ".join(tag for tag, _ in outcome.tags.values())
    details["trace_id"] = outcome.trace_id
    if outcome.unchanged_profiles:
        details["unchanged profiles"] = outcome.unchanged_profiles
    if outcome.proposed:
        details["branch"] = outcome.branch
        details["profiles"] = outcome.promoted_profiles
        summary = (
            f"{outcome.strategy} v{outcome.challenger} beats the champion in {outcome.env}; "
            f"branch {outcome.branch} proposes it"
        )
        return notify(settings, outcome.event, summary, details)
    details["reasons"] = "\n".join(outcome.reasons)
    if outcome.challenger is None:
        summary = (
            f"{outcome.strategy} in {outcome.env}: retraining reproduced the champion's files; "
            "nothing pushed, registered or proposed"
        )
    else:
        challenger = f"{outcome.strategy} v{outcome.challenger}"
        summary = f"{challenger} in {outcome.env}: champion kept, nothing proposed"
    return notify(settings, outcome.event, summary, details)
