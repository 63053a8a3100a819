"""Policy verdicts on a plan: may it be applied now, by ``releases/policy.yaml``'s soak and freeze rules?

Plan shows the verdicts, validate reports the blocked ones (so the pull request's plan says why and
when it clears) and apply refuses a blocked plan before it writes anything. See docs/architecture.md §15.

* **freeze**: a non-empty plan of a frozen environment is blocked until the window (and every window
  adjoining it) ends;
* **soak**: a production pin moving to a version that was never Production there must have run, with
  the same files (the strategy's ``<S>/`` file digests in the two hub tags, compared with
  ``registrar.content_sha256``), for the soak's hours in the ``after`` environment, from that
  environment's deployment records (:mod:`tradai_release.engine.history`); a rollback is exempt;
* a manifest's ``policy_override: {approved_by, reason}`` lets a blocked rule through when it is new
  in the commit being applied (absent or different at the last applied commit): an approval counts
  for the change it was given for, not for every later one. Freeze: a new override in any manifest of
  the environment; soak: in the manifest of the profile whose pin moves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.clock import parse_stamp, stamp, utc_now
from tradai_release.core.errors import HubError, InputError, PolicyBlocked
from tradai_release.engine.deployments import SUCCEEDED
from tradai_release.repository.policy import POLICY_PATH, PolicyVerdict, Soak

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.domain.gate import ModelChange
    from tradai_release.engine.context import ReleaseContext
    from tradai_release.engine.history.timeline import Timeline
    from tradai_release.engine.plan import Plan
    from tradai_release.hub import ModelHub
    from tradai_release.repository.manifest import Override, ReleaseManifest
    from tradai_release.stores import KeyValueTable


@dataclass(frozen=True)
class _Span:
    """A stretch during which one profile of the ``after`` environment ran files with ``digest``."""

    digest: str
    start: datetime
    end: datetime | None  # None: still running

    def hours(self, now: datetime) -> float:
        return ((self.end or now) - self.start).total_seconds() / 3600


def judge_plan(
    settings: Settings,
    plan: Plan,
    *,
    repo: Path | str,
    now: datetime | None = None,
    hub: ModelHub | None = None,
    tables: Mapping[str, KeyValueTable] | None = None,
) -> tuple[PolicyVerdict, ...]:
    """Every policy verdict on applying ``plan`` at ``now`` (default: the clock); empty when the policy
    has no rule for the plan's environment or there is nothing to apply.

    Reads: the manifests of the last applied commit (git objects) when a manifest carries an override;
    for a soak, one deployment query of the ``after`` environment (plus its journal only when an apply
    there failed) and one manifest read per distinct hub tag.
    """
    desired = plan.desired
    if desired is None or plan.empty or not desired.policy.has_rules(plan.env):
        return ()
    policy = desired.policy
    moment = now or utc_now()
    overrides = new_overrides(repo, plan.env, desired.manifests, plan.applied_commit)
    verdicts: list[PolicyVerdict] = []
    freeze = policy.freeze.get(plan.env)
    if freeze is not None:
        window = freeze.window_at(moment)
        subject, where = plan.env, f"freeze.{plan.env}"
        if window is None:
            verdicts.append(
                PolicyVerdict(
                    "freeze",
                    subject,
                    True,
                    f"{plan.env} is not frozen at {stamp(moment)}",
                    POLICY_PATH,
                    where,
                )
            )
        else:
            reason = (
                f"{plan.env} is frozen ({window.reason}) from {stamp(window.start)} to {stamp(window.end)}"
            )
            approval = next(iter(overrides.values()), None)
            verdicts.append(
                PolicyVerdict(
                    "freeze",
                    subject,
                    approval is not None,
                    reason,
                    POLICY_PATH,
                    where,
                    clears_at=stamp(window.end),
                    override=_approval(approval),
                )
            )
    soak = policy.soak.get(plan.env)
    if soak is not None:
        judge = _SoakJudge(settings, soak, repo, hub, tables, moment)
        for change in plan.model_changes:
            verdict = judge.verdict(plan, change, overrides)
            if verdict is not None:
                verdicts.append(verdict)
    return tuple(verdicts)


def judged_plan(context: ReleaseContext) -> Plan:
    """``plan_env``'s plan with the policy's verdicts on applying it now (what plan and validate show)."""
    from tradai_release.engine.plan import plan_env

    plan = plan_env(context)
    return replace(
        plan, verdicts=judge_plan(context.settings, plan, repo=context.root, hub=context.backends.hub)
    )


def _approval(found: tuple[str, Override] | None) -> dict[str, str] | None:
    if found is None:
        return None
    return {"approved_by": found[1].approved_by, "reason": found[1].reason, "path": found[0]}


def new_overrides(
    repo: Path | str, env: str, manifests: Sequence[ReleaseManifest], applied_commit: str | None
) -> dict[int, tuple[str, Override]]:
    """Profile -> (manifest path, override) of each ``policy_override`` not already in the manifest of
    the last applied commit (read from git objects)."""
    found: dict[int, tuple[str, Override]] = {}
    for manifest in manifests:
        if manifest.policy_override is not None:
            found[manifest.profile] = (manifest.path, manifest.policy_override)
    if not found or applied_commit is None:
        return found
    from tradai_release.repository.tree import ReleaseTree

    with ReleaseTree.at(repo, applied_commit) as tree:
        for profile in list(found):
            then = tree.manifest_or_none(env, profile)
            if then is not None and then.policy_override == found[profile][1]:
                del found[profile]
    return found


class _SoakJudge:
    """The soak of one environment: the ``after`` environment's history, read once, and tag digests."""

    def __init__(
        self,
        settings: Settings,
        soak: Soak,
        repo: Path | str,
        hub: ModelHub | None,
        tables: Mapping[str, KeyValueTable] | None,
        now: datetime,
    ) -> None:
        self.settings = settings
        self.soak = soak
        self.repo = repo
        self._hub = hub
        self.tables = tables or {}
        self.now = now
        self._timeline: Timeline | None = None
        self._digests: dict[tuple[str, str, str], str | None] = {}
        self._spans: dict[str, list[_Span]] = {}

    @property
    def hub(self) -> ModelHub:
        if self._hub is None:
            from tradai_release.hub import ModelHub

            self._hub = ModelHub.from_settings(self.settings)
        return self._hub

    def timeline(self) -> Timeline:
        if self._timeline is None:
            from tradai_release.engine.history.timeline import Timeline
            from tradai_release.engine.release_table import open_release_table
            from tradai_release.repository.environments import environment

            after = self.soak.after
            table = self.tables.get(after) or open_release_table(
                self.settings, environment(self.settings, after)
            )
            self._timeline = Timeline(table, after, self.repo)
        return self._timeline

    def digest(self, tag: str, sha256: str, strategy: str) -> str | None:
        """The content digest of ``strategy``'s files in ``tag`` (None: unreadable tag, or no such files)."""
        key = (tag, sha256, strategy)
        if key not in self._digests:
            from tradai_release.engine.state import strategy_digest

            try:
                manifest = self.hub.read_tag(tag, expected_sha256=sha256)
            except (HubError, InputError):
                self._digests[key] = None
            else:
                self._digests[key] = strategy_digest(manifest, strategy)
        return self._digests[key]

    def spans(self, strategy: str) -> list[_Span]:
        """Each stretch of time one profile of the ``after`` environment ran some files of ``strategy``
        (succeeded applies only: a failed apply's partial moves do not count as having run)."""
        if strategy in self._spans:
            return self._spans[strategy]
        spans: list[_Span] = []
        current: dict[int, _Span] = {}
        for deployment in self.timeline().deployments:
            if deployment.outcome != SUCCEEDED or not deployment.finished_at:
                continue
            when = parse_stamp(deployment.finished_at)
            pins = {
                key[0]: pin for key, pin in self.timeline().pins(deployment).items() if key[1] == strategy
            }
            for profile in sorted(set(current) | set(pins)):
                pin = pins.get(profile)
                digest = self.digest(pin.tag, pin.sha256, strategy) if pin is not None else None
                held = current.get(profile)
                if held is not None and held.digest == digest:
                    continue
                if held is not None:
                    spans.append(_Span(held.digest, held.start, when))
                    del current[profile]
                if digest is not None:
                    current[profile] = _Span(digest, when, None)
        spans += current.values()
        self._spans[strategy] = spans
        return spans

    def verdict(
        self, plan: Plan, change: ModelChange, overrides: Mapping[int, tuple[str, Override]]
    ) -> PolicyVerdict | None:
        if change.alias != f"p{change.profile}":
            return None  # a staging (dry-run) pin enters nothing
        assert plan.desired is not None
        manifest = next(m for m in plan.desired.manifests if m.profile == change.profile)
        strategy = next(name for name, pin in manifest.strategies.items() if pin.model.name == change.model)
        subject = f"{strategy} profile {change.profile} v{change.challenger}"
        where = f"strategies.{strategy}.model.production"
        after, hours = self.soak.after, self.soak.hours

        def verdict(allowed: bool, reason: str, clears: datetime | None = None) -> PolicyVerdict:
            approval = None if allowed else _approval(overrides.get(change.profile))
            return PolicyVerdict(
                "soak",
                subject,
                allowed or approval is not None,
                reason,
                manifest.path,
                where,
                clears_at=stamp(clears) if clears is not None else None,
                override=approval,
            )

        if change.rollback:
            return verdict(True, f"v{change.challenger} was Production before: a rollback needs no soak")
        digest = self.digest(manifest.artifacts.tag, manifest.artifacts.sha256, strategy)
        if digest is None:
            return verdict(
                False, f"tag {manifest.artifacts.tag} holds no readable {strategy}/ files to compare"
            )
        same = [span for span in self.spans(strategy) if span.digest == digest and span.start <= self.now]
        files = f"{strategy}'s files in tag {manifest.artifacts.tag}"
        if not same:
            return verdict(False, f"{files} never ran in {after} (soak {hours:g} h)")
        longest = max(same, key=lambda span: span.hours(self.now))
        if longest.hours(self.now) >= hours:
            until = f"to {stamp(longest.end)}" if longest.end is not None else "on"
            return verdict(
                True,
                f"{files} ran {longest.hours(self.now):.1f} h in {after} "
                f"(from {stamp(longest.start)} {until}; soak {hours:g} h)",
            )
        running = [span for span in same if span.end is None]
        if running:
            first = min(running, key=lambda span: span.start)
            return verdict(
                False,
                f"{files} have run in {after} since {stamp(first.start)}: "
                f"{first.hours(self.now):.1f} h of {hours:g} h",
                first.start + timedelta(hours=hours),
            )
        return verdict(
            False,
            f"{files} ran only {longest.hours(self.now):.1f} h of {hours:g} h in {after} "
            "and run there no more",
        )


def refuse_blocked(env: str, verdicts: Sequence[PolicyVerdict]) -> None:
    """Raise PolicyBlocked (one ``error:`` line naming the first blocked rule) when a verdict blocks."""
    blocked = [verdict.problem() for verdict in verdicts if verdict.blocked]
    if blocked:
        raise PolicyBlocked(env, blocked)


def override_records(verdicts: Sequence[PolicyVerdict]) -> tuple[dict[str, Any], ...]:
    """The overrides that let blocked rules through, for the deployment record: who, why, which rules."""
    records: dict[tuple[str, str, str], dict[str, Any]] = {}
    for verdict in verdicts:
        if verdict.override is None:
            continue
        who = verdict.override
        key = (who.get("path", ""), who["approved_by"], who["reason"])
        entry = records.setdefault(
            key, {"path": key[0], "approved_by": key[1], "reason": key[2], "rules": []}
        )
        entry["rules"].append(f"{verdict.rule} {verdict.subject}")
    return tuple(records.values())
