"""``rollback``: restore a profile's (or one strategy's) pins from an earlier commit or deployment.

The rollback is a new commit; applying it re-pins the old versions. Config pins stay at the
current tradai.yaml: a strategy's config is shared by every environment, so it rolls back by
reverting the commit that changed it, not per environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError
from tradai_release.domain.pins import PinChange, PinEdit, TagChoice, choose_tag
from tradai_release.engine.deployments import SUCCEEDED
from tradai_release.repository.manifest import ReleaseManifest, StrategyPin, manifest_path

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.engine.deployments import Deployment
    from tradai_release.engine.plan import Plan
    from tradai_release.hub import ModelHub
    from tradai_release.repository.environments import Environment
    from tradai_release.repository.tree import ReleaseTree


@dataclass(frozen=True)
class Rollback:
    """The pins a rollback restored from ``source`` (a commit, named by ``ref`` or a deployment)."""

    env: str
    ref: str
    source: str
    deployment_id: str | None
    head: str
    profiles: tuple[int, ...]
    strategy: str | None
    changes: tuple[PinChange, ...]
    message: str
    branch: str | None = None
    commit: str | None = None
    plan: Plan | None = None
    plan_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "from": self.head,
            "to": self.source,
            "ref": self.ref,
            "deployment_id": self.deployment_id,
            "profiles": list(self.profiles),
            "strategy": self.strategy,
            "changes": [change.to_dict() for change in self.changes],
            "branch": self.branch,
            "commit": self.commit,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "plan_error": self.plan_error,
        }


def previous_deployment(deployments: Sequence[Deployment], env: str) -> Deployment:
    """The newest successful deployment of a commit other than the live one (list is newest first)."""
    succeeded = [d for d in deployments if d.outcome == SUCCEEDED]
    if not succeeded:
        reason = f"nothing to roll back: {env} has no successful deployment; pass --to REF"
        raise InputError("rollback", "--deployment", reason)
    live = succeeded[0]
    for deployment in succeeded[1:]:
        if deployment.commit != live.commit:
            return deployment
    raise InputError("rollback", "--deployment", f"nothing to roll back: {env} has no deployment before "
                     f"{live.deployment_id} (commit {live.commit[:12]}); pass --to REF")


def find_deployment(deployments: Sequence[Deployment], env: str, deployment_id: str) -> Deployment:
    for deployment in deployments:
        if deployment.deployment_id == deployment_id:
            return deployment
    known = ", ".join(str(d.deployment_id) for d in deployments[:5]) or "none recorded"
    raise InputError("rollback", "--deployment", f"no deployment {deployment_id} in {env} (newest: {known})")


def _source(
    settings: Settings, env: Environment, root: Path, to: str | None, deployment: str | None,
    deployments: Sequence[Deployment] | None,
) -> tuple[str, str, str | None]:
    """(ref as shown, commit, deployment id) of what to restore: ``to``, a deployment, or the previous one."""
    from tradai_release.repository.gitrepo import GitRepo

    if to:
        with GitRepo(root) as git:
            return to, git.resolve(to), None
    if deployments is None:
        from tradai_release.engine.deployments import list_deployments

        deployments = list_deployments(settings, env)
    chosen = (find_deployment(deployments, env.name, deployment) if deployment
              else previous_deployment(deployments, env.name))
    with GitRepo(root) as git:
        return f"deployment {chosen.deployment_id}", git.resolve(chosen.commit), chosen.deployment_id


def rollback(
    settings: Settings,
    env: Environment,
    *,
    profile: str | int | None = None,
    strategy: str | None = None,
    to: str | None = None,
    deployment: str | None = None,
    commit: bool = False,
    repo: Path | str | None = None,
    deployments: Sequence[Deployment] | None = None,
    plan: bool = True,
) -> Rollback:
    """Restore ``env``'s pins (one profile, one strategy, or all) from ``to`` or a deployment's commit.

    Default source: the commit of the previous successful deployment of ``env``. Restores each
    strategy's model pins (production, staging, keep_production, override) and, for whole
    profiles, the hub tag and the set of pinned strategies; config pins follow the current
    tradai.yaml. ``commit`` commits on a new branch ``rollback/<env>...-to-<short>`` and checks it out.
    """
    from tradai_release.engine.gitops import make_tag, write_edits
    from tradai_release.repository.gitrepo import GitRepo
    from tradai_release.repository.tree import ReleaseTree

    root = Path(repo if repo is not None else settings.repo)
    tree = ReleaseTree.work(root)
    if to and deployment:
        raise InputError("rollback", "--to", "give --to REF or --deployment ID, not both")
    if strategy:
        tree.require_strategy(strategy)  # one line before git or backends are read
    if str(profile or "").lower() == "all":
        profile = None
    explicit = profile not in (None, "")
    profiles = [tree.profile(env.name, str(profile))] if explicit else tree.profiles(env.name)
    ref, source, deployment_id = _source(settings, env, root, to, deployment, deployments)
    with GitRepo(root) as git:
        head = git.head()

    edit = PinEdit.of(tree, [m for p in profiles if (m := tree.manifest_or_none(env.name, p)) is not None])
    touched: list[int] = []
    moves: list[tuple[ReleaseManifest, ReleaseManifest]] = []  # --strategy: the hub tag may differ
    with ReleaseTree.at(root, source) as then_tree:
        for number in profiles:
            then = then_tree.manifest_or_none(env.name, number)
            now = edit.manifests.get(manifest_path(env.name, number))
            pinned_both = (then is not None and now is not None and strategy in then.strategies
                           and strategy in now.strategies)
            if strategy and not explicit and not pinned_both:
                continue  # this profile does not pin the strategy on both sides: nothing of it to restore
            if then is None or now is None:
                if explicit:
                    missing = "the current tree" if now is None else f"{ref} ({source[:12]})"
                    raise InputError(manifest_path(env.name, number), "(file)",
                                     f"not in {missing}; nothing to restore")
                continue
            if _restore(edit, tree, now, then, strategy, f"{ref} ({source[:12]})"):
                touched.append(number)
            if strategy and now.artifacts != then.artifacts:
                moves.append((now, then))

    hub = _hub(settings) if strategy and moves else None
    choices = _strategy_tags(hub, moves, strategy) if hub is not None and strategy else []
    if not edit.changes and not choices:
        what = f"{strategy} in " if strategy else ""
        where = f"profile {profile}" if explicit else "every profile"
        raise InputError("rollback", "--to" if to else "--deployment",
                         f"nothing to roll back: {what}{env.name} {where} already pins what {ref} "
                         f"({source[:12]}) pinned")
    # Only now, when the edit will be written: restoring one strategy's binaries may splice a hub tag.
    for choice in choices:
        assert hub is not None
        edit.set_artifacts(choice.path, *make_tag(hub, choice))
        number = edit.manifests[choice.path].profile
        if number not in touched:
            touched.append(number)
    touched.sort()
    texts = edit.texts()

    scope = f" profile {profile}" if explicit else ""
    scope += f" {strategy}" if strategy else ""
    message = "\n".join([
        f"Roll back {env.name}{scope} to {source[:12]} ({ref})",
        "",
        f"from {head[:12]} to {source[:12]}",
        *(change.describe() for change in edit.changes),
    ]) + "\n"
    result = Rollback(env=env.name, ref=ref, source=source, deployment_id=deployment_id, head=head,
                      profiles=tuple(touched), strategy=strategy or None, changes=tuple(edit.changes),
                      message=message)
    branch = f"rollback/{env.name}" + (f"-p{profile}" if explicit else "")
    branch += f"-{strategy}" if strategy else ""
    clean = [f"strategies/{strategy}/tradai.yaml"] if strategy else []
    written = write_edits(settings, root, env, texts, message, commit=commit, plan=plan,
                          branch=f"{branch}-to-{source[:7]}", clean=clean)
    return replace(result, branch=written.branch, commit=written.commit, plan=written.plan,
                   plan_error=written.plan_error)


def _restore(
    edit: PinEdit, tree: ReleaseTree, now: ReleaseManifest, then: ReleaseManifest, strategy: str | None,
    source: str,
) -> bool:
    """Restore one profile: ``strategy``'s model pins, or (whole profile) every pin, the set of pinned
    strategies and the hub tag. True when the manifest changes."""
    before = len(edit.changes)
    for name in [strategy] if strategy else list(then.strategies):
        if name not in then.strategies:
            raise InputError(now.path, f"strategies.{name}", f"not pinned at {source}")
        if name in now.strategies:
            edit.restore(now.path, name, then.strategies[name].model)
            continue
        if strategy:
            raise InputError(now.path, f"strategies.{name}", "not pinned in the current manifest")
        pin = then.strategies[name]
        edit.add_strategy(now.path, name, StrategyPin(_current_hash(tree, name) or pin.config, pin.model))
    if not strategy:
        for name in now.strategies:
            if name not in then.strategies:
                edit.remove_strategy(now.path, name)
        edit.set_artifacts(now.path, then.artifacts.tag, then.artifacts.sha256)
    return len(edit.changes) > before


def _current_hash(tree: ReleaseTree, name: str) -> str | None:
    """The current config hash of a strategy, None when it was removed or is broken (its pin stays)."""
    try:
        return tree.config_hash(name)
    except InputError:
        return None


def _hub(settings: Settings) -> ModelHub:
    from tradai_release.hub import ModelHub

    return ModelHub.from_settings(settings)


def _strategy_tags(
    hub: ModelHub, moves: Sequence[tuple[ReleaseManifest, ReleaseManifest]], strategy: str
) -> list[TagChoice]:
    """For each profile whose hub tag differs from the source's, the tag that runs ``strategy``'s source
    binaries beside the profile's other strategies' current ones (see :func:`choose_tag`); profiles
    where the strategy's files are the same in both tags are left out. Reads only."""
    choices = []
    for now, then in moves:
        current = hub.read_tag(now.artifacts.tag, expected_sha256=now.artifacts.sha256)
        source = hub.read_tag(then.artifacts.tag, expected_sha256=then.artifacts.sha256)
        choice = choose_tag(
            now, current.files, then.artifacts.tag, source.files, strategy,
            donor_sha256=then.artifacts.sha256,
            splice_name=f"{now.artifacts.tag}_{strategy}-from-{then.artifacts.tag}",
            message=f"{now.environment} profile {now.profile}: {strategy} rolled back to "
            f"{then.artifacts.tag}",
        )
        if choice is not None:
            choices.append(choice)
    return choices
