"""``releases/policy.yaml``: the environments of a release repository, in promotion order, and the rules
for promoting into them (soak, freeze windows). Pure values: what a rule says at an instant is
computed here; the engine gathers the facts (deployment records, hub tags) it is applied to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tradai_release.core.errors import InputError
from tradai_release.core.yamlio import Document
from tradai_release.repository.verification import Verification, check_verification

POLICY_PATH = "releases/policy.yaml"
DEFAULT_ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
"""The environments of a repository whose policy.yaml (or its ``environments:`` key) is absent."""


def is_gated(environment: str, order: Sequence[str]) -> bool:
    """The one answer to "is this environment gated" (§5): production, the last of the promotion
    ``order``, where a production pin moving forward needs the comparator's approval or a recorded
    override. :attr:`Environment.gated` asks it for an environment parsed at the edge."""
    return environment == order[-1]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Soak:
    """A production pin entering the environment must have run ``hours`` in environment ``after``."""

    after: str
    hours: float


@dataclass(frozen=True)
class Window:
    """A stretch of time an environment is frozen: ``[start, end)`` in UTC, and why."""

    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class Weekly:
    """A window recurring on ``days`` (0 = Monday) from ``start`` to ``end`` minutes of the local day
    (``end`` 1440 = midnight) in time zone ``tz``; DST is the zone's business."""

    days: tuple[int, ...]
    start: int
    end: int
    tz: str
    reason: str = ""

    def window_on(self, day: date) -> Window | None:
        """The window of local date ``day`` (None when ``day`` is not one of its days)."""
        if day.weekday() not in self.days:
            return None
        zone = ZoneInfo(self.tz)

        def instant(minutes: int) -> datetime:
            # Wall-clock time first, then the zone's offset at that wall time: 24:00 on the day DST
            # ends is 25 hours after 00:00, not 24.
            wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
            return wall.replace(tzinfo=zone).astimezone(UTC)

        names = ", ".join(WEEKDAYS[d] for d in self.days)
        why = self.reason or f"weekly window {names} {_hhmm(self.start)}-{_hhmm(self.end)} {self.tz}"
        return Window(instant(self.start), instant(self.end), why)

    def window_at(self, moment: datetime) -> Window | None:
        local = moment.astimezone(ZoneInfo(self.tz)).date()
        for day in (local - timedelta(days=1), local):
            window = self.window_on(day)
            if window is not None and window.start <= moment < window.end:
                return window
        return None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Freeze:
    """When an environment is not applied: whole UTC dates, absolute ranges and weekly windows."""

    dates: tuple[date, ...] = ()
    ranges: tuple[Window, ...] = ()
    weekly: tuple[Weekly, ...] = ()

    def _windows_at(self, moment: datetime) -> list[Window]:
        found = [w for w in self.ranges if w.start <= moment < w.end]
        day = moment.astimezone(UTC).date()
        if day in self.dates:
            start = datetime.combine(day, time(), tzinfo=UTC)
            found.append(Window(start, start + timedelta(days=1), f"frozen date {day.isoformat()}"))
        found += [w for w in (weekly.window_at(moment) for weekly in self.weekly) if w is not None]
        return found

    def window_at(self, moment: datetime) -> Window | None:
        """The freeze in force at ``moment``, carried through every window that adjoins or overlaps it
        on either side (so its end is when an apply may run again), or None."""
        found = self._windows_at(moment)
        if not found:
            return None
        reasons = [w.reason for w in found]
        start, end = min(w.start for w in found), max(w.end for w in found)
        for _ in range(400):  # at most a year of back-to-back windows is followed each way
            more = self._windows_at(end)
            if not more:
                break
            reasons += [w.reason for w in more]
            end = max(w.end for w in more)
        for _ in range(400):
            more = self._windows_at(start - timedelta(microseconds=1))
            if not more:
                break
            reasons = [w.reason for w in more] + reasons
            start = min(w.start for w in more)
        return Window(start, end, "; ".join(dict.fromkeys(reasons)))


@dataclass(frozen=True)
class PolicyVerdict:
    """What one policy rule says about applying a plan: allowed, blocked (until ``clears_at``, when
    time alone clears it) or let through by a manifest's ``policy_override``."""

    rule: str  # soak | freeze
    subject: str
    allowed: bool
    reason: str
    path: str
    field: str
    clears_at: str | None = None
    override: Mapping[str, str] | None = None  # {approved_by, reason} that let a blocked rule through

    @property
    def blocked(self) -> bool:
        return not self.allowed

    @property
    def message(self) -> str:
        """``blocked: <reason> (clears at <time>)``, ``overridden by <who> (<why>): ...`` or ``ok: ...``."""
        if self.override is not None:
            return f"overridden by {self.override['approved_by']} ({self.override['reason']}): {self.reason}"
        if self.allowed:
            return f"ok: {self.reason}"
        clears = f" (clears at {self.clears_at})" if self.clears_at else " (time alone does not clear it)"
        return f"blocked: {self.reason}{clears}"

    def problem(self) -> InputError:
        """The verdict as the one-line error validate and apply report."""
        return InputError(self.path, self.field, self.message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "subject": self.subject,
            "allowed": self.allowed,
            "blocked": self.blocked,
            "reason": self.reason,
            "path": self.path,
            "field": self.field,
            "clears_at": self.clears_at,
            "override": dict(self.override) if self.override is not None else None,
            "message": self.message,
        }


@dataclass(frozen=True)
class Policy:
    """What ``releases/policy.yaml`` declares; every key absent from the file keeps today's behaviour."""

    environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS
    soak: Mapping[str, Soak] = field(default_factory=dict)
    freeze: Mapping[str, Freeze] = field(default_factory=dict)
    prune: bool = False  # apply retires what git no longer declares (docs/architecture.md §7, "Prune")
    waves: Mapping[str, tuple[tuple[int, ...], ...]] = field(default_factory=dict)
    verification: Mapping[str, Verification] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        """Build from a mapping that passed the policy schema and :func:`check_policy`."""
        declared = data.get("environments")
        return cls(
            environments=tuple(declared) if declared else DEFAULT_ENVIRONMENTS,
            soak={
                env: Soak(rule["after"], float(rule["hours"]))
                for env, rule in (data.get("soak") or {}).items()
            },
            freeze={env: _freeze(rule) for env, rule in (data.get("freeze") or {}).items()},
            prune=bool(data.get("prune", False)),
            waves={
                env: tuple(tuple(int(profile) for profile in wave) for wave in waves)
                for env, waves in (data.get("waves") or {}).items()
            },
            verification={
                env: Verification.from_dict(rules) for env, rules in (data.get("verification") or {}).items()
            },
        )

    def has_rules(self, environment: str) -> bool:
        """True when soak or freeze says something about ``environment`` (else nothing is judged)."""
        return environment in self.soak or environment in self.freeze


def _freeze(rule: Mapping[str, Any]) -> Freeze:
    return Freeze(
        dates=tuple(date.fromisoformat(str(day)) for day in rule.get("dates") or ()),
        ranges=tuple(
            Window(
                _instant(r["from"]),
                _instant(r["to"]),
                str(r.get("reason") or f"frozen {r['from']} - {r['to']}"),
            )
            for r in rule.get("ranges") or ()
        ),
        weekly=tuple(
            Weekly(
                days=tuple(sorted(WEEKDAYS.index(d) for d in w["days"])),
                start=_minutes(w["from"]),
                end=_minutes(w["to"]),
                tz=str(w["tz"]),
                reason=str(w.get("reason") or ""),
            )
            for w in rule.get("weekly") or ()
        ),
    )


def _instant(text: str) -> datetime:
    """An ISO 8601 instant with its offset (``Z`` or ``+HH:MM``), in UTC."""
    parsed = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("no UTC offset (write Z or +HH:MM)")
    return parsed.astimezone(UTC)


def _minutes(text: str) -> int:
    hours, minutes = str(text).split(":")
    return int(hours) * 60 + int(minutes)


def check_policy(document: Document) -> list[InputError]:
    """Every problem of a parsed policy.yaml: its schema, then what a schema cannot say (a soak's
    ``after`` comes earlier in the order, ranges end after they start, time zones exist, waves and
    verification rules: :func:`check_verification`)."""
    from tradai_release.core.schema import check

    problems = check("policy", document)
    data = document.data
    if problems or not isinstance(data, dict):
        return problems
    order = tuple(data.get("environments") or DEFAULT_ENVIRONMENTS)
    for env, rule in (data.get("soak") or {}).items():
        if env not in order:
            problems.append(document.error(["soak", env], f"{env!r} is not a declared environment"))
        elif rule["after"] not in order[: order.index(env)]:
            earlier = ", ".join(order[: order.index(env)]) or "none"
            reason = (
                f"{rule['after']!r} does not come before {env!r} in the promotion order (earlier: {earlier})"
            )
            problems.append(document.error(["soak", env, "after"], reason))
    for env, rule in (data.get("freeze") or {}).items():
        if env not in order:
            problems.append(document.error(["freeze", env], f"{env!r} is not a declared environment"))
        for index, day in enumerate(rule.get("dates") or ()):
            try:
                date.fromisoformat(str(day))
            except ValueError:
                problems.append(document.error(["freeze", env, "dates", index], f"{day!r} is not a date"))
        for index, entry in enumerate(rule.get("ranges") or ()):
            bounds = []
            for key in ("from", "to"):
                try:
                    bounds.append(_instant(entry[key]))
                except ValueError as err:
                    where = ["freeze", env, "ranges", index, key]
                    problems.append(
                        document.error(where, f"{entry[key]!r} is not an ISO 8601 instant ({err})")
                    )
            if len(bounds) == 2 and bounds[0] >= bounds[1]:
                problems.append(document.error(["freeze", env, "ranges", index, "to"], "is not after from"))
        for index, entry in enumerate(rule.get("weekly") or ()):
            where = ["freeze", env, "weekly", index]
            try:
                ZoneInfo(str(entry["tz"]))
            except (ZoneInfoNotFoundError, ValueError):
                problems.append(document.error([*where, "tz"], f"{entry['tz']!r} is not an IANA time zone"))
            if _minutes(entry["from"]) >= _minutes(entry["to"]):
                problems.append(
                    document.error([*where, "to"], f"{entry['to']} is not after from {entry['from']}")
                )
    problems += check_verification(document, order)
    return problems
