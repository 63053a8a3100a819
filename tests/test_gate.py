"""The comparator gate's one definition of the champion, and which moves it judges (pure values)."""

from __future__ import annotations

from tradai_release.domain.gate import by_version, champion, production_move
from tradai_release.registry.adapter import ModelVersionInfo
from tradai_release.registry.comparator import ModelComparator
from tradai_release.registry.lifecycle import ENTERED_TAG

GOOD = {"total_profit": 0.3, "sharpe_ratio": 2.0, "max_drawdown": 0.1, "win_rate": 0.5, "total_trades": 40.0}
BETTER = {**GOOD, "total_profit": 0.5, "sharpe_ratio": 3.0}
WORSE = {**GOOD, "sharpe_ratio": 0.2}


def version(number: int, metrics: dict[str, float], *, aliases: tuple[str, ...] = (),
            was_live: bool = False) -> ModelVersionInfo:
    tags = {ENTERED_TAG: "2026-11-01T00:00:00+00:00"} if was_live else {}
    return ModelVersionInfo("m", number, "READY", tags=tags, aliases=aliases, metrics=metrics)


def test_the_champion_is_the_live_alias_holder_else_the_pin() -> None:
    versions = by_version([version(1, GOOD, aliases=("p1", "p3")), version(2, BETTER, aliases=("p2",))])
    assert champion(3, versions, pinned=2) == versions[1]  # live beats what git pins before apply
    assert champion(2, versions) == versions[2]
    assert champion(4, versions, pinned=2) == versions[2]  # never applied: the pinned version
    assert champion(4, versions) is None


def test_which_moves_are_judged() -> None:
    comparator = ModelComparator()
    versions = by_version([
        version(1, GOOD, was_live=True), version(2, GOOD, aliases=("p1",), was_live=True),
        version(3, BETTER), version(4, WORSE), version(5, GOOD),
    ])
    assert production_move(1, "m", versions, 2, comparator) is None  # already the champion
    back = production_move(1, "m", versions, 1, comparator)
    assert back is not None and back.rollback and back.approved and back.decision == "rollback"
    forward = production_move(1, "m", versions, 3, comparator)
    assert forward is not None and forward.champion == 2
    assert forward.decision == "promote" and forward.approved
    kept = production_move(1, "m", versions, 4, comparator)
    assert kept is not None and not kept.approved and kept.decision == "keep"
    versions[2] = version(2, GOOD, aliases=("p1",), was_live=True)
    del versions[5]
    assert production_move(1, "m", versions, 9, comparator) is None  # unknown version: nothing to judge
    newer_live = by_version([version(5, GOOD, aliases=("p1",)), version(4, WORSE)])
    assert production_move(1, "m", newer_live, 4, comparator) is None  # older, never live: not gated
