"""Release history on the embedded default: a scripted timeline of applies, asked about at chosen instants."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine_helpers import (
    PROFILES,
    TAG,
    CountingTable,
    commit_all,
    git,
    make_repo,
    push_tag,
    seed_registry,
    set_production,
)
from helpers import invoke
from tradai_release.configs.service import ConfigVersionService
from tradai_release.core.clock import stamp, use_clock
from tradai_release.core.errors import InputError, UnknownEnvironment
from tradai_release.core.settings import Settings
from tradai_release.engine.actions import Action, SetAlias
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.deployments import list_deployments, pull_request_number
from tradai_release.engine.history import history, live_at
from tradai_release.engine.release_table import Deployment, ReleaseTable, open_release_table
from tradai_release.hub.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.repository.environments import environment
from tradai_release.repository.manifest_edit import edit_manifest

TAG2 = "v20261102"
DAY = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


class Clock:
    """The injected clock: set per step, advanced by ten seconds after each action an apply runs."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, day: int, hour: int = 10) -> None:
        self.now = DAY + timedelta(days=day, hours=hour - 10)

    def tick(self, index: int, action: Action) -> None:
        self.now += timedelta(seconds=10)


def at(day: int, hour: int = 12) -> str:
    return stamp(DAY + timedelta(days=day, hours=hour - 10))


# Which strategies each dev profile of this repository pins.
PINNED = {1: ("PascalStrategy",), 2: ("KeplerStrategy", "PascalStrategy")}
PINNED |= {n: ("KeplerStrategy", "MyStrategy", "PascalStrategy") for n in (3, 4, 5)}


def expected(
    versions: dict[tuple[int, str], int], tags: dict[int, tuple[str, str]]
) -> dict[tuple[int, str], tuple]:
    return {
        (profile, strategy): (versions.get((profile, strategy), 1), *tags[profile])
        for profile in PROFILES
        for strategy in PINNED[profile]
    }


def live_pins(found_pins: tuple) -> dict[tuple[int, str], tuple]:
    return {(h.pin.profile, h.pin.strategy): (h.pin.version, h.pin.tag, h.pin.sha256) for h in found_pins}


@dataclass
class Story:
    settings: Settings
    repo: Path
    clock: Clock
    ids: dict[str, str]  # step -> deployment id
    tags: dict[str, tuple[str, str]]
    first_alias: tuple[int, str]  # the (profile, strategy) of the alias the failed apply did move
    inside: str  # an instant inside the second deployment, after its first alias moved
    inside_alias: tuple[int, str]
    counts: dict[str, dict[str, int]]


def counted_table(settings: Settings) -> CountingTable:
    return CountingTable(open_release_table(settings, environment(settings, "dev")))


def run_story(tmp_path: Path) -> Iterator[Story]:
    clock = Clock(DAY)
    with use_clock(clock):
        settings = Settings()
        hub = ModelHub.from_settings(settings)
        sha = push_tag(hub, tmp_path)
        sha2 = push_tag(hub, tmp_path, TAG2, seed=1)
        seed_registry(settings, "dev", 2)
        repo = make_repo(tmp_path, TAG, sha)
        settings = Settings(repo=repo)
        ids: dict[str, str] = {}
        counts: dict[str, dict[str, int]] = {}

        def apply(step: str, day: int) -> Deployment:
            clock.set(day)
            done = apply_env(
                ReleaseContext.open(settings, "dev"), actor=f"actor-{step}", after_action=clock.tick
            )
            ids[step] = str(done.deployment_id)
            return done

        assert apply("first", 1).outcome == "succeeded"

        set_production(repo, "dev", "PascalStrategy", 2)
        commit_all(repo, "Merge pull request #7 from org/promote-pascal\n\nPascalStrategy v2 in dev")
        apply("pascal", 2)

        set_production(repo, "dev", "KeplerStrategy", 2, profiles=(2, 3))
        with edit_manifest(repo / "releases" / "dev" / "profile-2.yaml") as editor:
            editor.set_artifacts(TAG2, sha2)
        kepler = commit_all(repo, "Promote KeplerStrategy v2 in profiles 2 and 3 (#8)")
        apply("kepler", 3)

        git(repo, "revert", "--no-edit", kepler)
        apply("revert", 4)

        set_production(repo, "dev", "MyStrategy", 2)
        commit_all(repo, "MyStrategy v2 in dev")
        moved: list[tuple[int, str]] = []

        def crash(index: int, action: Action) -> None:
            clock.tick(index, action)
            if isinstance(action, SetAlias):
                moved.append((action.profile, "MyStrategy"))
                raise RuntimeError("injected crash after the first alias")

        clock.set(5)
        with pytest.raises(RuntimeError, match="injected crash"):
            apply_env(ReleaseContext.open(settings, "dev"), actor="actor-failed", after_action=crash)
        ids["failed"] = str(list_deployments(settings, environment(settings, "dev"))[0].deployment_id)
        table = counted_table(settings)
        history(ReleaseContext.open(settings, "dev"), table=table)
        counts["history after 5"] = dict(table.reads)

        apply("converge", 6)

        clock.set(7, hour=9)
        MlflowRegistry.for_env(environment(settings, "dev"), settings).set_alias(
            "PascalStrategy", "p1", 1
        )  # a hand change in the UI
        apply("repair", 7)

        # an instant inside the second apply: its first alias had moved, the others had not
        table = counted_table(settings)
        journal = [
            entry
            for entry in ReleaseTable(table.inner, "dev").journal(ids["pascal"])
            if isinstance(entry.action, SetAlias)
        ]
        first = journal[0]
        assert isinstance(first.action, SetAlias)
        inside_alias = (first.action.profile, "PascalStrategy")
        yield Story(
            settings,
            repo,
            clock,
            ids,
            {"main": (TAG, sha), "second": (TAG2, sha2)},
            moved[0],
            first.at,
            inside_alias,
            counts,
        )


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    yield from run_story(tmp_path)


def test_history_at_chosen_instants_returns_exactly_the_pins_live_then(story: Story) -> None:
    settings, ids = story.settings, story.ids
    main, second = story.tags["main"], story.tags["second"]
    tags = {profile: main for profile in PROFILES}
    pascal2 = {(p, "PascalStrategy"): 2 for p in PROFILES}
    kepler2 = {(2, "KeplerStrategy"): 2, (3, "KeplerStrategy"): 2}
    my2 = {(p, "MyStrategy"): 2 for p in (3, 4, 5)}

    before = live_at(ReleaseContext.open(settings, "dev"), at(1, hour=9))
    assert before.pins == () and before.deployment is None

    first = live_at(ReleaseContext.open(settings, "dev"), at(1))
    assert live_pins(first.pins) == expected({}, tags)
    assert {h.deployment_id for h in first.pins} == {ids["first"]} and first.partial is None
    active = ConfigVersionService.for_env(environment(settings, "dev"), settings).active_by_strategy()
    assert {h.pin.strategy: h.pin.config_id for h in first.pins} == {
        n: c.config_id for n, c in active.items()
    }

    inside = live_at(ReleaseContext.open(settings, "dev"), story.inside)
    assert live_pins(inside.pins) == expected({story.inside_alias: 2}, tags)
    assert inside.partial is not None and inside.partial.state == "in progress"
    assert (
        inside.partial.deployment_id == ids["pascal"] and 0 < len(inside.partial.done) < inside.partial.total
    )

    promoted = live_at(ReleaseContext.open(settings, "dev"), at(2))
    assert live_pins(promoted.pins) == expected(pascal2, tags) and promoted.partial is None

    kepler = live_at(ReleaseContext.open(settings, "dev"), at(3))
    assert live_pins(kepler.pins) == expected(pascal2 | kepler2, {**tags, 2: second})

    reverted = live_at(ReleaseContext.open(settings, "dev"), at(4))
    assert live_pins(reverted.pins) == expected(pascal2, tags)
    made_so = {(h.pin.profile, h.pin.strategy): h.deployment_id for h in reverted.pins}
    assert made_so[(3, "KeplerStrategy")] == ids["revert"] and made_so[(2, "PascalStrategy")] == ids["revert"]
    assert made_so[(4, "PascalStrategy")] == ids["pascal"] and made_so[(5, "MyStrategy")] == ids["first"]

    failed = live_at(ReleaseContext.open(settings, "dev"), at(5))
    assert live_pins(failed.pins) == expected(pascal2 | {story.first_alias: 2}, tags)
    assert failed.partial is not None and failed.partial.state == "failed"
    assert failed.partial.deployment_id == ids["failed"] and "injected crash" in str(failed.partial.error)
    assert failed.partial.done[-1] == f"set_alias MyStrategy@p{story.first_alias[0]}"

    converged = live_at(ReleaseContext.open(settings, "dev"), at(6))
    assert live_pins(converged.pins) == expected(pascal2 | my2, tags) and converged.partial is None

    repaired = live_at(ReleaseContext.open(settings, "dev"), at(7))
    assert live_pins(repaired.pins) == live_pins(converged.pins)
    assert repaired.deployment is not None and repaired.deployment.deployment_id == ids["repair"]
    assert {h.deployment_id for h in repaired.pins} == {h.deployment_id for h in converged.pins}

    only = live_at(ReleaseContext.open(settings, "dev"), at(6), profile="3", strategy="MyStrategy")
    assert [(h.pin.profile, h.pin.strategy, h.pin.version) for h in only.pins] == [(3, "MyStrategy", 2)]


def test_history_rows_match_the_deployment_records(story: Story) -> None:
    settings, ids = story.settings, story.ids
    records = list_deployments(settings, environment(settings, "dev"))
    assert [d.deployment_id for d in records] == [
        ids[s] for s in ("repair", "converge", "failed", "revert", "kepler", "pascal", "first")
    ]
    rows = history(ReleaseContext.open(settings, "dev")).rows
    assert sorted({r.deployment.deployment_id for r in rows}) == sorted(d.deployment_id for d in records)
    by_id = {d.deployment_id: d for d in records}
    for row in rows:
        record = by_id[row.deployment.deployment_id]
        assert (
            row.deployment.outcome,
            row.deployment.commit,
            row.deployment.actor,
            row.deployment.trace_id,
        ) == (record.outcome, record.commit, record.actor, record.trace_id)
        assert row.at == (record.finished_at or record.started_at)
    assert [r.at for r in rows] == sorted((r.at for r in rows), reverse=True)  # newest first

    def moved(step: str) -> list[tuple[int, str, int | None, int | None]]:
        return [
            (
                r.change.profile,
                r.change.strategy,
                getattr(r.change.before, "version", None),
                getattr(r.change.after, "version", None),
            )
            for r in rows
            if r.deployment.deployment_id == ids[step] and r.change is not None
        ]

    assert moved("pascal") == [(p, "PascalStrategy", 1, 2) for p in PROFILES]
    pascal_row = next(r for r in rows if r.deployment.deployment_id == ids["pascal"])
    assert pascal_row.pull_request == 7
    assert {r.pull_request for r in rows if r.deployment.deployment_id == ids["kepler"]} == {8}
    kepler = [r.change for r in rows if r.deployment.deployment_id == ids["kepler"] and r.change is not None]
    assert {(c.profile, c.strategy) for c in kepler} == {
        (2, "KeplerStrategy"),
        (2, "PascalStrategy"),
        (3, "KeplerStrategy"),
    }
    assert all(c.after.tag == TAG2 for c in kepler if c.profile == 2 and c.after is not None)
    assert moved("failed") == [(*story.first_alias, 1, 2)]
    failed = [r for r in rows if r.deployment.deployment_id == ids["failed"]]
    assert failed[0].deployment.outcome == "failed" and "injected crash" in failed[0].note
    repair = [r for r in rows if r.deployment.deployment_id == ids["repair"]]
    assert len(repair) == 1 and repair[0].change is None
    assert repair[0].note == "repaired drift: alias PascalStrategy@p1"
    failed_record = by_id[ids["failed"]]
    assert failed_record.pins is not None and all(p["config_id"] is None for p in failed_record.pins)
    assert {(p["profile"], p["strategy"]): p["version"] for p in failed_record.pins}[(5, "MyStrategy")] == 2
    assert by_id[ids["converge"]].pins and all(p["config_id"] for p in by_id[ids["converge"]].pins)
    converge = moved("converge")
    assert sorted(converge) == sorted(
        (p, "MyStrategy", 1, 2) for p in (3, 4, 5) if (p, "MyStrategy") != story.first_alias
    )

    only = history(ReleaseContext.open(settings, "dev"), profile="3", strategy="KeplerStrategy").rows
    assert [
        (r.deployment.deployment_id, r.change.before.version, r.change.after.version)  # type: ignore[union-attr]
        for r in only
        if r.change and r.change.before
    ] == [(ids["revert"], 2, 1), (ids["kepler"], 1, 2)]
    window = history(ReleaseContext.open(settings, "dev"), since=at(3, hour=0), until=at(4, hour=23)).rows
    assert {r.deployment.deployment_id for r in window} == {ids["kepler"], ids["revert"]}


def test_backend_calls_per_query_do_not_grow_with_deployments(story: Story) -> None:
    settings = story.settings
    # deployments, the journal of the failed one, and progress's decisions
    assert story.counts["history after 5"] == {"query": 3}
    table = counted_table(settings)
    history(ReleaseContext.open(settings, "dev"), table=table)
    assert dict(table.reads) == {"query": 3} and not table.writes  # seven deployments: still three queries
    for moment, queries in ((at(4), 1), (at(5), 2), (at(7), 2), (story.inside, 2)):
        table = counted_table(settings)
        live_at(ReleaseContext.open(settings, "dev"), moment, table=table)
        assert dict(table.reads) == {"query": queries}, moment


def test_records_without_pins_are_read_from_git_objects(story: Story) -> None:
    settings = story.settings
    table = open_release_table(settings, environment(settings, "dev"))
    new = {
        moment: live_pins(live_at(ReleaseContext.open(settings, "dev"), moment).pins)
        for moment in (at(2), at(3), at(4), at(7))
    }
    for item in table.query("dev", prefix="deploy#"):  # the stored items, as they are
        old = {key: value for key, value in item.items() if key not in ("pins", "pull_request", "overrides")}
        table.put(old)  # as an apply before this change recorded it
    for moment, pins in new.items():
        found = live_at(ReleaseContext.open(settings, "dev"), moment)
        assert live_pins(found.pins) == pins
        assert all(h.pin.config_id is None for h in found.pins)  # unknown without the record's pins
    rows = history(ReleaseContext.open(settings, "dev")).rows
    assert {r.pull_request for r in rows if r.deployment.deployment_id == story.ids["pascal"]} == {7}


def test_bad_history_input_is_one_error_line(tmp_path: Path) -> None:
    settings = Settings(repo=make_repo(tmp_path, TAG, "0" * 64))
    with pytest.raises(InputError, match="--at: 'yesterday' is not an ISO 8601 instant"):
        live_at(ReleaseContext.open(settings, "dev"), "yesterday")
    with pytest.raises(InputError, match=r"--since: .* is after --until"):
        history(ReleaseContext.open(settings, "dev"), since=at(5), until=at(2))
    with pytest.raises(UnknownEnvironment):
        history(ReleaseContext.open(settings, "qa"))
    with pytest.raises(InputError, match="profile"):
        history(ReleaseContext.open(settings, "dev"), profile="zero")
    assert history(ReleaseContext.open(settings, "dev")).rows == ()  # nothing applied yet: no rows, no error


@pytest.mark.parametrize(
    ("message", "number"),
    [
        ("Merge pull request #12 from org/branch\n\nbody", 12),
        ("Promote PascalStrategy v2 (#345)\n\n* squashed", 345),
        ("Roll back dev to 1a2b3c (deployment d1)", None),
        ("fix #12 in the middle", None),
        ("", None),
    ],
)
def test_pull_request_number_from_merge_and_squash_messages(message: str, number: int | None) -> None:
    assert pull_request_number(message) == number


def test_history_task(story: Story) -> None:
    done = invoke(story.repo, "history", "--env", "dev", "--at", at(4), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["deployment_id"] == story.ids["revert"] and len(data["pins"]) == 12
    assert {p["version"] for p in data["pins"] if p["strategy"] == "PascalStrategy"} == {2}

    done = invoke(story.repo, "history", "--env", "dev", "--strategy", "KeplerStrategy")
    assert done.returncode == 0, done.stderr
    assert "KeplerStrategy p3: v1 -> v2" in done.stdout and "#8" in done.stdout

    done = invoke(story.repo, "history", "--env", "dev", "--at", at(4), "--since", at(1))
    assert done.returncode == 1 and done.stderr.startswith("error: history: --at:")
    assert len(done.stderr.splitlines()) == 1


def test_clock_is_restored_after_use() -> None:
    frozen: Callable[[], datetime] = lambda: DAY  # noqa: E731
    with use_clock(frozen):
        assert stamp() == "2026-11-02T10:00:00+00:00"
    assert stamp() != "2026-11-02T10:00:00+00:00"
