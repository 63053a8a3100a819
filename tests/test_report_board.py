"""The release board's rules (cell state, since when, the charted versions) and the site writer, without
backends: hand-built plans, deployments and boards. The demo's board in a browser: test_report_browser.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradai_release.core.equity import EQUITY_TAG, EquityCurve
from tradai_release.core.errors import InputError
from tradai_release.domain.gate import ModelChange
from tradai_release.domain.monitor.scores import FEATURE, PsiRow, Thresholds
from tradai_release.engine import actions as A
from tradai_release.engine.drift import Drift
from tradai_release.engine.release_table import Deployment, RecordedCheck
from tradai_release.registry.adapter import ModelVersionInfo
from tradai_release.registry.comparator import ModelComparator
from tradai_release.report import board as rules
from tradai_release.report.board import Board, Cell, EnvBoard, Moved, StrategyEnv, VersionRow
from tradai_release.report.site import MARKER, _check_out, page_name, write_site

GOOD = {"total_profit": 0.3, "sharpe_ratio": 2.0, "max_drawdown": 0.1, "win_rate": 0.5, "total_trades": 40.0}
BAD = {**GOOD, "total_profit": -0.1}
BETTER = {**GOOD, "total_profit": 0.4, "sharpe_ratio": 2.5}


def change(challenger: int, champion: int | None, metrics: dict[str, float], *, rollback: bool = False,
           alias: str = "p3") -> ModelChange:
    return ModelChange(
        profile=3, model="S", alias=alias, champion=champion, challenger=challenger,
        champion_metrics=GOOD, challenger_metrics=metrics, rollback=rollback,
        comparison=ModelComparator().compare(metrics, GOOD if champion else None),
    )


def test_a_production_move_the_comparator_refuses_is_blocked_only_where_the_gate_applies() -> None:
    worse = change(2, 1, BAD)
    assert worse.comparison.decision != "promote"
    assert worse.blocked(gated=True, overridden=False)
    assert not worse.blocked(gated=False, overridden=False)  # dev and staging are not gated
    assert not worse.blocked(gated=True, overridden=True)  # the manifest records an override
    assert not change(2, 1, BAD, rollback=True).blocked(gated=True, overridden=False)
    assert not change(2, 1, BAD, alias="p3-staging").blocked(gated=True, overridden=False)
    assert not change(1, 2, BAD).blocked(gated=True, overridden=False)  # back to an older one
    assert change(2, 1, BETTER).comparison.decision == "promote"
    assert not change(2, 1, BETTER).blocked(gated=True, overridden=False)


def test_which_actions_and_drift_concern_a_cell() -> None:
    touches = rules._action_touches

    def alias(profile: int) -> A.SetAlias:
        return A.SetAlias(target=f"S@p{profile}", reason="", model="S", alias=f"p{profile}", profile=profile,
                          version=2, previous=1)

    def deploy(strategy: str) -> A.DeployBot:
        return A.DeployBot(target=f"prod/{strategy}-p3", reason="", bot=f"{strategy}-p3", profile=3,
                           strategy=strategy, deployed_on="ecs", content_sha256=None, config_hash="h",
                           config_id=None, model=strategy, version=1, tag="t", sha256="s", image=None,
                           previous=None)

    assert touches(alias(3), 3, "S", "S", 1)
    assert not touches(alias(2), 3, "S", "S", 1)
    activate = A.ActivateConfig(target="S", reason="", strategy="S", config_hash="h", config_id=None,
                                previous=None)
    assert touches(activate, 3, "S", "S", 1)
    verify = A.VerifyArtifacts(target="hub/t", reason="", tag="t", sha256="s", profile_list=(1, 3))
    assert touches(verify, 3, "S", "S", 1)
    assert touches(deploy("S"), 3, "S", "S", 1)
    assert not touches(deploy("T"), 3, "S", "S", 1)
    archive = A.ArchiveVersion(target="S/v0", reason="", model="S", version=0, from_="Production",
                               to="Archived", tags={}, stage=None)
    assert not touches(archive, 3, "S", "S", 1)
    record = A.RecordDeployment(target="prod", reason="", commit="c", previous=None)
    assert not touches(record, 3, "S", "S", 1)
    drifted = rules._drift_touches
    assert drifted(Drift("alias", "S@p3", 1, 2, ""), "prod", 3, "S", "S", 1)
    assert drifted(Drift("pointer", "profile-3", [], [], ""), "prod", 3, "S", "S", 1)
    assert drifted(Drift("deployment", "S-p3", "", "", ""), "prod", 3, "S", "S", 1)
    assert drifted(Drift("lifecycle", "S/v1", "", "", ""), "prod", 3, "S", "S", 1)
    assert not drifted(Drift("lifecycle", "S/v2", "", "", ""), "prod", 3, "S", "S", 1)
    assert not drifted(Drift("alias", "S@p31", 1, 2, ""), "prod", 3, "S", "S", 1)


def deployment(number: int, outcome: str, *targets: tuple[str, str]) -> Deployment:
    return Deployment(
        env="prod", commit=f"{number:040d}", deployment_id=f"d{number}", outcome=outcome, actor="ci",
        trace_id="t", started_at=f"2026-11-0{number}T10:00:00+00:00",
        finished_at=f"2026-11-0{number}T10:05:00+00:00",
        actions=tuple({"kind": kind, "target": target, "status": "done"} for kind, target in targets),
    )


def test_since_is_the_newest_deployment_that_moved_the_cell() -> None:
    history = [  # newest first, as ReleaseTable.deployments returns them
        deployment(4, "running", ("set_alias", "S@p3")),  # still running: not live yet
        deployment(3, "succeeded", ("set_alias", "S@p2"), ("deploy_bot", "prod/T-p3")),
        deployment(2, "succeeded", ("write_profile_pointer", "prod/profile-3")),
        deployment(1, "succeeded", ("activate_config", "S")),
    ]
    assert rules._since(history, "prod", 3, "S", "S") == "2026-11-02T10:05:00+00:00"
    assert rules._since(history, "prod", 2, "S", "S") == "2026-11-03T10:05:00+00:00"
    assert rules._since(history, "prod", 5, "S", "S") == "2026-11-01T10:05:00+00:00"  # its config
    assert rules._since(history[:1], "prod", 3, "S", "S") is None


def version(number: int, lifecycle: str, *, left: str | None = None, curve: EquityCurve | None = None
            ) -> ModelVersionInfo:
    tags = {"lifecycle": lifecycle}
    if left:
        tags |= {"production_entered_at": "2026-01-01T00:00:00+00:00", "production_left_at": left}
    if curve is not None:
        tags[EQUITY_TAG] = curve.to_tag()
    return ModelVersionInfo("S", number, "READY", tags, created_at=datetime(2026, 11, number, tzinfo=UTC),
                            metrics=GOOD)


def test_the_previous_champion_is_the_most_recently_retired() -> None:
    listed = [
        version(1, "Archived", left="2026-10-01T00:00:00+00:00"),
        version(2, "Archived", left="2026-11-01T00:00:00+00:00"),
        version(3, "Production"),
        version(4, "None"),
    ]
    assert rules._previous_champion(listed, [3]) == 2
    assert rules._previous_champion(listed[2:], [3]) is None


def curve(final: float) -> EquityCurve:
    return EquityCurve(tuple(1 + (final - 1) * i / 99 for i in range(100)), 99, "2024-04-01", "2024-05-01")


def board() -> Board:
    check = RecordedCheck(
        "S", 3, "2026-11-05T09:00:00+00:00", "moderate", 0.17,
        (PsiRow(FEATURE, "rsi_14", 0.17, "moderate"), PsiRow(FEATURE, "vol_24", 0.02, "stable")),
        Thresholds(), "recent.csv",
    )
    earlier = RecordedCheck("S", 3, "2026-11-04T09:00:00+00:00", "stable", 0.05, check.psi, Thresholds())
    rows = (
        VersionRow(version(4, "None", curve=curve(1.3)), "None", "challenger", ((3, "promote"),), curve(1.3)),
        VersionRow(version(3, "Production", curve=curve(1.2)), "Production", "champion", (), curve(1.2)),
        VersionRow(version(2, "Archived", left="2026-11-01"), "Archived", "previous champion", ((3, "keep"),),
                   None),
    )
    cell = Cell(
        env="prod", profile=3, strategy="S", model="S", version=3, staging=None, lifecycle="Production",
        tag="v20261101", sha256="ab" * 32, config_id="v2-12345678", config_hash="cd" * 32,
        since="2026-11-02T10:05:00+00:00", state=rules.DRIFT,
        notes=("drift: alias p3 of S points at v<script>4</script>, applied v3",),
        psi_level="moderate", psi_max=0.17,
    )
    env = EnvBoard(
        env="prod", commit="e" * 40, applied_commit="e" * 40, cells=(cell,),
        deployments=(Moved(deployment(2, "succeeded", ("set_alias", "S@p3")), ("S@p3: profile 3 pins v3",), 0,
                           "Merge release/prod-S-v3"),),
        drift=(), actions=1,
    )
    entry = StrategyEnv("prod", "S", {3: 3}, rows, (check, earlier))
    return Board("2026-11-05T10:00:00+00:00", "https://git.example.invalid/q/r", [env], {"S": [entry]})


def test_the_site_is_written_from_a_board(tmp_path: Path) -> None:
    pages, charts = write_site(board(), tmp_path / "a")
    assert (pages, charts) == (3, 2)  # board, deployments, one strategy; one equity and one PSI chart
    index = (tmp_path / "a" / "index.html").read_text()
    assert 'data-state="drift"' in index and "! drift" in index  # the state as text, not only a colour
    assert "v&lt;script&gt;4&lt;/script&gt;" in index and "<script>" not in index  # escaped
    assert "since <time" in index and "2026-11-02 10:05 UTC" in index
    assert "PSI moderate (max 0.170)" in index
    timeline = (tmp_path / "a" / "deployments.html").read_text()
    assert f'href="https://git.example.invalid/q/r/commit/{2:040d}"' in timeline
    assert "Merge release/prod-S-v3" in timeline and "S@p3: profile 3 pins v3" in timeline
    page = (tmp_path / "a" / "strategies" / "S.html").read_text()
    assert "No curve recorded for v2." in page and "keep vs v3" in page and "promote vs v3" in page
    svgs = sorted((tmp_path / "a" / "charts").glob("*.svg"))
    assert len(svgs) == 2 and all(f'src="../charts/{svg.name}"' in page for svg in svgs)
    equity = next(svg.read_text() for svg in svgs if "held-out" in svg.read_text())
    assert "v3 champion: 1.200" in equity and "v4 challenger: 1.300" in equity
    psi = next(svg.read_text() for svg in svgs if "PSI" in svg.read_text())
    assert "rsi_14" in psi and "significant 0.25" in psi and "max PSI of each recorded check" in psi
    for text in (index, timeline, page):
        assert "http://" not in text and "//cdn" not in text  # nothing loaded from another host
    # the same board gives the same files, byte for byte (charts have no date, ids a fixed salt)
    write_site(board(), tmp_path / "b")
    for path in sorted((tmp_path / "a" / "charts").iterdir()):
        assert (tmp_path / "b" / "charts" / path.name).read_bytes() == path.read_bytes()


def test_many_charts_are_drawn_by_worker_processes_with_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past PARALLEL_FROM charts the drawing moves to spawned processes; the files are the same."""
    from dataclasses import replace

    from tradai_release.report import site

    shown = board()
    (entry,) = shown.strategies["S"]
    for index in range(site.PARALLEL_FROM // 2 + 1):  # an equity and a PSI chart each
        lift = 1 + index / 100
        rows = tuple(replace(row, equity=curve(lift) if row.equity else None) for row in entry.versions)
        shown.strategies[f"S{index:02d}"] = [replace(entry, versions=rows)]
    pages, charts = write_site(shown, tmp_path / "parallel")
    assert charts > site.PARALLEL_FROM and pages == 2 + len(shown.strategies)
    monkeypatch.setattr(site, "PARALLEL_FROM", 10**6)
    write_site(shown, tmp_path / "serial")
    drawn = sorted((tmp_path / "parallel" / "charts").iterdir())
    assert len(drawn) == charts
    for path in drawn:
        assert (tmp_path / "serial" / "charts" / path.name).read_bytes() == path.read_bytes()


def test_an_environment_that_cannot_be_read_is_shown_with_its_error(tmp_path: Path) -> None:
    shown = board()
    shown.envs.append(EnvBoard("staging", "", None, (), (), (), 0, error="releases: cannot reach the server"))
    write_site(shown, tmp_path)
    index = (tmp_path / "index.html").read_text()
    assert "✕ cannot read staging: releases: cannot reach the server" in index
    assert 'id="cell-prod-3-S"' in index  # the other environment is still there
    assert "✕ cannot read staging" in (tmp_path / "deployments.html").read_text()


def test_the_output_directory_must_be_new_empty_or_an_earlier_report(tmp_path: Path) -> None:
    _check_out(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    _check_out(tmp_path / "empty")
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / MARKER).write_text("")
    (tmp_path / "earlier" / "index.html").write_text("")
    _check_out(tmp_path / "earlier")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("")
    with pytest.raises(InputError, match="is not empty and holds no earlier report"):
        _check_out(tmp_path / "home")
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a file"):
        _check_out(tmp_path / "file")
    assert page_name("PascalStrategy") == "strategies/PascalStrategy.html"
    assert page_name("../etc/x y") == "strategies/.._etc_x_y.html"
