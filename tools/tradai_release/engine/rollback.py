"""``rollback``: restore a profile's (or one strategy's) pins from an earlier commit or deployment (§7).

The rollback is a new commit; applying it re-pins the old versions. Config pins stay at the
current tradai.yaml: a strategy's config is shared by every environment, so it rolls back by
reverting the commit that changed it, not per environment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.engine.gitops import PinChange, head_commit, resolve_commit, write_edits
from tradai_release.errors import InputError
from tradai_release.manifest import PROFILES, ReleaseManifest, manifest_path
from tradai_release.manifest_edit import ManifestEditor, check_edited

if TYPE_CHECKING:
    from tradai_release.engine.deployments import Deployment
    from tradai_release.engine.plan import Plan
    from tradai_release.manifest import ModelPin
    from tradai_release.settings import Settings

SUCCEEDED = "succeeded"


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


def _stamp(deployment: Deployment) -> str:
    return (deployment.deployment_id or "").split("-", 1)[0]


def newest_first(deployments: Sequence[Deployment], root: Path | str) -> list[Deployment]:
    """``deployments`` (newest first by id) with ties inside one second put in commit order.

    Deployment ids carry the time to the second; two applies in the same second are ordered by
    their commits instead: a later apply's commit descends from the earlier one's (the stale
    guard), so it has more ancestors.
    """
    from tradai_release.engine.gitops import git
    from tradai_release.errors import GitError

    def depth(commit: str) -> int:
        try:
            return int(git(root, "rev-list", "--count", commit).strip())
        except GitError:
            return -1

    ordered: list[Deployment] = []
    items = list(deployments)
    start = 0
    while start < len(items):
        end = start + 1
        while end < len(items) and _stamp(items[end]) == _stamp(items[start]):
            end += 1
        group = items[start:end]
        if len({d.commit for d in group}) > 1:
            group.sort(key=lambda d: depth(d.commit), reverse=True)
        ordered.extend(group)
        start = end
    return ordered


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


def _manifest_at(tree: Any, path: str) -> ReleaseManifest | None:
    from tradai_release.manifest import check_manifest, parse_manifest_name
    from tradai_release.repo import load_document

    if not tree.exists(path):
        return None
    document = load_document(tree, path)
    problems = check_manifest(Path(path).parent.name, parse_manifest_name(Path(path).name) or 0, document)
    if problems:
        raise problems[0]
    return ReleaseManifest.from_dict(document.data, path=path)


def _restore_model(editor: ManifestEditor, path: str, strategy: str, now: ModelPin, then: ModelPin,
                   changes: list[PinChange]) -> None:
    field = f"strategies.{strategy}.model"
    if now.production != then.production:
        editor.set_production(strategy, then.production)
        changes.append(PinChange(path, f"{field}.production", now.production, then.production))
    if now.staging != then.staging:
        editor.set_staging(strategy, then.staging)
        changes.append(PinChange(path, f"{field}.staging", now.staging, then.staging))
    if now.keep_production != then.keep_production:
        editor.set_keep_production(strategy, list(then.keep_production))
        changes.append(PinChange(path, f"{field}.keep_production", list(now.keep_production) or None,
                                 list(then.keep_production) or None))
    if now.override != then.override:
        editor.set_override(strategy, then.override.approved_by if then.override else None,
                            then.override.reason if then.override else None)
        changes.append(PinChange(path, f"{field}.override",
                                 now.override.approved_by if now.override else None,
                                 then.override.approved_by if then.override else None))


@dataclass(frozen=True)
class TagRestore:
    """The hub tag a profile pins after one strategy rolls back: the source's tag (``sha256`` known),
    or ``tag`` spliced from the current tag with the strategy's files of the source tag."""

    now: ReleaseManifest
    then: ReleaseManifest
    tag: str
    sha256: str | None


def _strategy_tags(
    settings: Settings, moves: Sequence[tuple[str, ReleaseManifest, ReleaseManifest]], strategy: str
) -> dict[str, TagRestore]:
    """For each profile whose hub tag differs from the source's, the tag that runs ``strategy``'s source
    binaries beside the profile's other strategies' current ones; profiles where the strategy's files
    are the same in both tags are left out. Reads only."""
    from tradai_release.hub import ModelHub

    hub = ModelHub.from_settings(settings)
    found: dict[str, TagRestore] = {}

    def split(files: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        mine = {rel: e for rel, e in files.items() if rel.split("/", 1)[0] == strategy}
        return mine, {rel: e for rel, e in files.items() if rel not in mine}

    for path, now, then in moves:
        current = split(hub.read_tag(now.artifacts.tag, expected_sha256=now.artifacts.sha256).files)
        source = split(hub.read_tag(then.artifacts.tag, expected_sha256=then.artifacts.sha256).files)
        if current[0] == source[0]:
            continue
        if current[1] == source[1]:
            found[path] = TagRestore(now, then, then.artifacts.tag, then.artifacts.sha256)
        else:
            name = f"{now.artifacts.tag}_{strategy}-from-{then.artifacts.tag}"[:128]
            found[path] = TagRestore(now, then, name, None)
    return found


def _make_tag(settings: Settings, restore: TagRestore, strategy: str) -> tuple[str, str]:
    """``restore``'s tag and sha256, splicing it in the hub (no upload; re-runs reuse it) when needed."""
    if restore.sha256 is not None:
        return restore.tag, restore.sha256
    from tradai_release.hub import ModelHub

    now, then = restore.now, restore.then
    sha = ModelHub.from_settings(settings).splice(
        now.artifacts.tag, then.artifacts.tag, [strategy], tag=restore.tag,
        source_sha256=now.artifacts.sha256,
        message=f"{now.environment} profile {now.profile}: {strategy} rolled back to {then.artifacts.tag}",
    )
    return restore.tag, sha


def rollback(
    settings: Settings,
    env: str,
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
    tradai.yaml. ``commit`` commits on a new branch ``rollback/<env>...-to-<short>``.
    """
    from tradai_release.engine.promote import choose_profiles, read_manifest, strategy_hash
    from tradai_release.repo import GitTree
    from tradai_release.strategy import tradai_path

    root = Path(repo if repo is not None else settings.repo)
    settings.backends(env)
    if to and deployment:
        raise InputError("rollback", "--to", "give --to REF or --deployment ID, not both")
    if strategy:
        strategy_hash(root, strategy)  # an unknown strategy is one line before git or backends are read
    if str(profile or "").lower() == "all":
        profile = None
    explicit = profile not in (None, "")
    if explicit:
        paths = choose_profiles(root, env, str(profile), strategy or "", "rollback")
    else:
        paths = [manifest_path(env, p) for p in PROFILES]
    deployment_id: str | None = None
    if to:
        ref = to
        source = resolve_commit(root, to)
    else:
        if deployments is None:
            from tradai_release.engine.deployments import list_deployments

            deployments = list_deployments(settings, env)
        chosen = (find_deployment(deployments, env, deployment) if deployment
                  else previous_deployment(newest_first(deployments, root), env))
        deployment_id = chosen.deployment_id
        ref = f"deployment {deployment_id}"
        source = resolve_commit(root, chosen.commit)
    head = head_commit(root)

    changes: list[PinChange] = []
    editors: dict[str, ManifestEditor] = {}
    profiles: list[int] = []
    moves: list[tuple[str, ReleaseManifest, ReleaseManifest]] = []  # --strategy: the hub tag may differ
    hashes: dict[str, str | None] = {}

    def current_hash(name: str) -> str | None:
        if name not in hashes:
            try:
                hashes[name] = strategy_hash(root, name)
            except InputError:
                hashes[name] = None  # a removed or broken strategy: its pin stays as it was
        return hashes[name]

    with GitTree(root, source) as tree:
        for path in paths:
            then = _manifest_at(tree, path)
            exists = (root / path).is_file()
            if not explicit and strategy and (
                then is None or not exists or strategy not in then.strategies
                or strategy not in read_manifest(root, path).strategies
            ):
                continue  # this profile does not pin the strategy on both sides: nothing of it to restore
            if then is None or not exists:
                if explicit:
                    missing = "the current tree" if not exists else f"{ref} ({source[:12]})"
                    raise InputError(path, "(file)", f"not in {missing}; nothing to restore")
                continue
            now = read_manifest(root, path)
            editor = ManifestEditor((root / path).read_text(encoding="utf-8"), path)
            before = len(changes)
            names = [strategy] if strategy else list(then.strategies)
            for name in names:
                if name not in then.strategies:
                    raise InputError(path, f"strategies.{name}", f"not pinned at {ref} ({source[:12]})")
                if name not in now.strategies:
                    if strategy:
                        raise InputError(path, f"strategies.{name}", "not pinned in the current manifest")
                    pin = then.strategies[name]
                    editor.add_strategy(name, current_hash(name) or pin.config, pin.model.production,
                                        model_name=pin.model.name, staging=pin.model.staging)
                    changes.append(PinChange(path, f"strategies.{name}", None, f"v{pin.model.production}"))
                    continue
                _restore_model(editor, path, name, now.strategies[name].model, then.strategies[name].model,
                               changes)
            if not strategy:
                for name in now.strategies:
                    if name not in then.strategies:
                        editor.remove_strategy(name)
                        changes.append(PinChange(path, f"strategies.{name}",
                                                 f"v{now.strategies[name].model.production}", None))
                if (now.artifacts.tag, now.artifacts.sha256) != (then.artifacts.tag, then.artifacts.sha256):
                    editor.set_artifacts(then.artifacts.tag, then.artifacts.sha256)
                    changes.append(PinChange(path, "artifacts.tag", now.artifacts.tag, then.artifacts.tag))
            elif now.artifacts != then.artifacts:
                moves.append((path, now, then))
            if len(changes) > before:
                profiles.append(now.profile)
            editors[path] = editor

    tags = _strategy_tags(settings, moves, str(strategy)) if moves else {}
    if not changes and not tags:
        what = f"{strategy} in " if strategy else ""
        where = f"profile {profile}" if explicit else "every profile"
        raise InputError("rollback", "--to" if to else "--deployment",
                         f"nothing to roll back: {what}{env} {where} already pins what {ref} "
                         f"({source[:12]}) pinned")
    # Only now, when the edit will be written: restoring one strategy's binaries may splice a hub tag.
    for path, restore in tags.items():
        tag, sha = _make_tag(settings, restore, str(strategy))
        editors[path].set_artifacts(tag, sha)
        changes.append(PinChange(path, "artifacts.tag", restore.now.artifacts.tag, tag))
        if restore.now.profile not in profiles:
            profiles.append(restore.now.profile)
    profiles.sort()
    texts = {path: editor.text() for path, editor in editors.items() if editor.changed}
    for path, text in texts.items():
        check_edited((root / path).read_text(encoding="utf-8"), text, root / path, path)

    scope = f" profile {profile}" if explicit else ""
    scope += f" {strategy}" if strategy else ""
    message = "\n".join([
        f"Roll back {env}{scope} to {source[:12]} ({ref})",
        "",
        f"from {head[:12]} to {source[:12]}",
        *(change.describe() for change in changes),
    ]) + "\n"
    result = Rollback(env=env, ref=ref, source=source, deployment_id=deployment_id, head=head,
                      profiles=tuple(profiles), strategy=strategy or None, changes=tuple(changes),
                      message=message)
    branch = f"rollback/{env}" + (f"-p{profile}" if explicit else "")
    branch += f"-{strategy}" if strategy else ""
    clean = [tradai_path(strategy)] if strategy else []
    written = write_edits(settings, root, env, texts, message, commit=commit, plan=plan,
                          branch=f"{branch}-to-{source[:7]}", clean=clean)
    return replace(result, branch=written.branch, commit=written.commit, plan=written.plan,
                   plan_error=written.plan_error)

