"""The replay of an environment's deployments, oldest first: what each moved, and what was live at an instant.

A succeeded deployment makes its pins live when it finishes; one that failed, was interrupted or was in
progress moves only what its journal says was done (aliases, pointers, configs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from tradai_release.core.clock import parse_stamp, stamp
from tradai_release.engine.actions import Action, ActivateConfig, DeleteAlias, SetAlias, WriteProfilePointer
from tradai_release.engine.deployments import FAILED, RUNNING, SUCCEEDED
from tradai_release.engine.history.timeline import Timeline
from tradai_release.engine.history.values import (
    Change,
    Held,
    HistoryRow,
    Key,
    LiveAt,
    LivePin,
    Partial,
    State,
)
from tradai_release.engine.release_table import Deployment, JournalEntry


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
        at = entry.at or at
        for key, pin in list(pins.items()):
            moved = _moved(pin, entry.action)
            if moved is not None:
                pins[key] = moved
    after, changes = _advance(state, pins, deployment_id, at)
    return after, changes


def _moved(pin: LivePin, action: Action) -> LivePin | None:
    """``pin`` as one done action left it, or None when the action does not concern it."""
    match action:
        case SetAlias() | DeleteAlias() if action.profile == pin.profile and action.model == pin.model:
            version = action.version if isinstance(action, SetAlias) else None
            if action.staging:
                return replace(pin, staging=version)
            return replace(pin, version=version) if version is not None else None
        case WriteProfilePointer() if action.profile == pin.profile:
            return replace(pin, tag=action.tag, sha256=action.sha256)
        case ActivateConfig() if action.strategy == pin.strategy:
            return replace(pin, config_hash=action.config_hash, config_id=action.config_id or None)
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
    names = tuple(f"{e.action.kind} {e.action.target}" for e in done)
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
