"""``promote``: pin a model version as a profile's production or staging version (seed ``set-version``).

Compute, then write: every input is checked and every edit computed (with the gate's verdict for
production pins moving forward in the gated environment) before the first file changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError
from tradai_release.domain.pins import PinChange, PinEdit, TagChoice, choose_tag
from tradai_release.registry.lifecycle import PRODUCTION, STAGING
from tradai_release.repository.manifest import Override, ReleaseManifest

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.domain.gate import Verdict
    from tradai_release.engine.plan import Plan
    from tradai_release.hub import ModelHub
    from tradai_release.registry.adapter import ModelRegistry, ModelVersionInfo
    from tradai_release.repository.environments import Environment
    from tradai_release.repository.tree import ReleaseTree
    from tradai_release.workflows.carry import Carried

STAGES: tuple[str, ...] = (PRODUCTION, STAGING)


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` changed (or, when ``blocked``, would have changed: then nothing was written)."""

    env: str
    strategy: str
    version: int
    stage: str
    profiles: tuple[int, ...]
    changes: tuple[PinChange, ...]
    checks: tuple[Verdict, ...]
    override: Override | None
    message: str
    blocked: str | None = None
    branch: str | None = None
    commit: str | None = None
    plan: Plan | None = None
    plan_error: str | None = None
    carried: Carried | None = None  # --from: the source environment's version, as this environment holds it

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
            "carried": self.carried.to_dict() if self.carried is not None else None,
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


def choose_manifests(
    tree: ReleaseTree, env: str, profile: str | int | Sequence[int], strategy: str
) -> list[ReleaseManifest]:
    """The manifests ``--profile N|all`` names (``all`` = every profile of ``env`` pinning ``strategy``), or
    those of a sequence of profile numbers (a wave)."""
    if isinstance(profile, Sequence) and not isinstance(profile, str):
        return [m for number in profile for m in choose_manifests(tree, env, number, strategy)]
    if str(profile).strip().lower() == "all":
        chosen = [m for m in tree.manifests(env) if strategy in m.strategies]
        if not chosen:
            raise InputError(f"releases/{env}", "--strategy", f"no profile of {env} pins {strategy}")
        return chosen
    manifest = tree.manifest(env, tree.profile(env, profile))
    if strategy not in manifest.strategies:
        raise InputError(manifest.path, f"strategies.{strategy}", "strategy is not pinned in this manifest")
    return [manifest]


def promote(
    settings: Settings,
    env: Environment,
    profile: str | int | Sequence[int],
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
    branch: str | None = None,
    note: str = "",
    checkout: bool = True,
    source: Environment | None = None,
) -> Promotion:
    """Pin ``strategy`` ``version`` as the ``stage`` version of ``profile`` (N or all) in ``env``.

    Refreshes the strategy's config pin in every manifest of ``env``; for a production pin moving
    forward in the gated environment asks the gate (champion = the version live for the profile)
    and, when it does not approve, writes nothing unless ``override_reason`` is given (recorded as
    ``model.override`` with the approver). ``commit`` commits the edit on a new branch
    ``release/<env>-<S>-v<V>-<short>`` (or ``branch``) and checks it out unless ``checkout`` is False;
    ``note`` ends the commit message (progress's evidence). ``source`` (``--from``): ``version`` is the
    source environment's; the very artifact is carried into ``env`` first (:mod:`.carry`: the same hub
    files, metrics and lineage, or the version ``env`` already holds with those files), then pinned.
    """
    from tradai_release.domain.gate import by_version, production_move
    from tradai_release.engine.gitops import approver, write_edits
    from tradai_release.registry.comparator import ModelComparator
    from tradai_release.repository.gitrepo import GitRepo
    from tradai_release.repository.tree import ReleaseTree

    root = Path(repo if repo is not None else settings.repo)
    tree = ReleaseTree.work(root)
    stage = parse_stage(stage)
    number = parse_version(version)
    if no_archive and stage != PRODUCTION:
        raise InputError("promote", "--no-archive", "only applies to --stage Production")
    digest = tree.config_hash(strategy)
    chosen = choose_manifests(tree, env.name, profile, strategy)
    carried = None
    if source is not None:
        from tradai_release.workflows.carry import carry

        names = sorted({m.strategies[strategy].model.name for m in chosen})
        if len(names) > 1:
            raise InputError("promote", "--profile", f"the chosen profiles pin {strategy} as different "
                             f"models ({', '.join(names)}); promote them one at a time")
        carried = carry(settings, source, env, names[0], strategy, number)
        number = carried.version

    field_name = "production" if stage == PRODUCTION else "staging"
    if registry is None:
        from tradai_release.registry.adapter import MlflowRegistry

        registry = MlflowRegistry.for_env(env, settings)
    history = registry.versions(sorted({m.strategies[strategy].model.name for m in chosen}))
    for manifest in chosen:
        name = manifest.strategies[strategy].model.name
        found = by_version(history.get(name, [])).get(number)
        where = f"strategies.{strategy}.model.{field_name}"
        if found is None:
            raise InputError(manifest.path, where, f"version {number} of registered model {name!r} is not in "
                             f"the {env.name} registry")
        if found.status != "READY":
            reason = f"version {number} of {name!r} is {found.status}, not READY"
            raise InputError(manifest.path, where, reason)

    who = approver(settings, root) if override_reason else None
    override = Override(who, override_reason) if who and override_reason else None
    comparator = ModelComparator()
    edit = PinEdit.of(tree, tree.manifests(env.name))
    checks: list[Verdict] = []
    profiles: list[int] = []
    moves: list[tuple[ReleaseManifest, ModelVersionInfo]] = []  # profiles whose hub tag may move
    for manifest in chosen:
        pin = manifest.strategies[strategy].model
        versions = by_version(history.get(pin.name, []))
        verdict = None
        if stage == PRODUCTION and pin.production != number:
            verdict = production_move(manifest.profile, pin.name, versions, number, comparator,
                                      pinned=pin.production, path=manifest.path, gated=env.gated,
                                      overridden=override is not None)
        if verdict is not None and verdict.gated:  # promote reports the moves the gate judges
            checks.append(verdict)
        needs_override = verdict is not None and verdict.needs_override
        if edit.promote(manifest.path, strategy, number, stage=stage, keep_previous=no_archive,
                        override=override if needs_override else None):
            profiles.append(manifest.profile)
        if stage == PRODUCTION and pin.production != number:
            moves.append((manifest, versions[number]))

    if not edit.changes:
        where = ", ".join(str(m.profile) for m in chosen)
        reason = (f"{env.name} profile {where} already pins {strategy} {field_name} v{number}; "
                  "nothing to change")
        raise InputError("promote", "--version", reason)
    edit.refresh_config(strategy, digest)  # one ACTIVE config per strategy and env

    recorded = override if any(check.needs_override for check in checks) else None
    blocked = None
    first = next((check for check in checks if check.blocked), None)
    if first is not None:
        blocked = (f"{first.path}: strategies.{strategy}.model.production: the comparator says "
                   f"{first.decision} for v{number} against champion v{first.champion} "
                   f"({'; '.join(first.reasons)}); nothing was written: pass --override-reason TEXT to "
                   "record an approved override")
    if blocked is None and moves:
        # Only now, when the edit will be written: moving the hub tag may splice (create) a tag in the hub.
        from tradai_release.engine.gitops import make_tag
        from tradai_release.hub import ModelHub

        hub = ModelHub.from_settings(settings)
        for manifest, challenger in moves:
            choice = tag_for_version(hub, manifest, strategy, challenger)
            if choice is not None:
                edit.set_artifacts(manifest.path, *make_tag(hub, choice))
    changes = tuple(edit.changes)
    message = promotion_message(env.name, strategy, number, stage, profiles, changes, checks, recorded)
    if carried is not None:
        how = "registered" if carried.created else "already registered"
        message += (f"carried from {carried.source_env} v{carried.source_version}: the same files "
                    f"(content sha256 {carried.content_sha256[:16]}, hub tag {carried.r2_tag}), {how} "
                    f"in {env.name} as v{carried.version}\n")
    if note:
        message += "\n" + note.rstrip("\n") + "\n"
    result = Promotion(
        env=env.name, strategy=strategy, version=number, stage=stage, profiles=tuple(profiles),
        changes=changes, checks=tuple(checks), override=recorded, message=message, blocked=blocked,
        carried=carried,
    )
    if blocked:
        return result
    texts = edit.texts()
    with GitRepo(root) as git:
        short = git.head()[:7]
    written = write_edits(settings, root, env, texts, message, commit=commit, plan=plan,
                          branch=branch or f"release/{env.name}-{strategy}-v{number}-{short}",
                          clean=[f"strategies/{strategy}/tradai.yaml"], checkout=checkout)
    return replace(result, branch=written.branch, commit=written.commit, plan=written.plan,
                   plan_error=written.plan_error)


def tag_for_version(
    hub: ModelHub, manifest: ReleaseManifest, strategy: str, version: ModelVersionInfo
) -> TagChoice | None:
    """The hub tag a profile must pin so its bot runs ``version``'s binaries (see :func:`choose_tag`).

    The version's own tag (``r2_tag``) is the donor; a spliced tag is named
    ``<profile tag>_<strategy>-v<N>`` so re-running the same promotion reuses it.
    """
    donor = version.tags.get("r2_tag")
    if not donor or donor == manifest.artifacts.tag:
        return None
    pinned = hub.read_tag(manifest.artifacts.tag, expected_sha256=manifest.artifacts.sha256)
    return choose_tag(
        manifest, pinned.files, donor, hub.read_tag(donor).files, strategy,
        donor_sha256=None,
        splice_name=f"{manifest.artifacts.tag}_{strategy}-v{version.version}",
        message=f"{manifest.environment} profile {manifest.profile}: {strategy} v{version.version} "
        f"from {donor}",
    )


def promotion_message(
    env: str, strategy: str, version: int, stage: str, profiles: list[int], changes: tuple[PinChange, ...],
    checks: list[Verdict], override: Override | None,
) -> str:
    """The commit message: a subject naming what moved where, then every changed field and the verdicts."""
    where = ", ".join(map(str, profiles)) if profiles else "-"
    plural = "s" if len(profiles) != 1 else ""
    lines = [f"Promote {strategy} v{version} to {stage} in {env} profile{plural} {where}", ""]
    lines += [change.describe() for change in changes]
    for check in checks:
        if check.rollback:
            lines.append(f"profile {check.profile}: v{version} was Production before (rollback)")
        else:
            lines.append(f"comparator, profile {check.profile}, champion v{check.champion}: "
                         f"{check.decision} ({'; '.join(check.reasons)})")
    if override is not None:
        lines.append(f"override approved by {override.approved_by}: {override.reason}")
    return "\n".join(lines) + "\n"
