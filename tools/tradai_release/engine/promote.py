"""``promote``: pin a model version as a profile's production or staging version (seed ``set-version``).

Compute, then write: every input is checked and every edit computed (with the comparator's
verdict for production pins moving forward in prod) before the first file changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.engine.gitops import PinChange, head_commit, write_edits
from tradai_release.errors import InputError
from tradai_release.manifest import ENVIRONMENTS, PROFILES, Override, ReleaseManifest, manifest_path
from tradai_release.manifest_edit import ManifestEditor, check_edited
from tradai_release.strategy import tradai_path

if TYPE_CHECKING:
    from tradai_release.engine.plan import Plan
    from tradai_release.registry.adapter import ModelRegistry, ModelVersionInfo
    from tradai_release.registry.comparator import Comparison
    from tradai_release.settings import Settings

PRODUCTION = "Production"
STAGING = "Staging"
STAGES: tuple[str, ...] = (PRODUCTION, STAGING)
GATED_ENV = "prod"
"""The environment whose forward production moves need the comparator's approval or an override (§5)."""


@dataclass(frozen=True)
class ComparatorCheck:
    """The comparator's verdict on one profile's production pin moving from ``champion`` to ``challenger``.

    ``comparison`` is None for a rollback (the challenger was Production before: no comparison).
    """

    profile: int
    path: str
    model: str
    champion: int | None
    challenger: int
    comparison: Comparison | None
    rollback: bool

    @property
    def approved(self) -> bool:
        return self.comparison is None or self.comparison.decision == "promote"

    def to_dict(self) -> dict[str, Any]:
        comparison = self.comparison
        return {
            "profile": self.profile,
            "path": self.path,
            "model": self.model,
            "champion": self.champion,
            "challenger": self.challenger,
            "rollback": self.rollback,
            "decision": comparison.decision if comparison is not None else "rollback",
            "reasons": list(comparison.reasons) if comparison is not None else [],
            "metrics": [
                {
                    "metric": row.metric, "challenger": row.challenger, "champion": row.champion,
                    "operator": row.operator, "threshold": row.threshold, "required": row.required,
                    "passed": row.passed,
                }
                for row in (comparison.rows if comparison is not None else ())
            ],
        }


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` changed (or, when ``blocked``, would have changed: then nothing was written)."""

    env: str
    strategy: str
    version: int
    stage: str
    profiles: tuple[int, ...]
    changes: tuple[PinChange, ...]
    checks: tuple[ComparatorCheck, ...]
    override: Override | None
    message: str
    blocked: str | None = None
    branch: str | None = None
    commit: str | None = None
    plan: Plan | None = None
    plan_error: str | None = None

    @property
    def written(self) -> bool:
        return self.blocked is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "strategy": self.strategy,
            "version": self.version,
            "stage": self.stage,
            "profiles": list(self.profiles),
            "changes": [change.to_dict() for change in self.changes],
            "comparisons": [check.to_dict() for check in self.checks],
            "override": None if self.override is None
            else {"approved_by": self.override.approved_by, "reason": self.override.reason},
            "blocked": self.blocked,
            "written": self.written,
            "branch": self.branch,
            "commit": self.commit,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "plan_error": self.plan_error,
        }


def parse_stage(stage: str) -> str:
    """``Production`` / ``Staging`` (any case)."""
    for known in STAGES:
        if stage.strip().lower() == known.lower():
            return known
    raise InputError("promote", "--stage", f"unknown stage {stage!r} (use Staging or Production)")


def parse_version(version: str | int) -> int:
    text = str(version).strip().removeprefix("v")
    if not text.isdigit() or int(text) < 1:
        raise InputError("promote", "--version", f"{version!r} is not a model version number (1, 2, ...)")
    return int(text)


def read_manifest(root: Path, path: str) -> ReleaseManifest:
    """The working tree's manifest at ``path`` as a typed value; its first problem is raised."""
    from tradai_release.manifest import check_manifest, parse_manifest_name
    from tradai_release.repo import WorkTree, load_document

    document = load_document(WorkTree(root), path)
    environment = Path(path).parent.name
    problems = check_manifest(environment, parse_manifest_name(Path(path).name) or 0, document)
    if problems:
        raise problems[0]
    return ReleaseManifest.from_dict(document.data, path=path)


def strategy_hash(root: Path, strategy: str) -> str:
    """Config hash of the working tree's ``strategies/<S>/tradai.yaml``; an unknown strategy: InputError."""
    from tradai_release.confighash import config_hash
    from tradai_release.repo import WorkTree, load_document
    from tradai_release.strategy import STRATEGIES_DIR, check_tradai

    tree = WorkTree(root)
    if not strategy or not tree.is_dir(f"{STRATEGIES_DIR}/{strategy}") or "/" in strategy:
        names = tree.listdir(STRATEGIES_DIR)
        known = ", ".join(name for name in names if tree.is_dir(f"{STRATEGIES_DIR}/{name}"))
        raise InputError(f"{STRATEGIES_DIR}/{strategy}", "--strategy", f"unknown strategy (known: {known})")
    document = load_document(tree, tradai_path(strategy))
    problems = check_tradai(strategy, document)
    if problems:
        raise problems[0]
    return config_hash(document.data)


def env_manifests(root: Path, env: str) -> list[str]:
    """Paths of the manifests ``env`` has in the working tree, by profile."""
    return [manifest_path(env, p) for p in PROFILES if (root / manifest_path(env, p)).is_file()]


def choose_profiles(root: Path, env: str, profile: str | int, strategy: str, command: str) -> list[str]:
    """Manifest paths for ``--profile N|all``; ``all`` = every profile of ``env`` pinning ``strategy``."""
    if env not in ENVIRONMENTS:
        raise InputError(command, "--env", f"unknown environment {env!r} (use {', '.join(ENVIRONMENTS)})")
    text = str(profile).strip()
    if text.lower() == "all":
        paths = env_manifests(root, env)
        chosen = [path for path in paths if strategy in read_manifest(root, path).strategies]
        if not chosen:
            raise InputError(f"releases/{env}", "--strategy", f"no profile of {env} pins {strategy}")
        return chosen
    if not text.isdigit() or int(text) not in PROFILES:
        raise InputError(command, "--profile", f"{profile!r} is not a profile (use 1..{PROFILES[-1]} or all)")
    path = manifest_path(env, int(text))
    if not (root / path).is_file():
        raise InputError(path, "--profile", f"{env} has no profile {text}")
    return [path]


def approver(settings: Settings, root: Path) -> str:
    """Who approves an override: ``TRADAI_ACTOR`` when set, else the git author, else the default actor."""
    from tradai_release.engine.gitops import git
    from tradai_release.errors import GitError

    if "actor" in settings.model_fields_set:
        return settings.actor
    try:
        ident = git(root, "var", "GIT_AUTHOR_IDENT").strip()
    except GitError:
        return settings.actor
    return ident.rsplit(" ", 2)[0] if ident.count(" ") >= 2 else ident or settings.actor


def _find(listed: list[ModelVersionInfo], version: int) -> ModelVersionInfo | None:
    return next((info for info in listed if info.version == version), None)


def promote(
    settings: Settings,
    env: str,
    profile: str | int,
    strategy: str,
    version: str | int,
    *,
    stage: str = PRODUCTION,
    no_archive: bool = False,
    override_reason: str | None = None,
    commit: bool = False,
    repo: Path | str | None = None,
    registry: ModelRegistry | None = None,
    plan: bool = True,
) -> Promotion:
    """Pin ``strategy`` ``version`` as the ``stage`` version of ``profile`` (N or all) in ``env``.

    Refreshes the strategy's config pin in every manifest of ``env``; for a production pin moving
    forward in prod runs the comparator (champion = the version pinned now) and, when it does not
    approve, writes nothing unless ``override_reason`` is given (recorded as ``model.override``
    with the approver). ``commit`` commits the edit on a new branch ``release/<env>-<S>-v<V>-<short>``.
    """
    from tradai_release.registry.comparator import ModelComparator
    from tradai_release.registry.lifecycle import was_production

    root = Path(repo if repo is not None else settings.repo)
    stage = parse_stage(stage)
    number = parse_version(version)
    if no_archive and stage != PRODUCTION:
        raise InputError("promote", "--no-archive", "only applies to --stage Production")
    digest = strategy_hash(root, strategy)
    settings.backends(env)  # an unknown env is one line before anything is read
    paths = choose_profiles(root, env, profile, strategy, "promote")
    manifests = {path: read_manifest(root, path) for path in paths}
    for path, manifest in manifests.items():
        if strategy not in manifest.strategies:
            raise InputError(path, f"strategies.{strategy}", "strategy is not pinned in this manifest")

    field_name = "production" if stage == PRODUCTION else "staging"
    names = sorted({m.strategies[strategy].model.name for m in manifests.values()})
    from tradai_release.registry.adapter import MlflowRegistry

    registry = registry or MlflowRegistry.for_env(env, settings)
    history = registry.versions(names)
    for path, manifest in manifests.items():
        name = manifest.strategies[strategy].model.name
        found = _find(history.get(name, []), number)
        where = f"strategies.{strategy}.model.{field_name}"
        if found is None:
            raise InputError(path, where, f"version {number} of registered model {name!r} is not in the "
                             f"{env} registry")
        if found.status != "READY":
            raise InputError(path, where, f"version {number} of {name!r} is {found.status}, not READY")

    comparator = ModelComparator()
    who = approver(settings, root) if override_reason else None
    override = Override(who, override_reason) if who and override_reason else None
    editors: dict[str, ManifestEditor] = {}
    changes: list[PinChange] = []
    checks: list[ComparatorCheck] = []
    unapproved: list[ComparatorCheck] = []
    profiles: list[int] = []
    moves: list[tuple[str, ReleaseManifest, ModelVersionInfo]] = []  # profiles whose hub tag may move
    for path, manifest in manifests.items():
        editor = ManifestEditor((root / path).read_text(encoding="utf-8"), path)
        editors[path] = editor
        pin = manifest.strategies[strategy].model
        model = f"strategies.{strategy}.model"
        listed = history.get(pin.name, [])
        if stage == STAGING:
            if pin.production == number:
                raise InputError(path, f"{model}.staging", f"version {number} is already the production pin")
            if pin.staging != number:
                editor.set_staging(strategy, number)
                changes.append(PinChange(path, f"{model}.staging", pin.staging, number))
                profiles.append(manifest.profile)
            continue
        if pin.production == number and pin.staging != number:
            continue
        profiles.append(manifest.profile)
        if pin.production != number:
            editor.set_production(strategy, number)
            changes.append(PinChange(path, f"{model}.production", pin.production, number))
        if pin.staging == number:  # the challenger graduates: it no longer dry-runs beside itself
            editor.set_staging(strategy, None)
            changes.append(PinChange(path, f"{model}.staging", pin.staging, None))
        keep = [v for v in pin.keep_production if v != number]
        if no_archive and pin.production != number and pin.production not in keep:
            keep.append(pin.production)
        if tuple(keep) != pin.keep_production:
            editor.set_keep_production(strategy, keep)
            changes.append(PinChange(path, f"{model}.keep_production", list(pin.keep_production) or None,
                                     keep or None))
        new_override = pin.override if pin.production == number else None
        challenger = _find(listed, number)
        if pin.production != number and challenger is not None:
            moves.append((path, manifest, challenger))
        if env == GATED_ENV and pin.production != number:
            rollback = challenger is not None and was_production(challenger)
            comparison = None
            if not rollback and number > pin.production:
                champion = _find(listed, pin.production)
                comparison = comparator.compare(
                    dict(challenger.metrics) if challenger is not None else {},
                    dict(champion.metrics) if champion is not None else None,
                )
            if rollback or comparison is not None:
                check = ComparatorCheck(manifest.profile, path, pin.name, pin.production, number, comparison,
                                        rollback)
                checks.append(check)
                if not check.approved:
                    unapproved.append(check)
                    new_override = override
        if new_override != pin.override:
            editor.set_override(strategy, new_override.approved_by if new_override else None,
                                new_override.reason if new_override else None)
            changes.append(PinChange(path, f"{model}.override", _override_text(pin.override),
                                     _override_text(new_override)))

    if not changes:
        where = ", ".join(str(manifests[p].profile) for p in paths)
        reason = f"{env} profile {where} already pins {strategy} {field_name} v{number}; nothing to change"
        raise InputError("promote", "--version", reason)

    for path in env_manifests(root, env):  # one ACTIVE config per strategy and env: refresh every pin of it
        if path not in editors:
            current = read_manifest(root, path)
            if strategy not in current.strategies or current.strategies[strategy].config == digest:
                continue
            editors[path] = ManifestEditor((root / path).read_text(encoding="utf-8"), path)
            old = current.strategies[strategy].config
        else:
            old = manifests[path].strategies[strategy].config
        if old != digest:
            editors[path].set_config(strategy, digest)
            changes.append(PinChange(path, f"strategies.{strategy}.config", old, digest))

    message = promotion_message(env, strategy, number, stage, profiles, changes, checks, override
                                if unapproved else None)
    blocked = None
    if unapproved and override is None:
        first = unapproved[0]
        decision = first.comparison.decision if first.comparison is not None else "rollback"
        reasons = "; ".join(first.comparison.reasons) if first.comparison is not None else ""
        blocked = (f"{first.path}: strategies.{strategy}.model.production: the comparator says {decision} "
                   f"for v{number} against champion v{first.champion} ({reasons}); nothing was written: "
                   "pass --override-reason TEXT to record an approved override")
    result = Promotion(
        env=env, strategy=strategy, version=number, stage=stage, profiles=tuple(profiles),
        changes=tuple(changes), checks=tuple(checks), override=override if unapproved else None,
        message=message, blocked=blocked,
    )
    if blocked:
        return result
    # Only now, when the edit will be written: moving the hub tag may splice (create) a tag in the hub.
    for path, manifest, challenger in moves:
        artifacts = artifacts_for(settings, manifest, strategy, challenger)
        if artifacts is not None:
            editors[path].set_artifacts(*artifacts)
            changes.append(PinChange(path, "artifacts.tag", manifest.artifacts.tag, artifacts[0]))
    if moves:
        message = promotion_message(env, strategy, number, stage, profiles, changes, checks,
                                    override if unapproved else None)
        result = replace(result, changes=tuple(changes), message=message)

    texts = {path: editor.text() for path, editor in editors.items() if editor.changed}
    for path, text in texts.items():  # an edit must not make a manifest worse
        check_edited((root / path).read_text(encoding="utf-8"), text, root / path, path)
    written = write_edits(settings, root, env, texts, message, commit=commit, plan=plan,
                          branch=f"release/{env}-{strategy}-v{number}-{head_commit(root)[:7]}",
                          clean=[tradai_path(strategy)])
    return replace(result, branch=written.branch, commit=written.commit, plan=written.plan,
                   plan_error=written.plan_error)


def artifacts_for(
    settings: Settings, manifest: ReleaseManifest, strategy: str, version: ModelVersionInfo
) -> tuple[str, str] | None:
    """The hub tag (and its sha256) a profile must pin so its bot runs ``version``'s binaries.

    None when the pinned tag already holds them (or the version names no hub tag). Otherwise
    the version's own tag (``r2_tag``) when its other strategies' files are the ones the profile
    runs now, else a tag spliced from the profile's tag with this strategy's files taken from
    the version's tag (no upload; named ``<profile tag>_<strategy>-v<N>`` so re-runs reuse it).
    """
    from tradai_release.hub import ModelHub

    donor = version.tags.get("r2_tag")
    if not donor or donor == manifest.artifacts.tag:
        return None
    hub = ModelHub.from_settings(settings)
    pinned = hub.read_tag(manifest.artifacts.tag, expected_sha256=manifest.artifacts.sha256)
    given = hub.read_tag(donor)

    def files_of(tag_files: Mapping[str, Any], names: set[str]) -> dict[str, Any]:
        return {rel: entry for rel, entry in tag_files.items() if rel.split("/", 1)[0] in names}

    if files_of(given.files, {strategy}) == files_of(pinned.files, {strategy}):
        return None
    others = set(manifest.strategies) - {strategy}
    if files_of(given.files, others) == files_of(pinned.files, others):
        return donor, hub.tag_sha256(donor)
    name = f"{manifest.artifacts.tag}_{strategy}-v{version.version}"
    sha = hub.splice(
        manifest.artifacts.tag,
        donor,
        [strategy],
        tag=name,
        source_sha256=manifest.artifacts.sha256,
        message=f"{manifest.environment} profile {manifest.profile}: {strategy} v{version.version} "
        f"from {donor}",
    )
    return name, sha


def _override_text(override: Override | None) -> str | None:
    return None if override is None else f"{override.approved_by}: {override.reason}"


def promotion_message(
    env: str, strategy: str, version: int, stage: str, profiles: list[int], changes: list[PinChange],
    checks: list[ComparatorCheck], override: Override | None,
) -> str:
    """The commit message: a subject naming what moved where, then every changed field and the verdicts."""
    where = ", ".join(map(str, profiles)) if profiles else "-"
    plural = "s" if len(profiles) != 1 else ""
    lines = [f"Promote {strategy} v{version} to {stage} in {env} profile{plural} {where}", ""]
    lines += [change.describe() for change in changes]
    for check in checks:
        if check.comparison is None:
            lines.append(f"profile {check.profile}: v{version} was Production before (rollback)")
        else:
            lines.append(f"comparator, profile {check.profile}, champion v{check.champion}: "
                         f"{check.comparison.decision} ({'; '.join(check.comparison.reasons)})")
    if override is not None:
        lines.append(f"override approved by {override.approved_by}: {override.reason}")
    return "\n".join(lines) + "\n"
