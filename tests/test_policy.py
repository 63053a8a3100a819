"""Promotion policy: soak and freeze windows of releases/policy.yaml, the manifest's policy_override, and
their verdicts in plan, validate and apply, with an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from engine_helpers import (
    PROFILES,
    TAG,
    commit_all,
    counted_from_settings,
    embedded_repo,
    git,
    make_repo,
    policy_problems,
    push_tag,
    seed_registry,
    set_production,
)
from tradai_release.core.clock import parse_stamp, stamp, use_clock
from tradai_release.core.errors import PolicyBlocked
from tradai_release.core.settings import Settings
from tradai_release.engine.admission import judged_plan
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.deployments import list_deployments
from tradai_release.engine.history import history
from tradai_release.engine.release_table import ReleaseTable
from tradai_release.hub.hub import ModelHub
from tradai_release.render.plan import render_markdown, render_text
from tradai_release.repository.environments import environment
from tradai_release.repository.manifest_edit import edit_manifest
from tradai_release.repository.policy import Freeze, Policy, Weekly, Window
from tradai_release.repository.tree import ReleaseTree
from tradai_release.workflows.validate import validate_repository

TAG2 = "v20261102"


def utc(text: str) -> datetime:
    return parse_stamp(text)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# --- the rules as values ---------------------------------------------------------------------------------


def freeze_of(rule: dict) -> Freeze:
    return Policy.from_dict({"freeze": {"prod": rule}}).freeze["prod"]


def test_freeze_dates_are_whole_utc_days_and_ranges_carry_their_reason() -> None:
    freeze = freeze_of(
        {
            "dates": ["2026-12-25"],
            "ranges": [{"from": "2026-12-16T18:00:00Z", "to": "2026-12-16T20:30:00Z", "reason": "FOMC"}],
        }
    )
    christmas = freeze.window_at(utc("2026-12-25T13:00:00Z"))
    assert christmas == Window(
        utc("2026-12-25T00:00:00Z"), utc("2026-12-26T00:00:00Z"), "frozen date 2026-12-25"
    )
    assert freeze.window_at(utc("2026-12-24T23:59:59Z")) is None
    assert freeze.window_at(utc("2026-12-26T00:00:00Z")) is None
    fomc = freeze.window_at(utc("2026-12-16T20:29:59Z"))
    assert fomc is not None and fomc.reason == "FOMC" and fomc.end == utc("2026-12-16T20:30:00Z")
    assert freeze.window_at(utc("2026-12-16T20:30:00Z")) is None


def test_weekly_window_follows_the_time_zone_across_dst_changes() -> None:
    weekend = freeze_of(
        {"weekly": [{"days": ["sat", "sun"], "from": "00:00", "to": "24:00", "tz": "America/New_York"}]}
    )
    # New York leaves DST on Sunday 2026-11-01: the weekend starts at 04:00Z (EDT) and ends at 05:00Z (EST).
    late_sunday = weekend.window_at(utc("2026-11-02T04:30:00Z"))  # Sunday 23:30 EST
    assert late_sunday is not None
    assert (late_sunday.start, late_sunday.end) == (utc("2026-10-31T04:00:00Z"), utc("2026-11-02T05:00:00Z"))
    assert weekend.window_at(utc("2026-10-31T03:30:00Z")) is None  # Friday 23:30 EDT
    assert weekend.window_at(utc("2026-11-02T05:00:00Z")) is None
    # ... and enters DST on Sunday 2026-03-08: Monday 00:30 EDT is 04:30Z, after the window (an EST
    # offset kept all weekend would still call it Sunday 23:30).
    assert weekend.window_at(utc("2026-03-09T04:30:00Z")) is None
    spring = weekend.window_at(utc("2026-03-09T03:59:00Z"))
    assert (
        spring is not None
        and spring.start == utc("2026-03-07T05:00:00Z")
        and spring.end == utc("2026-03-09T04:00:00Z")
    )
    market = Weekly(days=(0, 1, 2, 3, 4), start=9 * 60 + 30, end=16 * 60, tz="America/New_York")
    assert market.window_at(utc("2026-07-01T13:30:00Z")) is not None  # 09:30 EDT
    assert market.window_at(utc("2026-12-01T13:30:00Z")) is None  # 08:30 EST


def test_adjoining_windows_clear_only_when_the_last_one_ends() -> None:
    freeze = freeze_of(
        {
            "dates": ["2026-12-24", "2026-12-25"],
            "ranges": [
                {"from": "2026-12-26T00:00:00Z", "to": "2026-12-26T06:00:00Z", "reason": "year-end batch"}
            ],
        }
    )
    window = freeze.window_at(utc("2026-12-24T10:00:00Z"))
    assert window is not None and window.end == utc("2026-12-26T06:00:00Z")
    assert "year-end batch" in window.reason and "frozen date 2026-12-25" in window.reason


POLICY = """environments: [dev, staging, prod]
soak:
  prod: {after: staging, hours: 24}
freeze:
  prod:
    dates: [2026-12-25]
    ranges: [{from: "2026-12-16T18:00:00Z", to: "2026-12-16T20:30:00Z", reason: FOMC}]
    weekly: [{days: [sat, sun], from: "00:00", to: "24:00", tz: America/New_York}]
"""


def test_the_issue_policy_is_valid_and_absent_keys_keep_todays_behaviour(tmp_path: Path) -> None:
    assert policy_problems(tmp_path, POLICY) == []
    policy = Policy.from_dict({"environments": ["dev", "staging", "prod"]})
    assert not any(policy.has_rules(env) for env in policy.environments)
    loaded = ReleaseTree.work(tmp_path / "repo").policy()
    assert loaded.soak["prod"].after == "staging" and loaded.freeze["prod"].dates == (date(2026, 12, 25),)


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        (
            "soak:\n  staging: {after: prod, hours: 24}\n",
            "soak.staging.after: 'prod' does not come before 'staging' in the promotion order (earlier: dev)",
        ),
        ("soak:\n  qa: {after: dev, hours: 1}\n", "soak.qa: 'qa' is not a declared environment"),
        ("soak:\n  prod: {after: staging, hours: 0}\n", "soak.prod.hours"),
        (
            "freeze:\n  prod:\n    weekly: [{days: [sat], from: '00:00', to: '24:00', tz: Mars/Olympus}]\n",
            "freeze.prod.weekly[0].tz: 'Mars/Olympus' is not an IANA time zone",
        ),
        (
            "freeze:\n  prod:\n    weekly: [{days: [funday], from: '00:00', to: '24:00', tz: UTC}]\n",
            "freeze.prod.weekly[0].days[0]",
        ),
        (
            "freeze:\n  prod:\n    weekly: [{days: [sat], from: '10:00', to: '09:00', tz: UTC}]\n",
            "freeze.prod.weekly[0].to: 09:00 is not after from 10:00",
        ),
        (
            "freeze:\n  prod:\n    ranges: [{from: '2026-12-16T20:00:00Z', to: '2026-12-16T18:00:00Z'}]\n",
            "freeze.prod.ranges[0].to: is not after from",
        ),
        (
            "freeze:\n  prod:\n    ranges: [{from: '2026-12-16T20:00:00', to: '2026-12-16T21:00:00Z'}]\n",
            "freeze.prod.ranges[0].from: '2026-12-16T20:00:00' is not an ISO 8601 instant (no UTC offset",
        ),
        ("freeze:\n  prod:\n    dates: [2026-02-30]\n", "freeze.prod.dates[0]: '2026-02-30' is not a date"),
    ],
)
def test_a_wrong_policy_is_one_line_naming_the_field(tmp_path: Path, policy: str, problem: str) -> None:
    problems = policy_problems(tmp_path, policy)
    assert len(problems) == 1 and problems[0].startswith("releases/policy.yaml"), problems
    assert problem in problems[0]


# --- soak on the embedded default ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> Iterator[Clock]:
    moment = Clock(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    with use_clock(moment):
        yield moment


def edit_env(repo: Path, env: str, strategy: str, version: int, tag: tuple[str, str]) -> None:
    set_production(repo, env, strategy, version)
    for profile in PROFILES:
        with edit_manifest(repo / "releases" / env / f"profile-{profile}.yaml") as editor:
            editor.set_artifacts(*tag)


def test_soak_refuses_until_the_same_files_ran_long_enough_in_staging(tmp_path: Path, clock: Clock) -> None:
    settings = Settings()
    hub = ModelHub.from_settings(settings)
    tag1 = (TAG, push_tag(hub, tmp_path))
    tag2 = (TAG2, push_tag(hub, tmp_path, TAG2, seed=1))
    seed_registry(settings, "staging", 3)
    seed_registry(settings, "prod", 2)
    repo = make_repo(tmp_path, *tag1)
    settings = Settings(repo=repo)
    assert apply_env(ReleaseContext.open(settings, "staging")).outcome == "succeeded"
    assert (
        apply_env(ReleaseContext.open(settings, "prod")).outcome == "succeeded"
    )  # before the policy: nothing judged

    (repo / "releases" / "policy.yaml").write_text("soak:\n  prod: {after: staging, hours: 24}\n")
    commit_all(repo, "prod soaks 24 h in staging")
    clock.now += timedelta(hours=2)
    edit_env(repo, "staging", "PascalStrategy", 3, tag2)
    commit_all(repo, "staging runs PascalStrategy v3 from the new tag")
    assert apply_env(ReleaseContext.open(settings, "staging")).outcome == "succeeded"
    entered = parse_stamp(str(list_deployments(settings, environment(settings, "staging"))[0].finished_at))

    # The prod registry numbers the same files v2 (staging: v3): the soak compares files, not numbers.
    clock.now += timedelta(hours=8)
    edit_env(repo, "prod", "PascalStrategy", 2, tag2)
    promoted = commit_all(repo, "prod runs PascalStrategy v2 from the new tag")
    plan = judged_plan(ReleaseContext.open(settings, "prod"))
    soaks = [v for v in plan.verdicts if v.rule == "soak"]
    assert [v.subject for v in soaks] == [f"PascalStrategy profile {p} v2" for p in PROFILES]
    clears = stamp(entered + timedelta(hours=24))
    assert all(v.blocked and v.clears_at == clears for v in soaks)
    assert soaks[0].message.startswith(
        "blocked: PascalStrategy's files in tag v20261102 have run in staging since"
    )
    assert soaks[0].message.endswith(f"8.0 h of 24 h (clears at {clears})")

    report = validate_repository(repo, offline=False, settings=settings)
    blocked = [str(p) for p in report.problems if "blocked:" in p.reason]
    assert blocked[0] == (
        f"releases/prod/profile-1.yaml: strategies.PascalStrategy.model.production: {soaks[0].message}"
    )
    assert len(blocked) == len(PROFILES)
    markdown = render_markdown(plan, report)
    assert "**Blocked by policy**: apply refuses this plan now." in markdown
    assert "### Policy (`releases/policy.yaml`)" in markdown and f"| {clears} |" in markdown
    assert "soak PascalStrategy profile 1 v2: blocked:" in render_text(plan)

    counted = counted_from_settings(settings, "prod")
    before = len(list_deployments(settings, environment(settings, "prod")))
    with pytest.raises(PolicyBlocked) as refused:  # apply judges again: validate is not trusted
        apply_env(ReleaseContext.open(settings, "prod", backends=counted.backends))
    message = str(refused.value)
    assert message.startswith(
        "releases/prod/profile-1.yaml: strategies.PascalStrategy.model.production: blocked:"
    )
    assert message.endswith("(and 4 more blocked)") and "\n" not in message
    assert counted.writes == 0 and len(list_deployments(settings, environment(settings, "prod"))) == before

    clock.now = entered + timedelta(hours=24)
    plan = judged_plan(ReleaseContext.open(settings, "prod"))
    assert plan.verdicts and not plan.blocked
    assert plan.verdicts[0].message.startswith(
        "ok: PascalStrategy's files in tag v20261102 ran 24.0 h in staging"
    )
    assert apply_env(ReleaseContext.open(settings, "prod")).outcome == "succeeded"

    # Back to v1 (its files ran in staging only two hours): a rollback to a former Production version
    # needs no soak.
    clock.now += timedelta(hours=1)
    git(repo, "revert", "--no-edit", promoted)
    plan = judged_plan(ReleaseContext.open(settings, "prod"))
    assert [v.message for v in plan.verdicts][:1] == [
        "ok: v1 was Production before: a rollback needs no soak"
    ]
    assert apply_env(ReleaseContext.open(settings, "prod")).outcome == "succeeded"


def test_soak_refuses_files_that_never_ran_in_staging(tmp_path: Path, clock: Clock) -> None:
    settings = Settings()
    hub = ModelHub.from_settings(settings)
    tag1 = (TAG, push_tag(hub, tmp_path))
    tag2 = (TAG2, push_tag(hub, tmp_path, TAG2, seed=1))
    seed_registry(settings, "staging", 2)
    seed_registry(settings, "prod", 2)
    repo = make_repo(tmp_path, *tag1)
    (repo / "releases" / "policy.yaml").write_text("soak:\n  prod: {after: staging, hours: 1}\n")
    commit_all(repo, "prod soaks 1 h in staging")
    settings = Settings(repo=repo)
    apply_env(ReleaseContext.open(settings, "staging"))
    clock.now += timedelta(days=3)
    set_production(repo, "prod", "PascalStrategy", 2, profiles=(1,))
    with edit_manifest(repo / "releases" / "prod" / "profile-1.yaml") as editor:
        editor.set_artifacts(*tag2)  # TAG2 never ran in staging
    commit_all(repo, "prod profile 1 straight to the new tag")
    plan = judged_plan(ReleaseContext.open(settings, "prod"))
    soak = next(v for v in plan.verdicts if v.subject == "PascalStrategy profile 1 v2")
    assert soak.message == (
        "blocked: PascalStrategy's files in tag v20261102 never ran in staging (soak 1 h) "
        "(time alone does not clear it)"
    )
    # the first apply of prod pins KeplerStrategy v1 in tag TAG elsewhere, which ran 3 days in staging
    kepler = next(v for v in plan.verdicts if v.subject == "KeplerStrategy profile 3 v1")
    assert kepler.allowed and "ran 72.0 h in staging" in kepler.message


# --- freeze, the override, and apply ---------------------------------------------------------------------


FREEZE = """freeze:
  dev:
    dates: [2026-11-05]
    weekly: [{days: [sat, sun], from: "00:00", to: "24:00", tz: America/New_York, reason: weekend}]
"""


def test_freeze_by_weekly_window_and_date_and_an_override_that_counts_once(
    tmp_path: Path, clock: Clock
) -> None:
    repo = embedded_repo(tmp_path, 2)
    (repo / "releases" / "policy.yaml").write_text(FREEZE)
    commit_all(repo, "dev is frozen on weekends (New York) and on 2026-11-05")
    settings = Settings(repo=repo)

    clock.now = utc("2026-11-02T04:30:00Z")  # Sunday 23:30 in New York, the day DST ended
    counted = counted_from_settings(settings, "dev")
    with pytest.raises(
        PolicyBlocked,
        match=r"^releases/policy.yaml: freeze.dev: blocked: dev is frozen \(weekend\) "
        r"from 2026-10-31T04:00:00\+00:00 to 2026-11-02T05:00:00\+00:00 "
        r"\(clears at 2026-11-02T05:00:00\+00:00\)$",
    ):
        apply_env(ReleaseContext.open(settings, "dev", backends=counted.backends))
    assert counted.writes == 0 and list_deployments(settings, environment(settings, "dev")) == []
    clock.now = utc("2026-11-02T05:00:00Z")
    plan = judged_plan(ReleaseContext.open(settings, "dev"))
    assert [v.message for v in plan.verdicts] == ["ok: dev is not frozen at 2026-11-02T05:00:00+00:00"]
    assert apply_env(ReleaseContext.open(settings, "dev")).outcome == "succeeded"

    set_production(repo, "dev", "PascalStrategy", 2)
    commit_all(repo, "PascalStrategy v2 in dev")
    clock.now = utc("2026-11-05T15:00:00Z")
    with pytest.raises(
        PolicyBlocked, match=r"frozen date 2026-11-05.*\(clears at 2026-11-06T00:00:00\+00:00\)$"
    ):
        apply_env(ReleaseContext.open(settings, "dev"))

    with edit_manifest(repo / "releases" / "dev" / "profile-1.yaml") as editor:
        editor.set_policy_override("alice", "hotfix: v1 mis-sizes orders")
    commit_all(repo, "emergency: PascalStrategy v2 through the freeze")
    plan = judged_plan(ReleaseContext.open(settings, "dev"))
    assert plan.verdicts[0].override is not None and not plan.blocked
    assert plan.verdicts[0].message.startswith(
        "overridden by alice (hotfix: v1 mis-sizes orders): dev is frozen"
    )
    assert "| freeze | `dev` | overridden |" in render_markdown(plan)
    done = apply_env(ReleaseContext.open(settings, "dev"))
    assert done.outcome == "succeeded"
    assert done.overrides == (
        {
            "path": "releases/dev/profile-1.yaml",
            "approved_by": "alice",
            "reason": "hotfix: v1 mis-sizes orders",
            "rules": ["freeze dev"],
        },
    )
    recorded = list_deployments(settings, environment(settings, "dev"))[0]
    assert recorded.overrides == done.overrides
    note = next(
        r.note
        for r in history(ReleaseContext.open(settings, "dev")).rows
        if r.deployment.deployment_id == done.deployment_id
    )
    assert note == "policy override (freeze dev) by alice: hotfix: v1 mis-sizes orders"

    # The approval was for that change: the next one, the same day, is frozen again.
    set_production(repo, "dev", "PascalStrategy", 1)
    commit_all(repo, "PascalStrategy back to v1")
    with pytest.raises(PolicyBlocked, match=r"freeze\.dev: blocked"):
        apply_env(ReleaseContext.open(settings, "dev"))
    clock.now = utc("2026-11-06T00:00:00Z")
    assert apply_env(ReleaseContext.open(settings, "dev")).outcome == "succeeded"


def test_tasks_show_the_verdict_and_apply_refuses_with_one_line(tmp_path: Path) -> None:
    import os
    import subprocess

    from forked_cli import run_invoke

    repo = embedded_repo(tmp_path, 1)
    (repo / "releases" / "policy.yaml").write_text(
        "freeze:\n  dev:\n"
        '    ranges: [{from: "2000-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z", reason: audit}]\n'
    )
    commit_all(repo, "dev frozen for the audit")
    root = Path(__file__).resolve().parent.parent

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_invoke(["--search-root", str(root), *args], repo, {**os.environ, "TRADAI_REPO": str(repo)})

    line = (
        "error: releases/policy.yaml: freeze.dev: blocked: dev is frozen (audit) "
        "from 2000-01-01T00:00:00+00:00 to 2100-01-01T00:00:00+00:00 (clears at 2100-01-01T00:00:00+00:00)"
    )
    done = run("apply", "--env", "dev")
    assert done.returncode == 1 and done.stderr.splitlines() == [line]
    done = run("plan", "--env", "dev", "--format", "markdown")
    assert done.returncode == 0 and "| freeze | `dev` | **blocked** |" in done.stdout
    done = run("validate")
    assert done.returncode == 1 and line in done.stderr.splitlines()
    assert list_deployments(Settings(repo=repo), environment(Settings(repo=repo), "dev")) == []


def test_a_freeze_that_starts_while_waiting_for_the_lease_refuses_without_a_record(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judged allowed before the lease; under it the plan changed (another apply) and the freeze began:
    refused, the lease released, no deployment or journal written."""
    import tradai_release.engine.apply as apply_module
    from tradai_release.engine.lock import acquire

    repo = embedded_repo(tmp_path, 1)
    (repo / "releases" / "policy.yaml").write_text(FREEZE)
    commit_all(repo, "dev is frozen on 2026-11-05")
    settings = Settings(repo=repo)
    clock.now = utc("2026-11-04T23:59:00Z")

    real_build = apply_module.build_plan
    calls: list[int] = []

    def build_plan(desired, live):  # type: ignore[no-untyped-def]
        plan = real_build(desired, live)
        calls.append(1)
        if len(calls) == 2:  # under the lease: another apply did part of it, and midnight passed
            clock.now = utc("2026-11-05T00:01:00Z")
            return replace(plan, actions=plan.actions[1:])
        return plan

    monkeypatch.setattr(apply_module, "build_plan", build_plan)
    counted = counted_from_settings(settings, "dev")
    with pytest.raises(PolicyBlocked, match=r"^releases/policy.yaml: freeze.dev: blocked: dev is frozen"):
        apply_env(ReleaseContext.open(settings, "dev", backends=counted.backends))
    assert len(calls) == 2
    assert list_deployments(settings, environment(settings, "dev")) == []
    assert ReleaseTable(counted.backends.releases, "dev").journals() == {}
    releases = counted.backends.releases
    lease = acquire(releases, "dev", holder="next", deployment_id="d-next", commit="x", seconds=60)
    lease.release()  # the refused apply left the lease free
