"""Retraining: the check (drift, age, manual request) and retrain -> compare -> propose as a git branch.

The seed ran this as Lambdas (check-retraining-needed, compare-models, promote-model); here a
promotion is a proposal: ``retrain`` trains a challenger, pushes it to the hub as a tag that still
carries every other strategy of the profiles, registers it in the environment, judges it against
each profile's champion with the ModelComparator, and when the comparator says promote writes the
pin change as a commit on a new branch (``retrain/<env>-<strategy>-v<V>``) whose message is the
pull-request body. It never applies anything and never touches the working tree, the index or
the checked-out branch: the commit is built from git objects. When the comparator says keep or
manual-review, nothing is proposed; the reasons are returned, tagged on the challenger version
(``retrain.decision`` / ``retrain.reasons``) and notified.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.errors import GitError, InputError, TagNotFound, TradaiError

if TYPE_CHECKING:
    from tradai_release.drift import DriftReport, LiveModel
    from tradai_release.registry.adapter import ModelRegistry
    from tradai_release.registry.comparator import Comparison, ModelComparator
    from tradai_release.settings import Settings
    from tradai_release.training.result import TrainingResult

# ``trainer(repo, strategy, models_dir, *, git_commit=..., trace_id=...)``: training.train_strategy.
Trainer = Callable[..., "TrainingResult"]
BRANCH_PREFIX = "retrain"
DECISION_TAG = "retrain.decision"
REASONS_TAG = "retrain.reasons"
_TAG_VALUE_LIMIT = 4900


# --- the retraining check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StrategyCheck:
    """Whether one live model needs retraining, and why."""

    strategy: str
    model: str
    version: int
    profiles: tuple[int, ...]
    reasons: tuple[str, ...]
    drift_level: str | None
    age_days: float | None
    created_at: str | None
    created_source: str | None  # "registry" | "hub tag" | None (unknown)
    max_age_days: int
    max_age_source: str

    @property
    def needed(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "model": self.model,
            "version": self.version,
            "profiles": list(self.profiles),
            "needed": self.needed,
            "reasons": list(self.reasons),
            "drift_level": self.drift_level,
            "age_days": None if self.age_days is None else round(self.age_days, 2),
            "created_at": self.created_at,
            "created_source": self.created_source,
            "max_age_days": self.max_age_days,
            "max_age_source": self.max_age_source,
        }


@dataclass(frozen=True)
class RetrainingCheck:
    """The decision for every live model of an environment."""

    env: str
    strategies: tuple[StrategyCheck, ...]
    checked_at: str

    @property
    def needed(self) -> bool:
        return any(item.needed for item in self.strategies)

    @property
    def retrain(self) -> list[str]:
        """Strategies to retrain (each once, even when profiles run different versions)."""
        return sorted({item.strategy for item in self.strategies if item.needed})

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "checked_at": self.checked_at,
            "needed": self.needed,
            "retrain": self.retrain,
            "strategies": [item.to_dict() for item in self.strategies],
        }


def check_retraining(
    settings: Settings,
    env: str,
    *,
    drift: DriftReport | None = None,
    manual: Iterable[str] = (),
    strategies: Iterable[str] | None = None,
    now: datetime | None = None,
    registry: ModelRegistry | None = None,
    commit: str = "HEAD",
) -> RetrainingCheck:
    """Retraining is needed for a live model when its PSI drift is significant, when it is older than
    ``retraining.max_age_days`` of its tradai.yaml (else ``settings.retrain_max_age_days``), or when
    ``manual`` names its strategy (or ``all``).

    Age is measured from the registry version's creation time, or the hub tag's ``created_at``
    when the registry does not know the version.
    """
    from tradai_release.drift import SIGNIFICANT, live_models
    from tradai_release.repo import GitTree, load_release_repo

    settings.backends(env)
    now = now or datetime.now(UTC)
    manual_set = set(manual)
    lives = live_models(settings.repo, env, strategies, commit)
    unknown = sorted(manual_set - {"all"} - {live.strategy for live in lives})
    if unknown:
        raise InputError("--manual", "strategy", f"{', '.join(unknown)} is not pinned in any {env} manifest")
    with GitTree(settings.repo, commit) as tree:
        specs = load_release_repo(tree).strategies
    drift_by_key = {
        (item.live.strategy, item.live.version, item.live.tag): item
        for item in (drift.strategies if drift else ())
    }
    if registry is None:
        from tradai_release.registry.adapter import MlflowRegistry

        registry = MlflowRegistry.for_env(env, settings)
    created = _creation_times(settings, registry, lives)
    checks = []
    for live in lives:
        spec = specs.get(live.strategy)
        own = spec.max_age_days if spec is not None else None
        max_age = own if own is not None else int(settings.retrain_max_age_days)
        source = (
            f"strategies/{live.strategy}/tradai.yaml retraining.max_age_days"
            if own is not None
            else "settings retrain_max_age_days"
        )
        reasons: list[str] = []
        item = drift_by_key.get((live.strategy, live.version, live.tag))
        if item is not None and item.level == SIGNIFICANT:
            worst = sorted(item.significant, key=lambda row: -row.psi)
            names = ", ".join(f"{row.name} {row.psi:.3f}" for row in worst[:5])
            more = f" and {len(worst) - 5} more" if len(worst) > 5 else ""
            threshold = drift.thresholds.significant if drift else 0.25
            reasons.append(f"significant drift (PSI > {threshold:g}): {names}{more}")
        stamp, stamp_source = created.get((live.model, live.version, live.tag), (None, None))
        age = (now - stamp).total_seconds() / 86400 if stamp is not None else None
        if age is not None and age > max_age:
            reasons.append(
                f"model version {live.version} is {age:.1f} days old (max {max_age} from {source})"
            )
        if "all" in manual_set or live.strategy in manual_set:
            reasons.append("requested manually")
        checks.append(
            StrategyCheck(
                strategy=live.strategy,
                model=live.model,
                version=live.version,
                profiles=live.profiles,
                reasons=tuple(reasons),
                drift_level=item.level if item is not None else None,
                age_days=age,
                created_at=stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp is not None else None,
                created_source=stamp_source,
                max_age_days=max_age,
                max_age_source=source,
            )
        )
    return RetrainingCheck(env, tuple(checks), now.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _creation_times(
    settings: Settings, registry: ModelRegistry, lives: Sequence[LiveModel]
) -> dict[tuple[str, int, str], tuple[datetime, str]]:
    """When each live model version came into being: the registry's creation time, else the tag's."""
    found: dict[tuple[str, int, str], tuple[datetime, str]] = {}
    versions = registry.versions(sorted({live.model for live in lives}))
    hub = None
    for live in lives:
        info = next((v for v in versions.get(live.model, []) if v.version == live.version), None)
        if info is not None and info.created_at is not None:
            found[(live.model, live.version, live.tag)] = (info.created_at, "registry")
            continue
        try:
            if hub is None:
                from tradai_release.hub import ModelHub

                hub = ModelHub.from_settings(settings)
            stamp = hub.read_tag(live.tag).created_at
            found[(live.model, live.version, live.tag)] = (_parse_time(stamp), "hub tag")
        except (TagNotFound, ValueError):
            continue
    return found


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- retrain -> compare -> propose ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileVerdict:
    """The comparator's judgement of the challenger against one profile's champion."""

    profile: int
    champion: int
    comparison: Comparison
    manifest: str

    def to_dict(self) -> dict[str, Any]:
        comparison = self.comparison
        return {
            "profile": self.profile,
            "manifest": self.manifest,
            "champion": self.champion,
            "decision": comparison.decision,
            "reasons": list(comparison.reasons),
            "score_challenger": comparison.score_challenger,
            "score_champion": comparison.score_champion,
            "metrics": [
                {
                    "metric": row.metric,
                    "challenger": row.challenger,
                    "champion": row.champion,
                    "operator": row.operator,
                    "threshold": row.threshold,
                    "required": row.required,
                    "passed": row.passed,
                }
                for row in comparison.rows
            ],
        }


@dataclass(frozen=True)
class RetrainResult:
    """What ``retrain`` did: the challenger, each profile's verdict, and the branch it wrote (if any)."""

    env: str
    strategy: str
    model: str
    challenger: int
    tags: Mapping[str, tuple[str, str]]  # source tag -> (new tag, its manifest sha256)
    metrics: Mapping[str, float]
    trace_id: str
    base_commit: str
    verdicts: tuple[ProfileVerdict, ...]
    branch: str | None = None
    commit: str | None = None
    message: str = ""
    notified: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def proposed(self) -> bool:
        return self.branch is not None

    @property
    def promoted_profiles(self) -> list[int]:
        from tradai_release.registry.comparator import PROMOTE

        return [v.profile for v in self.verdicts if v.comparison.decision == PROMOTE]

    def groups(self) -> list[tuple[tuple[int, ...], ProfileVerdict]]:
        """Verdicts of profiles that share a champion (and so a comparison), merged: (profiles, verdict)."""
        merged: dict[tuple[int, str], list[ProfileVerdict]] = {}
        for verdict in self.verdicts:
            merged.setdefault((verdict.champion, verdict.comparison.decision), []).append(verdict)
        return [(tuple(v.profile for v in group), group[0]) for group in merged.values()]

    @property
    def reasons(self) -> list[str]:
        """Why nothing (or only part) was proposed: the reasons of every verdict that is not promote."""
        from tradai_release.registry.comparator import PROMOTE

        return [
            f"{_profiles_label(profiles)} (champion v{verdict.champion}): "
            f"{verdict.comparison.decision}: {reason}"
            for profiles, verdict in self.groups()
            if verdict.comparison.decision != PROMOTE
            for reason in verdict.comparison.reasons
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "strategy": self.strategy,
            "model": self.model,
            "challenger": self.challenger,
            "tags": {source: {"tag": tag, "sha256": sha} for source, (tag, sha) in self.tags.items()},
            "metrics": dict(self.metrics),
            "trace_id": self.trace_id,
            "base_commit": self.base_commit,
            "proposed": self.proposed,
            "promoted_profiles": self.promoted_profiles,
            "branch": self.branch,
            "commit": self.commit,
            "reasons": self.reasons,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "notified": self.notified,
        }


def _profiles_label(profiles: Sequence[int]) -> str:
    return ("profile " if len(profiles) == 1 else "profiles ") + ", ".join(str(p) for p in profiles)


def parse_profiles(value: str | int | None) -> list[int] | None:
    """``--profile``: a number, ``all`` (None) or a comma-separated list."""
    from tradai_release.settings import PROFILES

    if value is None or str(value).strip() in ("", "all"):
        return None
    profiles: list[int] = []
    for part in str(value).split(","):
        try:
            number = int(part.strip())
        except ValueError:
            raise InputError(
                "--profile", "profile", f"{part.strip()!r} is not a profile number or 'all'"
            ) from None
        if number not in PROFILES:
            raise InputError(
                "--profile", "profile", f"unknown profile {number} (expected 1..{max(PROFILES)})"
            )
        profiles.append(number)
    return sorted(set(profiles))


def retrain(
    settings: Settings,
    strategy: str,
    env: str,
    *,
    profiles: Sequence[int] | None = None,
    trainer: Trainer | None = None,
    comparator: ModelComparator | None = None,
    commit: str = "HEAD",
    send: bool = True,
) -> RetrainResult:
    """Train a challenger, push it, register it in ``env``, compare per profile, propose a branch on promote.

    ``profiles`` = None means every profile of ``env`` that pins ``strategy``. ``trainer`` defaults to
    ``training.train_strategy``; it trains from the working tree, so ``strategies/<strategy>`` must
    have no uncommitted changes (the challenger must be reproducible from ``commit``).
    """
    from tradai_release.hub import ModelHub
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.registry.comparator import PROMOTE, ModelComparator
    from tradai_release.registry.registrar import register_training
    from tradai_release.repo import GitTree, load_release_repo

    settings.backends(env)
    repo = settings.repo
    with GitTree(repo, commit) as tree:
        release = load_release_repo(tree)
        base = tree.commit
    release.require_valid()
    spec = release.strategies.get(strategy)
    if spec is None:
        known = ", ".join(sorted(release.strategies)) or "none"
        raise InputError(f"strategies/{strategy}", "--strategy", f"no such strategy (known: {known})")
    manifests = [m for m in release.manifests_of(env) if strategy in m.strategies]
    if profiles is not None:
        manifests = [m for m in manifests if m.profile in set(profiles)]
    if not manifests:
        which = "any profile" if profiles is None else "profile " + ", ".join(map(str, profiles))
        raise InputError(f"releases/{env}", "--profile", f"{strategy} is not pinned in {which} of {env}")
    _require_clean(repo, f"strategies/{strategy}")

    trainer = trainer or _default_trainer()
    comparator = comparator or ModelComparator()
    trace_id = f"retrain-{uuid.uuid4().hex[:12]}"
    hub = ModelHub.from_settings(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="retrain-", dir=settings.state_dir) as scratch:
        models = Path(scratch) / "models"
        result = trainer(repo, strategy, models, git_commit=base, trace_id=trace_id)
        tags: dict[str, tuple[str, str]] = {}
        for manifest in manifests:
            source = manifest.artifacts.tag
            if source in tags:
                continue
            pushed = hub.compose(
                models,
                [strategy],
                source=source,
                source_sha256=manifest.artifacts.sha256,
                message=f"retrain {strategy} for {env} (challenger, trace {trace_id}) on top of {source}",
                git_commit=base,
            )
            tags[source] = (pushed.tag, pushed.manifest_sha256)
        first_tag = tags[manifests[0].artifacts.tag][0]
        registered = register_training(settings, result, r2_tag=first_tag, envs=[env], config=spec.tradai)[
            env
        ]
    model_name = manifests[0].strategies[strategy].model.name
    challenger = int(registered.version)

    registry = MlflowRegistry.for_env(env, settings)
    champions: dict[int, Mapping[str, float]] = {}
    verdicts: list[ProfileVerdict] = []
    for manifest in manifests:
        champion = manifest.strategies[strategy].model.production
        if champion not in champions:
            champions[champion] = dict(registry.get_version(model_name, champion).metrics)
        verdicts.append(
            ProfileVerdict(
                profile=manifest.profile,
                champion=champion,
                comparison=comparator.compare(result.metrics, champions[champion]),
                manifest=manifest.path,
            )
        )
    outcome = RetrainResult(
        env=env,
        strategy=strategy,
        model=model_name,
        challenger=challenger,
        tags=tags,
        metrics=dict(result.metrics),
        trace_id=trace_id,
        base_commit=base,
        verdicts=tuple(verdicts),
    )
    promoted = [v for v in verdicts if v.comparison.decision == PROMOTE]
    if promoted:
        branch = f"{BRANCH_PREFIX}/{env}-{strategy}-v{challenger}"
        message = proposal_message(outcome)
        edits = _edited_manifests(
            repo, base, promoted, {m.profile: m for m in manifests}, strategy, challenger, tags
        )
        new_commit = write_branch(repo, base, branch, edits, message)
        outcome = _replace(outcome, branch=branch, commit=new_commit, message=message)
    decision = "promote" if promoted else _overall(verdicts)
    _record(registry, model_name, challenger, decision, outcome.reasons)
    if send:
        outcome = _replace(outcome, notified=_notify(settings, outcome))
    return outcome


def _default_trainer() -> Trainer:
    from tradai_release.training import train_strategy

    return train_strategy


def _overall(verdicts: Sequence[ProfileVerdict]) -> str:
    from tradai_release.registry.comparator import MANUAL_REVIEW

    decisions = {v.comparison.decision for v in verdicts}
    return MANUAL_REVIEW if MANUAL_REVIEW in decisions else "keep"


def _replace(outcome: RetrainResult, **changes: Any) -> RetrainResult:
    from dataclasses import replace

    return replace(outcome, **changes)


def _record(registry: Any, name: str, version: int, decision: str, reasons: Sequence[str]) -> None:
    """Tag the challenger version with the decision, so the registry says why it was (not) proposed."""
    try:
        registry.set_version_tag(name, version, DECISION_TAG, decision)
        registry.set_version_tag(name, version, REASONS_TAG, "; ".join(reasons)[:_TAG_VALUE_LIMIT] or "-")
    except TradaiError:
        pass  # the decision is still in the result, the JSON output and the notification


def proposal_message(outcome: RetrainResult) -> str:
    """The commit message and pull-request body: title, challenger facts, the comparison table per profile."""
    from tradai_release.render.drift import comparison_markdown

    profiles = _profiles_label(outcome.promoted_profiles)
    title = f"retrain: promote {outcome.strategy} v{outcome.challenger} in {outcome.env} ({profiles})"
    lines = [title, "", comparison_markdown(outcome)]
    return "\n".join(lines).rstrip() + "\n"


def _notify(settings: Settings, outcome: RetrainResult) -> bool:
    from tradai_release.notify import notify

    details: dict[str, Any] = {
        "env": outcome.env,
        "strategy": outcome.strategy,
        "challenger": f"{outcome.model} v{outcome.challenger}",
        "hub tag": ", ".join(tag for tag, _ in outcome.tags.values()),
        "trace_id": outcome.trace_id,
    }
    if outcome.proposed:
        details["branch"] = outcome.branch
        details["profiles"] = outcome.promoted_profiles
        summary = (
            f"{outcome.strategy} v{outcome.challenger} beats the champion in {outcome.env}; "
            f"branch {outcome.branch} proposes it"
        )
        return notify(settings, "retraining_proposed", summary, details)
    details["reasons"] = "\n".join(outcome.reasons)
    summary = f"{outcome.strategy} v{outcome.challenger} in {outcome.env}: champion kept, nothing proposed"
    return notify(settings, "retraining_kept", summary, details)


# --- the branch, built from git objects ----------------------------------------------------------------


def _edited_manifests(
    repo: Path,
    base: str,
    promoted: Sequence[ProfileVerdict],
    manifests: Mapping[int, Any],
    strategy: str,
    version: int,
    tags: Mapping[str, tuple[str, str]],
) -> dict[str, str]:
    """Path -> new text of each promoted profile's manifest: production pin and hub tag moved."""
    from tradai_release.manifest_edit import ManifestEditor, check_edited

    edits: dict[str, str] = {}
    for verdict in promoted:
        manifest = manifests[verdict.profile]
        path = manifest.path
        text = _git(repo, "show", f"{base}:{path}")
        editor = ManifestEditor(text, path)
        editor.set_production(strategy, version)
        tag, sha = tags[manifest.artifacts.tag]
        editor.set_artifacts(tag, sha)
        new_text = editor.text()
        check_edited(text, new_text, Path(path), path)
        edits[path] = new_text
    return edits


def write_branch(repo: Path, base: str, branch: str, files: Mapping[str, str], message: str) -> str:
    """Create ``branch`` at a new commit = ``base`` with ``files`` replaced; nothing checked out changes.

    Uses a private index file, so the user's index, working tree and current branch stay as they were.
    """
    ref = f"refs/heads/{branch}"
    _git(repo, "check-ref-format", ref)
    exists = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "-q", ref], capture_output=True, check=False
    )
    if exists.returncode == 0:
        raise InputError(branch, "branch", "already exists; delete it or retrain again for a new version")
    git_dir = Path(_git(repo, "rev-parse", "--absolute-git-dir"))
    handle, index = tempfile.mkstemp(prefix="retrain-index-", dir=git_dir)
    os.close(handle)
    env = {"GIT_INDEX_FILE": index}
    try:
        _git(repo, "read-tree", base, env=env)
        for path, text in sorted(files.items()):
            blob = _git(repo, "hash-object", "-w", "--stdin", "--path", path, stdin=text)
            mode = _git(repo, "ls-tree", base, "--", path).split(" ", 1)[0] or "100644"
            _git(repo, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env)
        tree = _git(repo, "write-tree", env=env)
        new_commit = _git(repo, "commit-tree", tree, "-p", base, "-F", "-", stdin=message)
        _git(repo, "update-ref", ref, new_commit, "0" * 40)
    finally:
        Path(index).unlink(missing_ok=True)
    return new_commit


def _require_clean(repo: Path, path: str) -> None:
    status = _git(repo, "status", "--porcelain", "--untracked-files=all", "--", path)
    if status:
        first = status.splitlines()[0][3:]
        raise InputError(
            first,
            "(working tree)",
            "uncommitted change; commit it first so the challenger is reproducible from a commit",
        )


def _git(repo: Path, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            check=True,
            input=stdin,
            env={**os.environ, **(env or {})},
        )
    except subprocess.CalledProcessError as err:
        detail = (err.stderr or err.stdout or "").strip().splitlines()
        raise GitError(args[0], detail[0] if detail else f"git {args[0]} failed") from None
    except OSError as err:
        raise GitError(args[0], str(err)) from None
    return done.stdout.strip() if args[0] != "show" else done.stdout
