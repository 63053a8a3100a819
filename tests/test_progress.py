"""Live verification: the policy's waves and verification rules, the bots' live readings in the release-state
table, and progress's decision on recorded readings with an injected clock (hold, promote wave by wave,
roll back a breach, a silent bot)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine_helpers import policy_problems
from tradai_release.domain.live import CHALLENGER, PRODUCTION, LiveResult, profit_since
from tradai_release.domain.progress import HOLD, PROMOTE, ROLLBACK, Cell, Decision, Facts, decide
from tradai_release.engine.release_table import RELEASE_TTL_ATTRIBUTE, ReleaseTable
from tradai_release.repository.policy import Policy
from tradai_release.repository.tree import ReleaseTree
from tradai_release.repository.verification import Verification, parse_duration
from tradai_release.stores import open_table

POLICY = """environments: [dev, staging, prod]
waves:
  prod: [[1], [2, 3], [4, 5]]
verification:
  prod:
    soak: 24h
    rollback: merge
    challenger: {min_hours: 24, min_trades: 5, profit: 0.01, max_drawdown: 0.02}
    production: {max_drawdown: 0.10, profit: 0.05}
"""

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
STRATEGY = "PascalStrategy"


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


# --- the policy --------------------------------------------------------------------------------------------


def test_the_issue_policy_is_valid_and_reads_as_values(tmp_path: Path) -> None:
    assert policy_problems(tmp_path, POLICY) == []
    policy = ReleaseTree.work(tmp_path / "repo").policy()
    assert policy.waves == {"prod": ((1,), (2, 3), (4, 5))}
    rules = policy.verification["prod"]
    assert rules.soak_hours == 24 and rules.merges_rollbacks and rules.stale_after_hours == 1
    assert rules.challenger.min_hours == 24 and rules.challenger.min_trades == 5
    assert rules.challenger.margins == {"profit": 0.01, "max_drawdown": 0.02}
    assert rules.production.limits == {"max_drawdown": 0.10, "profit": 0.05}
    assert Policy.from_dict({}).waves == {} and Policy.from_dict({}).verification == {}


@pytest.mark.parametrize(("text", "expected"), [("30m", 0.5), ("24h", 24), ("2d", 48), ("1d12h", 36)])
def test_durations(text: str, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        (POLICY.replace("[4, 5]]", "[4, 5, 9]]"),
         "waves.prod[2]: profile 9 does not exist in prod (releases/prod/ has: 1, 2, 3, 4, 5)"),
        (POLICY.replace("[4, 5]]", "[4, 5, 2]]"),
         "waves.prod[2]: profile 2 is named twice (already in wave 2)"),
        (POLICY.replace("[4, 5]]", "[4]]"), "waves.prod: profile 5 of prod is in no wave"),
        (POLICY.replace("soak: 24h", "soak: 24 hours"),
         "verification.prod.soak: '24 hours' is not a duration (write 30m, 24h, 2d or 1d12h)"),
        (POLICY.replace("soak: 24h", "soak: 24"), "verification.prod.soak: 24 is not a duration"),
        (POLICY.replace("profit: 0.01,", "sharpe: 0.5,"),
         "verification.prod.challenger.sharpe: unknown metric 'sharpe' (known: min_hours, min_trades, profit,"
         " max_drawdown)"),
        (POLICY.replace("max_drawdown: 0.10", "win_rate: 0.4"),
         "verification.prod.production.win_rate: unknown metric 'win_rate'"),
        (POLICY.replace("  prod: [[1]", "  qa: [[1]"), "waves.qa: 'qa' is not a declared environment"),
        (POLICY.replace("verification:\n  prod:", "verification:\n  staging:"),
         "waves.prod: no verification.prod rules"),
        (POLICY.replace("rollback: merge", "rollback: auto"), "verification.prod.rollback"),
    ],
)
def test_a_wrong_wave_or_rule_is_one_line_naming_the_field(tmp_path: Path, policy: str, problem: str) -> None:
    problems = policy_problems(tmp_path, policy)
    assert len(problems) == 1 and problems[0].startswith("releases/policy.yaml"), problems
    assert problem in problems[0], problems


# --- live readings in the release-state table --------------------------------------------------------------


def reading(profile: int, role: str, at: datetime, *, version: int, since: datetime, trades: int = 10,
            profit: float = 0.02, drawdown: float = 0.01, answered: bool = True) -> LiveResult:
    return LiveResult(
        env="prod", profile=profile, strategy=STRATEGY, role=role, observed_at=at, answered=answered,
        model_version=version if answered else None, files_sha256="ab" * 32 if answered else "",
        trades=trades if answered else 0, closed_profit=profit if answered else 0.0,
        max_drawdown=drawdown if answered else 0.0, open_trades=1 if answered else 0,
        since=since if answered else None, heartbeat=at if answered else None,
        error="" if answered else "connection refused",
    )


def test_readings_round_trip_through_the_table_with_a_ttl_and_a_silent_bot_is_not_zero_profit(
    tmp_path: Path,
) -> None:
    table = open_table(f"sqlite:///{tmp_path / 'state.db'}", table="releases", partition_key="pk",
                       sort_key="sk")
    releases = ReleaseTable(table, "prod")
    first = reading(3, PRODUCTION, hours(1), version=1, since=T0, profit=0.0123456789)
    silent = reading(3, CHALLENGER, hours(2), version=2, since=T0, answered=False)
    later = replace(first, observed_at=hours(3), closed_profit=0.02, trades=12)
    for item in (later, silent, first):
        releases.record_live(item)
    releases.record_live(replace(first, strategy="KeplerStrategy"))
    read = releases.live_results(STRATEGY)
    assert [r.observed_at for r in read] == [hours(1), hours(2), hours(3)]
    assert read[0] == replace(first, closed_profit=0.01234568)  # kept to 8 decimals
    assert read[1] == silent and read[1].model_version is None and read[1].error == "connection refused"
    assert read[1].bot == "PascalStrategy-p3-challenger" and read[0].bot == "PascalStrategy-p3"
    assert len(releases.live_results()) == 4
    items = table.query("prod", prefix="live#PascalStrategy#p3#production#")
    assert [int(i[RELEASE_TTL_ATTRIBUTE]) for i in items] == [
        int((hours(n) + timedelta(days=30)).timestamp()) for n in (1, 3)]


def test_profit_over_a_window_is_the_difference_of_the_cumulative_figures() -> None:
    readings = [reading(1, PRODUCTION, hours(n), version=1, since=T0, profit=p)
                for n, p in ((1, 0.01), (5, 0.03), (9, 0.07))]
    assert profit_since(readings, hours(5)) == pytest.approx(0.04)
    assert profit_since(readings, hours(6)) == pytest.approx(0.04)  # the last reading not after the start
    assert profit_since(readings, hours(0.5)) is None  # nothing reaches back that far ...
    assert profit_since(readings, hours(0.5), within_hours=1) == pytest.approx(0.06)  # ... but one period
    restarted = [*readings, reading(1, PRODUCTION, hours(12), version=1, since=hours(10), profit=0.005)]
    assert profit_since(restarted, hours(5)) == 0.005  # a bot started after the window's start: all of it


# --- progress's decision -----------------------------------------------------------------------------------


RULES = Verification.from_dict({
    "soak": "24h", "rollback": "merge",
    "challenger": {"min_hours": 24, "min_trades": 5, "profit": 0.01, "max_drawdown": 0.02},
    "production": {"max_drawdown": 0.10, "profit": 0.05},
})
WAVES = ((1,), (2, 3), (4, 5))


def facts(cells: dict[int, Cell], readings: list[LiveResult], now: datetime) -> Facts:
    return Facts("prod", STRATEGY, tuple(cells[p] for p in sorted(cells)), WAVES, RULES, tuple(readings), now,
                 expected_per_hour={1: 0.001, 2: 0.001})


def champion_readings(profiles: range | tuple[int, ...], until: float, *, version: int = 1,
                      since: datetime = T0 - timedelta(hours=50)) -> list[LiveResult]:
    """Hourly readings of production bots making 0.001 an hour since they started (50 h before T0), as the
    backtest expects of v1."""
    return [reading(p, PRODUCTION, hours(n), version=version, since=since, profit=0.05 + 0.001 * n,
                    drawdown=0.03, trades=40 + n) for p in profiles for n in range(0, int(until) + 1)]


def test_a_challenger_that_meets_the_rules_is_promoted_wave_by_wave_each_after_its_soak() -> None:
    cells = {p: Cell(p, production=1, staging=2 if p == 1 else None, previous=None) for p in range(1, 6)}
    readings = champion_readings(range(1, 6), 25)

    def challenger_at(n: float, trades: int = 8) -> LiveResult:
        return reading(1, CHALLENGER, hours(n), version=2, since=T0, profit=0.0015 * n, drawdown=0.02,
                       trades=trades)

    # 12 h in: too soon, and it says when it can next move
    early = decide(facts(cells, [*readings[:13], challenger_at(12)], hours(12)))
    assert early.kind == HOLD and early.next_check_at == hours(24)
    assert "has run 12.0 h of the 24 h it needs" in early.reason
    # 25 h in, but too few trades
    few = decide(facts(cells, [*readings, challenger_at(25, trades=3)], hours(25)))
    assert few.kind == HOLD and "closed 3 trades of the 5 it needs" in few.reason
    # 25 h in, enough trades, better than the champion over the same window: wave 1
    first = decide(facts(cells, [*readings, challenger_at(25)], hours(25)))
    assert first.kind == PROMOTE and first.profiles == (1,) and first.version == 2 and first.wave == 1
    assert any("closed profit 0.0375 vs champion v1 0.0250 over the same window" in e for e in first.evidence)
    assert first.key == "prod-PascalStrategy-promote-v2-p1"
    again = decide(facts(cells, [*readings, challenger_at(25)], hours(25)))
    assert again == first  # the same evidence, the same move

    # p1 now runs v2 in production (the promotion merged and applied at 26 h)
    cells[1] = Cell(1, production=2, staging=None, previous=1)
    live = [reading(1, PRODUCTION, hours(n), version=2, since=hours(26), profit=0.001 * (n - 26),
                    drawdown=0.02) for n in range(27, 80)]
    others = champion_readings(range(2, 6), 80)

    def at(n: float) -> Decision:
        return decide(facts(cells, [r for r in [*others, *live] if r.observed_at <= hours(n)], hours(n)))

    soaking = at(40)
    assert soaking.kind == HOLD and soaking.next_check_at == hours(50)
    assert "wave 1 has run v2 14.0 h of its 24 h soak" in soaking.reason
    second = at(50)
    assert (second.kind, second.profiles, second.wave) == (PROMOTE, (2, 3), 2)
    assert "wave 1 soaked 24 h" in second.evidence

    cells[2], cells[3] = Cell(2, 2, previous=1), Cell(3, 2, previous=1)
    live += [reading(p, PRODUCTION, hours(n), version=2, since=hours(52), profit=0.001 * (n - 52),
                     drawdown=0.02) for p in (2, 3) for n in range(53, 80)]
    others = champion_readings((4, 5), 80)
    assert at(60).kind == HOLD and at(60).next_check_at == hours(76)
    third = at(76)
    assert (third.kind, third.profiles, third.wave) == (PROMOTE, (4, 5), 3)

    for p in (4, 5):
        cells[p] = Cell(p, 2, previous=1)
    done = decide(facts(cells, [], hours(80)))
    assert done.reason == "no challenger: every profile runs the newest version"


def test_a_challenger_that_trades_worse_than_the_champion_is_held_with_the_reason() -> None:
    cells = {p: Cell(p, production=1, staging=2 if p == 1 else None) for p in range(1, 6)}
    worse = reading(1, CHALLENGER, hours(30), version=2, since=T0, profit=0.004, drawdown=0.07, trades=9)
    held = decide(facts(cells, [*champion_readings(range(1, 6), 30), worse], hours(30)))
    assert held.kind == HOLD and not held.moves
    assert held.reason.startswith("the challenger v2 trades worse than the champion: ")
    assert "closed profit 0.0040 vs champion v1 0.0300 over the same window (margin 0.0100)" in held.reason
    assert "max_drawdown 0.0700 vs champion v1 0.0300 (margin 0.0200)" in held.reason


def test_a_production_pin_that_breaches_the_drawdown_limit_is_rolled_back_with_the_figures() -> None:
    cells = {p: Cell(p, production=2 if p == 1 else 1, previous=1 if p == 1 else None) for p in range(1, 6)}
    breaching = reading(1, PRODUCTION, hours(10), version=2, since=T0, profit=0.02, drawdown=0.134)
    outcome = decide(facts(cells, [*champion_readings(range(2, 6), 10), breaching], hours(10)))
    assert (outcome.kind, outcome.profiles, outcome.from_version, outcome.version) == (ROLLBACK, (1,), 2, 1)
    assert outcome.reason == "v2 breached the production rules in p1: back to v1"
    assert outcome.evidence == ("PascalStrategy-p1 v2: max_drawdown 0.1340 over 10.0 h (limit 0.1000)",)
    assert outcome.key == "prod-PascalStrategy-rollback-v2-to-v1-p1"
    # profit far below the backtest's expectation is a breach too
    losing = replace(breaching, max_drawdown=0.05, closed_profit=-0.08)
    lost = decide(facts(cells, [losing], hours(10)))
    assert lost.kind == ROLLBACK and lost.evidence == (
        "PascalStrategy-p1 v2: closed profit -0.0800 over 10.0 h, backtest expects 0.0100 (band 0.0500, "
        "floor -0.0400)",)
    # with no earlier version there is nothing to roll back to: held, and said
    stuck = decide(facts({**cells, 1: Cell(1, production=2)}, [breaching], hours(10)))
    assert stuck.kind == HOLD and "no earlier version to roll back to" in stuck.evidence[0]


def test_a_bot_that_stops_answering_holds_promotion_and_is_reported() -> None:
    cells = {p: Cell(p, production=1, staging=2 if p == 1 else None) for p in range(1, 6)}
    champions = champion_readings(range(1, 6), 30)
    silent = reading(1, CHALLENGER, hours(30), version=2, since=T0, answered=False)
    held = decide(facts(cells, [*champions, silent], hours(30)))
    assert held.kind == HOLD and held.unanswered == (
        "PascalStrategy-p1-challenger: did not answer at 2026-12-02T06:00:00+00:00 (connection refused)",)
    # a reading older than stale_after (1 h) is a bot that stopped answering too
    old = reading(1, CHALLENGER, hours(27), version=2, since=T0, profit=0.05)
    stale = decide(facts(cells, [*champions, old], hours(30)))
    assert stale.kind == HOLD and stale.unanswered == (
        "PascalStrategy-p1-challenger: last answered at 2026-12-02T03:00:00+00:00",)
    # and a silent production bot in a reached wave holds the next wave
    cells[1] = Cell(1, production=2, previous=1)
    gone = [reading(1, PRODUCTION, hours(60), version=2, since=hours(26), answered=False)]
    waiting = decide(facts(cells, [*champion_readings(range(2, 6), 60), *gone], hours(60)))
    assert waiting.kind == HOLD and waiting.unanswered[0].startswith("PascalStrategy-p1: did not answer")


# --- invoke progress: each move a commit on its own branch -------------------------------------------------


@pytest.fixture
def release_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This project's releases/ in a git repository with the issue's policy and PascalStrategy v2 staged in
    prod p1; a SQLite registry holding v1 (Production) and a better v2, both with held-out windows of
    100 h (total_profit 0.1: 0.001 an hour expected)."""
    from helpers import copy_project_repo, git
    from registry_helpers import training_result
    from tradai_release.core.equity import EquityCurve
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.registry.lifecycle import ENTERED_TAG
    from tradai_release.registry.registrar import ModelRegistrar
    from tradai_release.repository.manifest_edit import edit_manifest

    repo = copy_project_repo(tmp_path / "repo", "initial")
    (repo / "releases" / "policy.yaml").write_text(POLICY)
    with edit_manifest(repo / "releases" / "prod" / "profile-1.yaml") as editor:
        editor.set_staging(STRATEGY, 2)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "waves and rules; PascalStrategy v2 dry-runs in prod p1")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = MlflowRegistry(uri, str(tmp_path / "artifacts"))
    registrar = ModelRegistrar(registry)
    window = EquityCurve((1.0, 1.1), 100, "2026-10-01T00:00:00+00:00", "2026-10-05T04:00:00+00:00")
    for metrics in ({"total_profit": 0.1}, {"total_profit": 0.12, "sharpe_ratio": 2.0}):
        result = replace(training_result(tmp_path, STRATEGY, **metrics), equity=window)
        registrar.register(result, r2_tag="v20261101")
    for other in ("KeplerStrategy", "MyStrategy"):
        registrar.register(training_result(tmp_path, other), r2_tag="v20261101")
    registry.set_version_tag(STRATEGY, 1, ENTERED_TAG, "2026-11-01T00:00:00+00:00")  # v1 has been live
    monkeypatch.setenv("TRADAI_REPO", str(repo))
    monkeypatch.setenv("TRADAI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TRADAI_MLFLOW_TRACKING_URI", uri)
    return repo


def test_progress_writes_each_move_on_its_branch_once_with_the_evidence_and_records_the_decision(
    release_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import git
    from tradai_release.core.settings import Settings
    from tradai_release.engine.context import ReleaseContext
    from tradai_release.workflows.progress import progress

    settings = Settings()
    champions = champion_readings(range(1, 6), 25)
    challenger = reading(1, CHALLENGER, hours(25), version=2, since=T0, profit=0.04, drawdown=0.02, trades=9)
    head = git(release_repo, "rev-parse", "HEAD")

    def run(now: datetime, readings: list[LiveResult], commit: bool = True) -> dict:
        ctx = ReleaseContext.open(settings, "prod")
        return progress(ctx, strategy=STRATEGY, commit=commit, now=now, readings=readings).to_dict()

    early = run(hours(12), [*champions[:13], reading(1, CHALLENGER, hours(12), version=2, since=T0)])
    assert [d["decision"] for d in early["decisions"]] == ["hold"] and early["written"] == []

    first = run(hours(25), [*champions, challenger])
    (decision,) = first["decisions"]
    branch = "progress/prod-PascalStrategy-promote-v2-p1"
    assert decision["decision"] == "promote" and decision["branch"] == branch and decision["written"]
    assert git(release_repo, "rev-parse", "HEAD") == head  # the checked-out branch stays where it was
    assert git(release_repo, "diff", "--name-only", head, branch).split() == ["releases/prod/profile-1.yaml"]
    shown = git(release_repo, "show", f"{branch}:releases/prod/profile-1.yaml")
    assert "production: 2" in shown
    message = git(release_repo, "log", "-1", "--format=%B", branch)
    assert message.startswith("Promote PascalStrategy v2 to Production in prod profile 1")
    assert "progress (wave 1): v2 into wave 1 (p1)" in message
    assert "- closed profit 0.0400 vs champion v1 0.0250 over the same window (margin 0.0100)" in message
    assert "comparator, profile 1, champion v1: promote (challenger beats champion" in message
    assert "strategies.PascalStrategy.model.staging 2 -> (none)" in message  # the challenger is champion

    again = run(hours(25), [*champions, challenger])
    (repeat,) = again["decisions"]
    assert repeat["proposed_before"] and not repeat["written"] and again["written"] == []
    assert git(release_repo, "branch", "--list", "progress/*").split() == [branch]

    from tradai_release.engine.release_table import ReleaseTable

    table = ReleaseTable(ReleaseContext.open(settings, "prod").backends.releases, "prod")
    recorded = table.decisions(STRATEGY)
    assert [r["decision"] for r in recorded] == ["promote", "hold"]  # newest first; the repeat is not new

    # history shows them beside the deployments
    from tradai_release.engine.history import history
    from tradai_release.render.history import render_history

    found = history(ReleaseContext.open(settings, "prod"), strategy=STRATEGY)
    assert [d["decision"] for d in found.decisions] == ["promote", "hold"]
    assert found.to_dict()["decisions"][0]["key"] == "prod-PascalStrategy-promote-v2-p1"
    render_history(found)
    shown = capsys.readouterr().out
    assert "progress's decisions, newest first" in shown and f"progress/{found.decisions[0]['key']}" in shown
    assert history(ReleaseContext.open(settings, "prod"), since="2027-01-01T00:00:00Z").decisions == ()


def test_progress_rolls_back_a_breaching_pin_by_commit_and_names_the_figures(release_repo: Path) -> None:
    from helpers import git
    from tradai_release.core.settings import Settings
    from tradai_release.engine.context import ReleaseContext
    from tradai_release.repository.manifest_edit import edit_manifest
    from tradai_release.workflows.progress import progress

    with edit_manifest(release_repo / "releases" / "prod" / "profile-1.yaml") as editor:
        editor.set_production(STRATEGY, 2)
        editor.set_staging(STRATEGY, None)
    git(release_repo, "commit", "-q", "-am", "PascalStrategy v2 in prod p1 (wave 1)")
    breach = reading(1, PRODUCTION, hours(30), version=2, since=hours(26), profit=0.0, drawdown=0.134)
    report = progress(ReleaseContext.open(Settings(), "prod"), strategy=STRATEGY, commit=True, now=hours(30),
                      readings=[breach, *champion_readings(range(2, 6), 30)])
    (outcome,) = report.outcomes
    assert outcome.decision.kind == ROLLBACK and outcome.merge  # the policy merges rollbacks at once
    branch = "progress/prod-PascalStrategy-rollback-v2-to-v1-p1"
    assert outcome.branch == branch and outcome.commit is not None
    assert "production: 1" in git(release_repo, "show", f"{branch}:releases/prod/profile-1.yaml")
    message = git(release_repo, "log", "-1", "--format=%B", branch)
    assert message.startswith("Promote PascalStrategy v1 to Production in prod profile 1")
    assert "profile 1: v1 was Production before (rollback)" in message
    assert "progress (rollback): v2 breached the production rules in p1: back to v1" in message
    assert "- PascalStrategy-p1 v2: max_drawdown 0.1340 over 4.0 h (limit 0.1000)" in message


def test_the_progress_task_prints_json_and_refuses_an_environment_without_waves(release_repo: Path) -> None:
    import json

    from helpers import invoke

    done = invoke(release_repo, "progress", "--env", "prod", "--json")
    assert done.returncode == 0, done.stderr
    decided = json.loads(done.stdout)
    assert {d["strategy"]: d["decision"] for d in decided["decisions"]} == {
        "KeplerStrategy": "hold", "MyStrategy": "hold", "PascalStrategy": "hold"}
    pascal = next(d for d in decided["decisions"] if d["strategy"] == STRATEGY)
    assert pascal["reason"].startswith("a bot does not answer: PascalStrategy-p1-challenger: no reading")
    refused = invoke(release_repo, "progress", "--env", "staging")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: releases/policy.yaml: waves.staging: not declared: progress moves a model wave by wave")


def test_the_board_shows_the_wave_the_verification_state_and_the_live_equity_chart(
    release_repo: Path, tmp_path: Path
) -> None:
    from tradai_release.core.settings import Settings
    from tradai_release.engine.context import ReleaseContext
    from tradai_release.report.board import read_board
    from tradai_release.report.site import write_site

    settings = Settings(deploy_target="none")  # the board of pins and records; no bot target to read
    table = ReleaseTable(ReleaseContext.open(settings, "prod").backends.releases, "prod")
    for item in [*champion_readings((1,), 25),
                 *(reading(1, CHALLENGER, hours(n), version=2, since=T0, profit=0.0016 * n, drawdown=0.02,
                           trades=n // 3) for n in range(1, 26))]:
        table.record_live(item)
    board = read_board(settings, ["prod"])
    (entry,) = board.strategies[STRATEGY]
    verification = entry.verification
    assert verification is not None and verification.state == "challenger" and verification.candidate == 2
    assert verification.waves == ((1,), (2, 3), (4, 5)) and verification.profile == 1
    # the board judges as progress would now (its clock: the readings are from the past, so they are stale)
    assert verification.decision.kind == HOLD and "does not answer" in verification.decision.reason
    assert len(verification.challenger) == 25 and len(verification.champion) == 26
    assert verification.expected_per_hour == pytest.approx(0.12 / 100)  # v2: 0.12 over a 100 h window
    write_site(board, tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    cell = index.split('id="cell-prod-1-PascalStrategy"', 1)[1].split("</td>", 1)[0]
    assert 'data-field="challenger"' in cell and "challenger v2 (dry run)" in cell
    page = (tmp_path / "site" / "strategies" / f"{STRATEGY}.html").read_text()
    assert 'data-verification="challenger"' in page and "Live verification" in page
    assert "waves [p1] → [p2, p3] → [p4, p5]" in page
    chart = re.search(r'<img src="\.\./(charts/[0-9a-f]+\.svg)"[^>]*data-chart="live"', page)
    assert chart is not None
    svg = (tmp_path / "site" / chart.group(1)).read_text()
    assert "live dry-run equity" in svg and "v2 challenger" in svg and "v1 champion" in svg
    assert "v2 backtest expectation" in svg
    kepler = board.strategies["KeplerStrategy"][0].verification
    assert kepler is not None and kepler.state == "done"
