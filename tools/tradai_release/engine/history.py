"""Release history of an environment: what each apply moved, and what was live at any instant.

Answered from the deployment records and, for applies that failed, were interrupted or were in
progress at the instant asked about, the per-action journal: one query of each in the
release-state table whatever the number of deployments (the store pages through them). Records
written before deployments carried their pins are read at their commit from git objects (nothing
is checked out). See docs/architecture.md §15.

What history cannot know is a hand change between applies: it shows as the drift that the next
apply repaired (that deployment's row says so), not as a change of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.clock import parse_stamp, stamp
from tradai_release.engine.deployments import FAILED, RUNNING, SUCCEEDED, pull_request_number
from tradai_release.engine.release_table import Deployment, JournalEntry, ReleaseTable
from tradai_release.errors import GitError, InputError
from tradai_release.manifest import parse_profile

if TYPE_CHECKING:
    from tradai_release.environments import Environment
    from tradai_release.settings import Settings
    from tradai_release.stores import KeyValueTable

Key = tuple[int, str]  # (profile, strategy)


def parse_instant(command: str, flag: str, text: str) -> datetime:
    """``--at`` / ``--since`` / ``--until``: an ISO 8601 instant (a date is its midnight UTC; naive = UTC)."""
    try:
        return parse_stamp(text)
    except ValueError:
        reason = f"{text!r} is not an ISO 8601 instant (e.g. 2026-12-01T14:00:00Z or 2026-12-01)"
        raise InputError(command, flag, reason) from None


@dataclass(frozen=True)
class LivePin:
    """What one strategy of one profile runs: model version, hub tag and config."""

    profile: int
    strategy: str
    model: str
    version: int
    staging: int | None
    tag: str
    sha256: str
    config_hash: str
    config_id: str | None

    @property
    def key(self) -> Key:
        return (self.profile, self.strategy)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> LivePin:
        """From an entry of ``Deployment.pins``."""
        staging = data.get("staging")
        return cls(
            profile=int(data["profile"]),
            strategy=str(data["strategy"]),
            model=str(data["model"]),
            version=int(data["version"]),
            staging=int(staging) if staging is not None else None,
            tag=str(data["tag"]),
            sha256=str(data["sha256"]),
            config_hash=str(data["config_hash"]),
            config_id=str(data["config_id"]) if data.get("config_id") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "strategy": self.strategy,
            "model": self.model,
            "version": self.version,
            "staging": self.staging,
            "tag": self.tag,
            "sha256": self.sha256,
            "config_hash": self.config_hash,
            "config_id": self.config_id,
        }


@dataclass(frozen=True)
class Held:
    """A live pin and the deployment that made it so (when that deployment finished, or its action ran)."""

    pin: LivePin
    deployment_id: str
    since: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.pin.to_dict(), "deployment_id": self.deployment_id, "since": self.since}


State = dict[Key, Held]


@dataclass(frozen=True)
class Change:
    """A profile x strategy whose pin a deployment moved (``before`` None: added; ``after`` None: gone)."""

    profile: int
    strategy: str
    before: LivePin | None
    after: LivePin | None

    def to_dict(self) -> dict[str, Any]:
        def pair(name: str) -> list[Any]:
            return [getattr(self.before, name, None), getattr(self.after, name, None)]

        either = self.after or self.before
        return {
            "profile": self.profile,
            "strategy": self.strategy,
            "model": either.model if either is not None else None,
            "version": pair("version"),
            "staging": pair("staging"),
            "tag": pair("tag"),
            "sha256": pair("sha256"),
            "config_hash": pair("config_hash"),
            "config_id": pair("config_id"),
        }


@dataclass(frozen=True)
class Partial:
    """An apply that had not (or never) finished at the instant asked about: what of it was applied."""

    deployment_id: str
    state: str  # in progress | failed | interrupted
    outcome: str  # as recorded now
    started_at: str
    finished_at: str | None
    done: tuple[str, ...]  # "<kind> <target>" of each action done by the instant
    total: int
    error: str | None

    def describe(self) -> str:
        applied = f"{len(self.done)} of {self.total} actions applied"
        if self.state == "in progress":
            return f"inside apply {self.deployment_id} (in progress: {applied})"
        if self.state == "failed":
            return f"after failed apply {self.deployment_id} ({applied}; {self.error or 'no error recorded'})"
        return f"after interrupted apply {self.deployment_id} (never finished: {applied})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "state": self.state,
            "outcome": self.outcome,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "done": list(self.done),
            "total": self.total,
            "error": self.error,
        }


@dataclass(frozen=True)
class LiveAt:
    """What was live in ``env`` at ``at``: every profile x strategy, and the last apply begun by then."""

    env: str
    at: str
    pins: tuple[Held, ...]
    deployment: Deployment | None
    partial: Partial | None

    def to_dict(self) -> dict[str, Any]:
        last = self.deployment
        return {
            "env": self.env,
            "at": self.at,
            "deployment_id": last.deployment_id if last is not None else None,
            "commit": last.commit if last is not None else None,
            "partial": self.partial.to_dict() if self.partial is not None else None,
            "pins": [held.to_dict() for held in self.pins],
        }


@dataclass(frozen=True)
class HistoryRow:
    """One change a deployment made (or, when it moved no pin, the deployment alone with a note)."""

    deployment: Deployment
    at: str
    pull_request: int | None
    change: Change | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        d = self.deployment
        return {
            "at": self.at,
            "deployment_id": d.deployment_id,
            "outcome": d.outcome,
            "commit": d.commit,
            "pull_request": self.pull_request,
            "actor": d.actor,
            "trace_id": d.trace_id,
            "change": self.change.to_dict() if self.change is not None else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class History:
    """An environment's rows, newest first, and the filters that selected them."""

    env: str
    rows: tuple[HistoryRow, ...]
    filters: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "filters": dict(self.filters), "rows": [row.to_dict() for row in self.rows]}


# --- the timeline --------------------------------------------------------------------------------------


class Timeline:
    """An environment's deployments, oldest first, with the journal read once when an answer needs it."""

    def __init__(self, table: KeyValueTable, env: str, repo_root: Path | str) -> None:
        self.releases = ReleaseTable(table, env)
        self.env = env
        self.root = Path(repo_root)
        self.deployments = [d for d in reversed(self.releases.deployments()) if d.deployment_id]
        self._journal: dict[str, list[JournalEntry]] | None = None
        self._at_commit: dict[str, dict[Key, LivePin]] = {}
        self._messages: dict[str, int | None] = {}

    def journal(self, deployment_id: str) -> list[JournalEntry]:
        """The journal entries of one deployment, in action order (the whole journal is one query)."""
        if self._journal is None:
            self._journal = self.releases.journals()
        return self._journal.get(deployment_id, [])

    def pins(self, deployment: Deployment) -> dict[Key, LivePin]:
        """What ``deployment`` made live: its record's pins, else its commit's manifests (git objects)."""
        if deployment.pins is not None:
            found = (LivePin.from_record(entry) for entry in deployment.pins)
            return {pin.key: pin for pin in found}
        commit = deployment.commit
        if commit not in self._at_commit:
            self._at_commit[commit] = self._manifest_pins(deployment)
        return dict(self._at_commit[commit])

    def _manifest_pins(self, deployment: Deployment) -> dict[Key, LivePin]:
        from tradai_release.repo import ReleaseTree

        try:
            with ReleaseTree.at(self.root, deployment.commit) as tree:
                manifests = tree.manifests(self.env)
        except GitError:
            reason = (
                f"records no pins and its commit {deployment.commit[:12]} is not in this clone "
                "(fetch full history)"
            )
            raise InputError("history", f"deployment {deployment.deployment_id}", reason) from None
        pins = {}
        for manifest in manifests:
            for name, pin in manifest.strategies.items():
                live = LivePin(
                    manifest.profile,
                    name,
                    pin.model.name,
                    pin.model.production,
                    pin.model.staging,
                    manifest.artifacts.tag,
                    manifest.artifacts.sha256,
                    pin.config,
                    None,
                )
                pins[live.key] = live
        return pins

    def pull_request(self, deployment: Deployment) -> int | None:
        """The record's pull request number; for records older than that field, read from git."""
        if deployment.pins is not None or deployment.pull_request is not None:
            return deployment.pull_request
        if deployment.commit not in self._messages:
            from tradai_release.gitrepo import GitRepo

            try:
                with GitRepo(self.root) as git:
                    self._messages[deployment.commit] = pull_request_number(git.message(deployment.commit))
            except GitError:
                self._messages[deployment.commit] = None
        return self._messages[deployment.commit]


def _finished(deployment: Deployment) -> datetime | None:
    return parse_stamp(deployment.finished_at) if deployment.finished_at else None


def _advance(
    state: State, pins: Mapping[Key, LivePin], deployment_id: str, at: str
) -> tuple[State, list[Change]]:
    """``state`` after ``pins`` became live; an unchanged pin keeps the deployment that made it so.

    A pin without a config id (an old record, or a config activated in an apply that failed) keeps
    the id it had while its config hash is the same.
    """
    after: State = {}
    changes: list[Change] = []
    for key, pin in sorted(pins.items()):
        held = state.get(key)
        if pin.config_id is None and held is not None and held.pin.config_hash == pin.config_hash:
            pin = replace(pin, config_id=held.pin.config_id)
        if held is not None and held.pin == pin:
            after[key] = held
            continue
        after[key] = Held(pin, deployment_id, at)
        changes.append(Change(key[0], key[1], held.pin if held is not None else None, pin))
    for key in sorted(set(state) - set(pins)):
        changes.append(Change(key[0], key[1], state[key].pin, None))
    return after, changes


def _overlay(
    state: State, entries: Iterable[JournalEntry], deployment_id: str
) -> tuple[State, list[Change]]:
    """``state`` after the journaled (done) actions of an unfinished apply: aliases, pointers, configs."""
    pins = {key: held.pin for key, held in state.items()}
    at = ""
    for entry in entries:
        action, at = entry.action, entry.at or at
        kind = action.get("kind")
        for key, pin in list(pins.items()):
            moved = _moved(pin, kind, action)
            if moved is not None:
                pins[key] = moved
    after, changes = _advance(state, pins, deployment_id, at)
    return after, changes


def _moved(pin: LivePin, kind: Any, action: Mapping[str, Any]) -> LivePin | None:
    """``pin`` as one done action left it, or None when the action does not concern it."""
    if kind in ("set_alias", "delete_alias"):
        if int(action.get("profile", 0)) != pin.profile or action.get("model") != pin.model:
            return None
        version = action.get("version") if kind == "set_alias" else None
        if str(action.get("alias", "")).endswith("-staging"):
            return replace(pin, staging=int(version) if version is not None else None)
        return replace(pin, version=int(version)) if version is not None else None
    if kind == "write_profile_pointer" and int(action.get("profile", 0)) == pin.profile:
        return replace(pin, tag=str(action["tag"]), sha256=str(action["sha256"]))
    if kind == "activate_config" and action.get("strategy") == pin.strategy:
        config_id = action.get("config_id")
        return replace(
            pin, config_hash=str(action["config_hash"]), config_id=str(config_id) if config_id else None
        )
    return None


def _done(entries: Iterable[JournalEntry], until: datetime | None = None) -> list[JournalEntry]:
    return [
        entry
        for entry in entries
        if entry.status == "done" and (until is None or parse_stamp(entry.at) <= until)
    ]


def _partial(
    deployment: Deployment, done: Sequence[JournalEntry], moment: datetime, later: bool
) -> Partial:
    finished = _finished(deployment)
    if finished is not None and finished <= moment:
        state = "failed"
    elif deployment.outcome == RUNNING and later:
        state = "interrupted"
    else:
        state = "in progress"
    names = tuple(f"{e.action.get('kind')} {e.action.get('target')}" for e in done)
    return Partial(
        deployment_id=str(deployment.deployment_id),
        state=state,
        outcome=deployment.outcome,
        started_at=deployment.started_at,
        finished_at=deployment.finished_at,
        done=names,
        total=len(deployment.actions),
        error=deployment.error if state == "failed" else None,
    )


def live_state_at(timeline: Timeline, moment: datetime) -> LiveAt:
    """What was live at ``moment`` (see :func:`live_at`)."""
    state: State = {}
    last: Deployment | None = None
    partial: Partial | None = None
    deployments = timeline.deployments
    for number, deployment in enumerate(deployments):
        if parse_stamp(deployment.started_at) > moment:
            break
        last = deployment
        finished = _finished(deployment)
        if deployment.outcome == SUCCEEDED and finished is not None and finished <= moment:
            state, _ = _advance(
                state, timeline.pins(deployment), str(deployment.deployment_id), str(deployment.finished_at)
            )
            partial = None
            continue
        done = _done(timeline.journal(str(deployment.deployment_id)), moment)
        state, _ = _overlay(state, done, str(deployment.deployment_id))
        later = number + 1 < len(deployments)
        partial = _partial(deployment, done, moment, later)
    pins = tuple(state[key] for key in sorted(state))
    return LiveAt(timeline.env, stamp(moment), pins, last, partial)


def history_rows(timeline: Timeline) -> list[HistoryRow]:
    """Every deployment's changes, newest first (the walk starts at the oldest: each change is a diff)."""
    state: State = {}
    groups: list[list[HistoryRow]] = []
    for deployment in timeline.deployments:
        deployment_id = str(deployment.deployment_id)
        at = deployment.finished_at or deployment.started_at
        if deployment.outcome == SUCCEEDED:
            state, changes = _advance(state, timeline.pins(deployment), deployment_id, at)
            note = _succeeded_note(deployment)
        else:
            done = _done(timeline.journal(deployment_id))
            state, changes = _overlay(state, done, deployment_id)
            note = _unfinished_note(deployment, len(done))
        pull_request = timeline.pull_request(deployment)
        found = [HistoryRow(deployment, at, pull_request, change, note) for change in changes]
        groups.append(found or [HistoryRow(deployment, at, pull_request, None, note or "no pin moved")])
    return [row for group in reversed(groups) for row in group]


def _succeeded_note(deployment: Deployment) -> str:
    notes = []
    drift = deployment.plan.get("drift") or ()
    if drift:
        repaired = "; ".join(f"{d.get('kind')} {d.get('target')}" for d in drift)
        notes.append(f"repaired drift: {repaired}")
    for override in deployment.overrides:
        notes.append(
            f"policy override ({', '.join(override.get('rules') or ())}) by "
            f"{override.get('approved_by')}: {override.get('reason')}"
        )
    return "; ".join(notes)


def _unfinished_note(deployment: Deployment, done: int) -> str:
    total = len(deployment.actions)
    if deployment.outcome == FAILED:
        return f"failed after {done} of {total} actions: {deployment.error or 'no error recorded'}"
    return f"never finished ({deployment.outcome}): {done} of {total} actions applied"


# --- the entry points ----------------------------------------------------------------------------------


def _timeline(
    settings: Settings, env: str | Environment, table: KeyValueTable | None, repo: Path | str | None
) -> Timeline:
    from tradai_release.engine.release_table import open_release_table
    from tradai_release.environments import environment

    target = environment(settings, env)  # an unknown env is one line before anything is read
    return Timeline(
        table or open_release_table(settings, target),
        target.name,
        repo if repo is not None else settings.repo,
    )


def history(
    settings: Settings,
    env: str | Environment,
    *,
    profile: str | int | None = None,
    strategy: str | None = None,
    since: str | None = None,
    until: str | None = None,
    table: KeyValueTable | None = None,
    repo: Path | str | None = None,
) -> History:
    """One row per change of ``env``'s pins, newest first (filtered by profile, strategy and time)."""
    number = parse_profile(profile) if profile not in (None, "") else None
    start = parse_instant("history", "--since", since) if since else None
    end = parse_instant("history", "--until", until) if until else None
    if start is not None and end is not None and start > end:
        raise InputError("history", "--since", f"{since} is after --until {until}")
    timeline = _timeline(settings, env, table, repo)
    rows = []
    for row in history_rows(timeline):
        moment = parse_stamp(row.at)
        if (start is not None and moment < start) or (end is not None and moment > end):
            continue
        change = row.change
        if (number is not None or strategy) and change is None:
            continue
        if number is not None and change is not None and change.profile != number:
            continue
        if strategy and change is not None and change.strategy != strategy:
            continue
        rows.append(row)
    filters = {"profile": number, "strategy": strategy or None, "since": since, "until": until}
    return History(timeline.env, tuple(rows), filters)


def live_at(
    settings: Settings,
    env: str | Environment,
    at: str,
    *,
    profile: str | int | None = None,
    strategy: str | None = None,
    table: KeyValueTable | None = None,
    repo: Path | str | None = None,
) -> LiveAt:
    """What was live in ``env`` at ``at`` for every profile x strategy (or the ones asked for), with the
    deployment that made each pin so; an instant inside (or after) an apply that did not finish says so
    and shows what of it was applied."""
    moment = parse_instant("history", "--at", at)
    number = parse_profile(profile) if profile not in (None, "") else None
    found = live_state_at(_timeline(settings, env, table, repo), moment)
    pins = tuple(
        held
        for held in found.pins
        if (number is None or held.pin.profile == number) and (not strategy or held.pin.strategy == strategy)
    )
    return replace(found, pins=pins)
