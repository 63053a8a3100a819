"""``releases/policy.yaml``'s live verification: the waves a new production model reaches, one after another,
and the rules its bots' live results must meet (docs/architecture.md §18). Pure values: the facts (live
results recorded by ``invoke observe``) are gathered elsewhere and judged in ``domain/progress.py``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tradai_release.core.errors import InputError
from tradai_release.core.yamlio import Document

CHALLENGER_METRICS: Mapping[str, str] = {
    "profit": "its live closed profit at most this far below the champion bot's over the same window",
    "max_drawdown": "its live drawdown at most this far above the champion bot's",
}
"""What a challenger's dry-run results are compared on (margins, as ratios of the stake)."""
PRODUCTION_METRICS: Mapping[str, str] = {
    "max_drawdown": "a live production bot's drawdown above this is a breach",
    "profit": "live closed profit more than this below the backtest's expectation over its hours is a breach",
}
"""What a live production bot is held to (limits, as ratios of the stake)."""
CHALLENGER_KEYS = ("min_hours", "min_trades")

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def parse_duration(text: object) -> float:
    """Hours of a duration written ``30m``, ``24h``, ``2d`` or ``1d12h``; ValueError otherwise."""
    value = str(text).strip()
    match = _DURATION.match(value)
    if not value or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration (write 30m, 24h, 2d or 1d12h)")
    days, hours, minutes = (int(part or 0) for part in match.groups())
    return days * 24 + hours + minutes / 60


@dataclass(frozen=True)
class ChallengerRules:
    """When a staging pin's dry-run bot has proven itself against the champion's bot of its profile."""

    min_hours: float = 0.0
    min_trades: int = 0
    margins: Mapping[str, float] = field(default_factory=dict)  # CHALLENGER_METRICS name -> margin


@dataclass(frozen=True)
class ProductionRules:
    """What a live production bot must keep to; breaking one rolls its pin back."""

    limits: Mapping[str, float] = field(default_factory=dict)  # PRODUCTION_METRICS name -> limit


@dataclass(frozen=True)
class Verification:
    """An environment's live verification: each wave soaks ``soak_hours`` before the next one gets the
    model; ``rollback`` says whether a breach's rollback is merged at once or waits for review."""

    soak_hours: float
    rollback: str = "review"  # review | merge
    stale_after_hours: float = 1.0  # a bot whose newest reading is older has stopped answering
    challenger: ChallengerRules = field(default_factory=ChallengerRules)
    production: ProductionRules = field(default_factory=ProductionRules)

    @property
    def merges_rollbacks(self) -> bool:
        return self.rollback == "merge"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verification:
        challenger = data.get("challenger") or {}
        production = data.get("production") or {}
        return cls(
            soak_hours=parse_duration(data["soak"]),
            rollback=str(data.get("rollback", "review")),
            stale_after_hours=parse_duration(data.get("stale_after", "1h")),
            challenger=ChallengerRules(
                min_hours=float(challenger.get("min_hours", 0)),
                min_trades=int(challenger.get("min_trades", 0)),
                margins={k: float(v) for k, v in challenger.items() if k not in CHALLENGER_KEYS},
            ),
            production=ProductionRules(limits={k: float(v) for k, v in production.items()}),
        )


def check_verification(document: Document, order: Sequence[str]) -> list[InputError]:
    """What the schema cannot say of ``waves`` and ``verification`` (both passed it): declared environments,
    each profile in one wave, durations, known metrics. Which profiles exist is the release tree's to
    check (:func:`check_wave_profiles`)."""
    data = document.data
    problems: list[InputError] = []
    for env, waves in (data.get("waves") or {}).items():
        if env not in order:
            problems.append(document.error(["waves", env], f"{env!r} is not a declared environment"))
        elif env not in (data.get("verification") or {}):
            reason = f"no verification.{env} rules (a wave moves on only after its soak and checks)"
            problems.append(document.error(["waves", env], reason))
        seen: dict[int, int] = {}
        for index, wave in enumerate(waves):
            for profile in wave:
                if profile in seen:
                    problems.append(document.error(
                        ["waves", env, index],
                        f"profile {profile} is named twice (already in wave {seen[profile] + 1})"))
                seen.setdefault(profile, index)
    for env, rules in (data.get("verification") or {}).items():
        if env not in order:
            problems.append(document.error(["verification", env], f"{env!r} is not a declared environment"))
        for key in ("soak", "stale_after"):
            if key in rules:
                try:
                    parse_duration(rules[key])
                except ValueError as err:
                    problems.append(document.error(["verification", env, key], str(err)))
        for part, known, reserved in (("challenger", CHALLENGER_METRICS, CHALLENGER_KEYS),
                                      ("production", PRODUCTION_METRICS, ())):
            for name in (rules.get(part) or {}):
                if name not in known and name not in reserved:
                    listed = ", ".join([*reserved, *known])
                    problems.append(document.error(
                        ["verification", env, part, name], f"unknown metric {name!r} (known: {listed})"))
    return problems


def check_wave_profiles(
    document: Document, profiles: Mapping[str, Sequence[int]]
) -> list[InputError]:
    """Every wave names profiles the environment has (``releases/<env>/profile-<N>.yaml``), and every
    profile of it is in a wave: a profile left out would never get a new model."""
    problems: list[InputError] = []
    for env, waves in (document.data.get("waves") or {}).items():
        have = set(profiles.get(env, ()))
        named: set[int] = set()
        for index, wave in enumerate(waves):
            for profile in wave:
                named.add(profile)
                if profile not in have:
                    known = ", ".join(str(p) for p in sorted(have)) or "none"
                    problems.append(document.error(
                        ["waves", env, index],
                        f"profile {profile} does not exist in {env} (releases/{env}/ has: {known})"))
        for profile in sorted(have - named):
            problems.append(document.error(
                ["waves", env], f"profile {profile} of {env} is in no wave (it would never get a new model)"))
    return problems
