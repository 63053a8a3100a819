"""``progress``'s judgement: from the policy's waves and verification rules, a strategy's pins per profile
and its bots' recorded live results, what to do next — hold, promote the challenger into the next wave,
or roll back a breaching production pin (docs/architecture.md §18). Pure: the engine gathers the facts,
the workflow turns a decision into a commit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tradai_release.core.clock import stamp
from tradai_release.domain.live import CHALLENGER, PRODUCTION, LiveResult, profit_since
from tradai_release.repository.verification import Verification

HOLD = "hold"
PROMOTE = "promote"
ROLLBACK = "rollback"


@dataclass(frozen=True)
class Cell:
    """One profile's pins of the strategy: the version its production bot runs, the challenger's (staging)
    version if any, and the production version the profile ran before this one (the rollback target)."""

    profile: int
    production: int
    staging: int | None = None
    previous: int | None = None


@dataclass(frozen=True)
class Facts:
    """Everything one strategy's decision reads. ``readings`` holds every recorded reading of its bots
    (newest decides; older ones give the champion's figures over a challenger's window);
    ``expected_per_hour`` the backtest's closed profit per hour of each version (its held-out
    ``total_profit`` over the window's hours)."""

    env: str
    strategy: str
    cells: tuple[Cell, ...]
    waves: tuple[tuple[int, ...], ...]
    rules: Verification
    readings: tuple[LiveResult, ...]
    now: datetime
    expected_per_hour: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What ``progress`` does for one strategy. ``evidence`` holds the figures and the rule each met or
    broke (a commit message carries them); ``next_check_at`` is when time alone may change a hold."""

    env: str
    strategy: str
    kind: str  # hold | promote | rollback
    reason: str
    profiles: tuple[int, ...] = ()
    version: int | None = None  # promote: the challenger; rollback: the version restored
    from_version: int | None = None  # rollback: the breaching version
    wave: int | None = None  # promote: the wave (1-based) it enters
    evidence: tuple[str, ...] = ()
    next_check_at: datetime | None = None
    unanswered: tuple[str, ...] = ()  # bots that did not answer (reported)

    @property
    def moves(self) -> bool:
        return self.kind != HOLD

    @property
    def summary(self) -> str:
        """``<kind>: <reason>``: a decision that says the same as the last one is not recorded again."""
        return f"{self.kind}: {self.reason}"

    @property
    def key(self) -> str:
        """Names the move, not the evidence: the same move decided again has the same key (its branch)."""
        profiles = "-".join(f"p{p}" for p in self.profiles)
        if self.kind == PROMOTE:
            return f"{self.env}-{self.strategy}-promote-v{self.version}-{profiles}"
        if self.kind == ROLLBACK:
            return f"{self.env}-{self.strategy}-rollback-v{self.from_version}-to-v{self.version}-{profiles}"
        digest = hashlib.sha256(json.dumps([self.reason, self.profiles]).encode()).hexdigest()[:8]
        return f"{self.env}-{self.strategy}-hold-{digest}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "strategy": self.strategy,
            "decision": self.kind,
            "reason": self.reason,
            "profiles": list(self.profiles),
            "version": self.version,
            "from_version": self.from_version,
            "wave": self.wave,
            "evidence": list(self.evidence),
            "next_check_at": stamp(self.next_check_at) if self.next_check_at else None,
            "unanswered": list(self.unanswered),
            "key": self.key,
        }


def decide(facts: Facts) -> Decision:
    """The one decision for a strategy: a breach's rollback first, then the challenger's next wave."""
    newest = _newest(facts.readings)
    rollback = _rollback(facts, newest)
    if rollback is not None:
        return rollback
    return _promotion(facts, newest)


def _newest(readings: Sequence[LiveResult]) -> dict[tuple[int, str], LiveResult]:
    found: dict[tuple[int, str], LiveResult] = {}
    for reading in sorted(readings, key=lambda r: r.observed_at):
        found[(reading.profile, reading.role)] = reading
    return found


def _silent(facts: Facts, reading: LiveResult | None) -> str | None:
    """Why ``reading`` cannot be judged (no reading, no answer, too old), or None."""
    if reading is None:
        return "no reading recorded"
    if not reading.answered:
        why = f" ({reading.error})" if reading.error else ""
        return f"did not answer at {stamp(reading.observed_at)}{why}"
    if facts.now - reading.observed_at > timedelta(hours=facts.rules.stale_after_hours):
        return f"last answered at {stamp(reading.observed_at)}"
    return None


def _hold(facts: Facts, reason: str, **more: Any) -> Decision:
    return Decision(facts.env, facts.strategy, HOLD, reason, **more)


# --- production bots: a breach rolls the pin back ------------------------------------------------------


def breaches(facts: Facts, reading: LiveResult, version: int) -> tuple[list[str], list[str]]:
    """The production rules ``reading`` breaks and the ones it meets, as evidence lines."""
    broken: list[str] = []
    met: list[str] = []
    limits = facts.rules.production.limits
    bot = f"{reading.bot} v{version}"
    if "max_drawdown" in limits:
        limit = limits["max_drawdown"]
        line = (f"{bot}: max_drawdown {reading.max_drawdown:.4f} over {reading.hours:.1f} h "
                f"(limit {limit:.4f})")
        (broken if reading.max_drawdown > limit else met).append(line)
    if "profit" in limits and version not in facts.expected_per_hour:
        met.append(f"{bot}: profit rule not judged (v{version} records no held-out window to expect from)")
    elif "profit" in limits:
        band = limits["profit"]
        expected = facts.expected_per_hour[version] * reading.hours
        line = (f"{bot}: closed profit {reading.closed_profit:.4f} over {reading.hours:.1f} h, "
                f"backtest expects {expected:.4f} (band {band:.4f}, floor {expected - band:.4f})")
        (broken if reading.closed_profit < expected - band else met).append(line)
    return broken, met


def _rollback(facts: Facts, newest: Mapping[tuple[int, str], LiveResult]) -> Decision | None:
    groups: dict[tuple[int, int], list[int]] = {}
    evidence: list[str] = []
    stuck: list[str] = []
    for cell in facts.cells:
        reading = newest.get((cell.profile, PRODUCTION))
        if reading is None or _silent(facts, reading) or reading.model_version != cell.production:
            continue  # nothing recorded of this pin's bot yet: nothing to judge
        broken, _met = breaches(facts, reading, cell.production)
        if not broken:
            continue
        if cell.previous is None:
            stuck += [f"{line} — no earlier version to roll back to" for line in broken]
            continue
        groups.setdefault((cell.production, cell.previous), []).append(cell.profile)
        evidence += broken
    if groups:
        (current, previous), profiles = sorted(groups.items(), key=lambda item: item[1])[0]
        return Decision(
            facts.env, facts.strategy, ROLLBACK,
            f"v{current} breached the production rules in {_profiles(profiles)}: back to v{previous}",
            profiles=tuple(sorted(profiles)), version=previous, from_version=current,
            evidence=tuple(evidence),
        )
    if stuck:
        return _hold(facts, "a production bot breaches the rules and its profile has no earlier version",
                     evidence=tuple(stuck))
    return None


# --- the challenger: verified, then wave by wave ------------------------------------------------------


def _candidate(facts: Facts) -> int | None:
    versions = {cell.staging for cell in facts.cells if cell.staging is not None}
    versions |= {cell.production for cell in facts.cells}
    newest = max(versions, default=None)
    if newest is None or all(cell.production == newest for cell in facts.cells):
        return None
    return newest


def _waves(facts: Facts) -> list[tuple[Cell, ...]]:
    """The strategy's cells per wave (waves where it runs in no profile left out)."""
    by_profile = {cell.profile: cell for cell in facts.cells}
    found = [tuple(by_profile[p] for p in wave if p in by_profile) for wave in facts.waves]
    return [wave for wave in found if wave]


def wave_reached(facts: Facts) -> tuple[int | None, int]:
    """The version on its way through the waves (None when every profile runs the newest) and how many of
    the strategy's waves already run it in production (0: still a challenger)."""
    candidate = _candidate(facts)
    if candidate is None:
        return None, len(_waves(facts))
    waves = _waves(facts)
    reached = 0
    while reached < len(waves) and all(cell.production == candidate for cell in waves[reached]):
        reached += 1
    return candidate, reached


def _promotion(facts: Facts, newest: Mapping[tuple[int, str], LiveResult]) -> Decision:
    candidate, reached = wave_reached(facts)
    if candidate is None:
        return _hold(facts, "no challenger: every profile runs the newest version")
    waves = _waves(facts)
    if reached == len(waves):
        return _hold(facts, f"v{candidate} runs in every wave")
    target = tuple(cell.profile for cell in waves[reached] if cell.production != candidate)
    if reached == 0:
        verdict = _verify_challenger(facts, newest, candidate, waves[0])
    else:
        verdict = _soaked(facts, newest, candidate, waves[reached - 1], reached)
    if verdict.kind == HOLD:
        return verdict
    return Decision(
        facts.env, facts.strategy, PROMOTE,
        f"v{candidate} into wave {reached + 1} ({_profiles(target)})",
        profiles=target, version=candidate, wave=reached + 1, evidence=verdict.evidence,
    )


def _verify_challenger(
    facts: Facts, newest: Mapping[tuple[int, str], LiveResult], candidate: int, first: Sequence[Cell]
) -> Decision:
    rules = facts.rules.challenger
    staged = [cell for cell in facts.cells if cell.staging == candidate]
    if not staged:
        return _hold(facts, f"v{candidate} is not staged in any profile: no challenger bot to verify")
    # The challenger of a first-wave profile if there is one, else any staged profile's.
    cell = next((c for c in staged if c in first), staged[0])
    challenger = newest.get((cell.profile, CHALLENGER))
    champion = newest.get((cell.profile, PRODUCTION))
    unanswered = []
    for name, reading in ((f"{facts.strategy}-p{cell.profile}-challenger", challenger),
                          (f"{facts.strategy}-p{cell.profile}", champion)):
        why = _silent(facts, reading)
        if why is not None:
            unanswered.append(f"{name}: {why}")
    if unanswered:
        return _hold(facts, "a bot does not answer: " + "; ".join(unanswered), unanswered=tuple(unanswered))
    assert challenger is not None and champion is not None
    if challenger.model_version != candidate:
        return _hold(facts, f"the challenger bot of p{cell.profile} runs v{challenger.model_version}, "
                            f"not the staged v{candidate} (its deployment is pending)")
    evidence = [f"challenger v{candidate} in p{cell.profile}: {challenger.trades} trades, closed profit "
                f"{challenger.closed_profit:.4f}, max_drawdown {challenger.max_drawdown:.4f} over "
                f"{challenger.hours:.1f} h dry-run"]
    if challenger.hours < rules.min_hours:
        assert challenger.since is not None or rules.min_hours == 0
        ready = (challenger.since or facts.now) + timedelta(hours=rules.min_hours)
        return _hold(facts, f"the challenger has run {challenger.hours:.1f} h of the {rules.min_hours:g} h "
                            "it needs", evidence=tuple(evidence), next_check_at=ready)
    if challenger.trades < rules.min_trades:
        return _hold(facts, f"the challenger has closed {challenger.trades} trades of the {rules.min_trades} "
                            "it needs", evidence=tuple(evidence))
    since = challenger.since or challenger.observed_at
    history = [r for r in facts.readings if r.profile == cell.profile and r.role == PRODUCTION]
    champion_profit = profit_since(history, since, facts.rules.stale_after_hours)
    worse: list[str] = []
    if "profit" in rules.margins:
        margin = rules.margins["profit"]
        if champion_profit is None:
            return _hold(facts, f"the champion bot of p{cell.profile} has no reading from before the "
                                "challenger started: its profit over the same window is unknown",
                         evidence=tuple(evidence))
        line = (f"closed profit {challenger.closed_profit:.4f} vs champion v{cell.production} "
                f"{champion_profit:.4f} over the same window (margin {margin:.4f})")
        (worse if challenger.closed_profit < champion_profit - margin else evidence).append(line)
    if "max_drawdown" in rules.margins:
        margin = rules.margins["max_drawdown"]
        line = (f"max_drawdown {challenger.max_drawdown:.4f} vs champion v{cell.production} "
                f"{champion.max_drawdown:.4f} (margin {margin:.4f})")
        (worse if challenger.max_drawdown > champion.max_drawdown + margin else evidence).append(line)
    if worse:
        reason = f"the challenger v{candidate} trades worse than the champion: " + "; ".join(worse)
        return _hold(facts, reason, evidence=tuple([*evidence, *worse]))
    return Decision(facts.env, facts.strategy, PROMOTE, "verified", evidence=tuple(evidence))


def _soaked(
    facts: Facts, newest: Mapping[tuple[int, str], LiveResult], candidate: int, wave: Sequence[Cell],
    number: int,
) -> Decision:
    """Wave ``number`` (1-based) runs ``candidate``: its bots must answer, run it, keep to the production
    rules (a breach was handled before) and have run the soak."""
    evidence: list[str] = []
    unanswered: list[str] = []
    started: list[datetime] = []
    for cell in wave:
        reading = newest.get((cell.profile, PRODUCTION))
        why = _silent(facts, reading)
        if why is not None:
            unanswered.append(f"{facts.strategy}-p{cell.profile}: {why}")
            continue
        assert reading is not None
        if reading.model_version != candidate:
            return _hold(facts, f"{reading.bot} still runs v{reading.model_version}, not v{candidate} "
                                "(its deployment is pending)")
        _broken, met = breaches(facts, reading, candidate)
        evidence += met or [f"{reading.bot} v{candidate}: {reading.trades} trades, closed profit "
                            f"{reading.closed_profit:.4f} over {reading.hours:.1f} h"]
        started.append(reading.since or reading.observed_at)
    if unanswered:
        return _hold(facts, "a bot does not answer: " + "; ".join(unanswered), unanswered=tuple(unanswered))
    soaked_at = max(started) + timedelta(hours=facts.rules.soak_hours)
    if facts.now < soaked_at:
        ran = (facts.now - max(started)).total_seconds() / 3600
        reason = f"wave {number} has run v{candidate} {ran:.1f} h of its {facts.rules.soak_hours:g} h soak"
        return _hold(facts, reason, evidence=tuple(evidence), next_check_at=soaked_at)
    evidence.append(f"wave {number} soaked {facts.rules.soak_hours:g} h")
    return Decision(facts.env, facts.strategy, PROMOTE, "soaked", evidence=tuple(evidence))


def _profiles(profiles: Sequence[int]) -> str:
    return ", ".join(f"p{p}" for p in sorted(profiles))
