"""Plan renderers: a Markdown snapshot of a deterministic plan, and the text form."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from fake_registry import FakeRegistry
from helpers import mermaid_blocks, parse_xychart
from tradai_release.configs.entities import ConfigStatus, ConfigVersion
from tradai_release.core.equity import EQUITY_TAG, EquityCurve
from tradai_release.engine.plan import build_plan
from tradai_release.engine.release_table import AppliedState
from tradai_release.engine.state import DesiredConfig, DesiredState, LiveState
from tradai_release.hub.pointers import ProfilePointer
from tradai_release.render.plan import render_deployment, render_markdown, render_text
from tradai_release.repository.manifest import ReleaseManifest
from tradai_release.workflows.validate import ValidationReport

SNAPSHOT = Path(__file__).parent / "snapshots" / "engine_plan.md"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
COMMIT = "c0ffee" + "0" * 34
OLD = "a" * 64
NEW = "b" * 64
SHA = "5" * 64


def manifest(profile: int, production: int) -> ReleaseManifest:
    return ReleaseManifest.from_dict(
        {
            "profile": profile,
            "environment": "prod",
            "description": "",
            "artifacts": {"tag": "v20261120", "sha256": SHA},
            "strategies": {"PascalStrategy": {"config": NEW, "model": {"production": production}}},
        },
        path=f"releases/prod/profile-{profile}.yaml",
    )


def scenario() -> tuple[DesiredState, LiveState]:
    """Prod after one apply: profile 3 now promotes v2, the config changed, an alias was moved by hand."""
    registry = FakeRegistry()
    good = {
        "total_profit": 100.0,
        "sharpe_ratio": 1.2,
        "max_drawdown": 0.1,
        "win_rate": 0.5,
        "total_trades": 40.0,
    }
    # held-out equity curves as training tags them (the plan comment charts them)
    older = EquityCurve(tuple(1 + 0.001 * i * (1 + (i % 7) / 10) for i in range(120)), 119)
    newer = EquityCurve(tuple(1 + 0.0015 * i for i in range(120)), 119)
    registry.add_version("PascalStrategy", metrics=good, stage="Production",
                         tags={"lifecycle": "Production", EQUITY_TAG: older.to_tag()})
    registry.add_version("PascalStrategy", metrics={**good, "total_profit": 150.0, "sharpe_ratio": 1.5},
                         tags={EQUITY_TAG: newer.to_tag()})
    registry.set_alias("PascalStrategy", "p1", 2)  # moved by hand: drift
    registry.set_alias("PascalStrategy", "p3", 1)
    desired = DesiredState(
        env="prod",
        commit=COMMIT,
        manifests=(manifest(1, 1), manifest(3, 2)),
        configs={"PascalStrategy": DesiredConfig("PascalStrategy", NEW, {"strategy": {}})},
    )
    active = ConfigVersion("PascalStrategy", "v1-aaaaaaaa", OLD, {}, ConfigStatus.ACTIVE, 1, NOW)
    pointer = ProfilePointer("prod", 1, "v20261120", SHA, "", None)
    applied = AppliedState(
        commit="d" * 40,
        deployment_id="d1",
        applied_at="",
        configs={"PascalStrategy": OLD},
        aliases={"PascalStrategy": {"p1": 1, "p3": 1}},
        lifecycle={"PascalStrategy": {"1": "Production"}},
        pointers={1: ("v20261120", SHA), 3: ("v20261120", SHA)},
    )
    live = LiveState(
        active={"PascalStrategy": active},
        by_hash={"PascalStrategy": None},
        versions=registry.versions(["PascalStrategy"]),
        pointers={1: pointer, 3: ProfilePointer("prod", 3, "v20261120", SHA, "", None)},
        applied=applied,
    )
    return desired, live


def test_markdown_plan_matches_the_snapshot() -> None:
    plan = build_plan(*scenario(), now=NOW)
    report = ValidationReport(label="HEAD", offline=False, strategies=3, manifests=15, problems=())
    text = render_markdown(plan, report)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":  # a deliberate re-record, reviewed in the diff
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.exists(), (
        f"{SNAPSHOT} is missing: record it on purpose with "
        "UPDATE_SNAPSHOTS=1 python -m pytest tests/test_engine_render.py, then review and commit it"
    )
    assert text == SNAPSHOT.read_text(encoding="utf-8")
    assert "| total_profit | 100 | 150 | > 0 | pass |" in text
    assert "**Drift**" in text and "### Profile 3" in text and "comparator: **promote**" in text
    (block,) = mermaid_blocks(text)  # the champion-vs-challenger equity chart, under the metric table
    assert len(parse_xychart(block)["series"]) == 2  # type: ignore[arg-type]


def test_text_plan_lists_drift_then_numbered_actions() -> None:
    plan = build_plan(*scenario(), now=NOW)
    text = render_text(plan)
    lines = text.splitlines()
    assert lines[0] == f"plan for prod at {COMMIT[:12]} (last applied: {'d' * 12})"
    assert any(line.startswith("  ! alias PascalStrategy@p1") for line in lines)
    assert any(line.lstrip().startswith("1. verify_artifacts") for line in lines)  # read-only check first
    assert any(line.lstrip().startswith("2. upload_config") for line in lines)
    assert "PascalStrategy p3: v1 -> v2 (promote)" in text
    assert text.endswith("run `invoke apply --env prod` to apply\n")


def in_sync_scenario() -> tuple[DesiredState, LiveState]:
    """Prod exactly as the last apply of this commit left it: profile 1 runs v1 with the committed config."""
    registry = FakeRegistry()
    registry.add_version("PascalStrategy", tags={"lifecycle": "Production"}, stage="Production")
    registry.set_alias("PascalStrategy", "p1", 1)
    desired = DesiredState(
        env="prod",
        commit=COMMIT,
        manifests=(manifest(1, 1),),
        configs={"PascalStrategy": DesiredConfig("PascalStrategy", NEW, {"strategy": {}})},
    )
    applied = AppliedState(
        commit=COMMIT,
        deployment_id="d1",
        applied_at="",
        configs={"PascalStrategy": NEW},
        aliases={"PascalStrategy": {"p1": 1}},
        lifecycle={"PascalStrategy": {"1": "Production"}},
        pointers={1: ("v20261120", SHA)},
    )
    active = ConfigVersion("PascalStrategy", "v2-bbbbbbbb", NEW, {}, ConfigStatus.ACTIVE, 2, NOW)
    live = LiveState(
        active={"PascalStrategy": active},
        by_hash={},
        versions=registry.versions(["PascalStrategy"]),
        pointers={1: ProfilePointer("prod", 1, "v20261120", SHA, "", "d1")},
        applied=applied,
    )
    return desired, live


def test_an_in_sync_plan_says_so() -> None:
    plan = build_plan(*in_sync_scenario(), now=NOW)
    assert plan.empty and plan.drift == (), plan.to_dict()
    assert "prod is in sync with c0ffee000000: nothing to do" in render_text(plan)
    assert "In sync: nothing to do." in render_markdown(plan)


def test_deployment_text() -> None:
    from tradai_release.engine.release_table import Deployment

    noop = Deployment("dev", COMMIT, None, "noop", "ci", "t", "2026-11-23T12:00:00+00:00")
    assert "nothing to do (nothing written)" in render_deployment(noop)
    done = Deployment(
        "dev",
        COMMIT,
        "d1",
        "succeeded",
        "ci",
        "t",
        "s",
        "f",
        actions=({"kind": "set_alias", "target": "X@p1", "status": "done"},),
    )
    assert "[done] set_alias X@p1" in render_deployment(done)
