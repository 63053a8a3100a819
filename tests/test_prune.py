"""Prune on the embedded default (MLflow on SQLite, local hub, env-file bots): what no manifest declares any
more is listed as orphans with ``prune: false`` and retired with ``prune: true``; a strategy or profile that
comes back is an ordinary apply."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine_helpers import commit_all, embedded_repo, git, set_production
from tradai_release.configs.entities import ConfigStatus
from tradai_release.configs.service import DEPRECATED_TTL, ConfigVersionService
from tradai_release.core.errors import ConfigConflict, InputError
from tradai_release.core.settings import Settings
from tradai_release.engine import actions as A
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.plan import Plan, plan_env
from tradai_release.engine.release_table import ReleaseTable
from tradai_release.engine.state import EngineBackends
from tradai_release.hub.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.registry.lifecycle import current_lifecycle
from tradai_release.render.plan import render_markdown, render_text
from tradai_release.repository.bots import BotKey
from tradai_release.repository.environments import environment
from tradai_release.repository.manifest_edit import edit_manifest
from tradai_release.repository.policy import Policy
from tradai_release.targets import DeployStamp
from tradai_release.targets.envfile import EnvFileTarget
from tradai_release.workflows.validate import validate_repository

PRUNED_PROFILES = (3, 4, 5)  # the dev profiles that run MyStrategy


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return embedded_repo(tmp_path, 2)


def set_prune(repo: Path, prune: bool) -> str:
    policy = f"environments: [dev, staging, prod]\nprune: {str(prune).lower()}\n"
    (repo / "releases" / "policy.yaml").write_text(policy)
    return commit_all(repo, f"policy: prune {prune}")


def remove_strategy(repo: Path, strategy: str, profiles: tuple[int, ...]) -> str:
    for profile in profiles:
        with edit_manifest(repo / "releases" / "dev" / f"profile-{profile}.yaml") as editor:
            editor.remove_strategy(strategy)
    return commit_all(repo, f"stop running {strategy} in dev")


def retire_targets(actions: tuple[A.Action, ...] | list[A.Action]) -> list[tuple[str, str]]:
    return [(a.kind, a.target) for a in actions if a.retires]


def aliases(registry: MlflowRegistry, name: str) -> dict[str, int]:
    return {alias: info.version for info in registry.versions([name])[name] for alias in info.aliases}


def lifecycle(registry: MlflowRegistry, name: str, version: int) -> tuple[str, str]:
    info = next(i for i in registry.versions([name])[name] if i.version == version)
    return current_lifecycle(info), info.stage


def bot_files(settings: Settings) -> set[str]:
    return {path.name for path in (settings.state_dir / "dev" / "bots").glob("*.env")}


def assert_converged(settings: Settings) -> Plan:
    plan = plan_env(ReleaseContext.open(settings, "dev"))
    assert plan.empty and plan.actions == ()
    return plan


MY_ORPHANS = [
    *[(A.RetireBot.kind, f"dev/MyStrategy-p{p}") for p in PRUNED_PROFILES],
    *[(A.RetireAlias.kind, f"MyStrategy@p{p}") for p in PRUNED_PROFILES],
    (A.RetireVersion.kind, "MyStrategy/v1"),
    (A.RetireConfig.kind, "MyStrategy"),
]


def test_a_strategy_no_profile_runs_is_an_orphan_until_prune_retires_it_and_comes_back_on_apply(
    repo: Path,
) -> None:
    settings = Settings(repo=repo)
    registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)
    configs = ConfigVersionService.for_env(environment(settings, "dev"), settings)
    assert apply_env(ReleaseContext.open(settings, "dev")).outcome == "succeeded"
    active = configs.get_active("MyStrategy")
    assert active is not None
    files = bot_files(settings)
    assert {f"MyStrategy-p{p}.env" for p in PRUNED_PROFILES} <= files

    # prune off (the default): the plan lists the orphans, apply records the commit and changes nothing
    removed = remove_strategy(repo, "MyStrategy", PRUNED_PROFILES)
    plan = plan_env(ReleaseContext.open(settings, "dev"))
    assert retire_targets(plan.orphans) == MY_ORPHANS and retire_targets(plan.actions) == []
    assert [a.kind for a in plan.actions] == [A.RecordDeployment.kind]
    assert plan.actions[0].reason.endswith("8 orphan(s) left as they are: prune is off)")
    assert plan.to_dict()["prune"] is False and len(plan.to_dict()["orphans"]) == len(MY_ORPHANS)
    markdown = render_markdown(plan)
    assert "[!WARNING]\n> **Orphans**: 8 live value(s)" in markdown and "`MyStrategy@p4`" in markdown
    text = render_text(plan)
    assert "orphans: 8 live value(s) no manifest of dev declares" in text
    assert "~ retire_config MyStrategy: ACTIVE " in text

    deployment = apply_env(ReleaseContext.open(settings, "dev"))
    assert [a["kind"] for a in deployment.actions] == [A.RecordDeployment.kind]
    assert aliases(registry, "MyStrategy") == {f"p{p}": 1 for p in PRUNED_PROFILES}
    assert lifecycle(registry, "MyStrategy", 1) == ("Production", "Production")
    assert configs.get_active("MyStrategy") == active
    assert bot_files(settings) == files
    after = assert_converged(settings)  # only orphans, prune off: converged (apply's final check passes)
    assert retire_targets(after.orphans) == MY_ORPHANS
    assert "In sync: nothing to do." in render_markdown(after) and "**Orphans**" in render_markdown(after)

    # prune on: apply retires them, journaled like every action, in phase order
    set_prune(repo, True)
    plan = plan_env(ReleaseContext.open(settings, "dev"))
    assert plan.orphans == () and plan.prune
    assert retire_targets(plan.actions) == MY_ORPHANS
    assert [a.kind for a in plan.actions][-1] == A.RecordDeployment.kind
    assert "### Retire (prune)" in render_markdown(plan)
    before = time.time()
    deployment = apply_env(ReleaseContext.open(settings, "dev"))
    assert deployment.outcome == "succeeded"
    releases = EngineBackends.from_settings(settings, environment(settings, "dev")).releases
    journal = ReleaseTable(releases, "dev").journal(str(deployment.deployment_id))
    assert retire_targets([e.action for e in journal]) == MY_ORPHANS
    assert {e.status for e in journal} == {"done"}

    assert aliases(registry, "MyStrategy") == {}
    assert lifecycle(registry, "MyStrategy", 1) == ("Archived", "Archived")
    assert configs.get_active("MyStrategy") is None
    retired = configs.get_version("MyStrategy", active.config_id)
    assert retired.status is ConfigStatus.DEPRECATED and retired.expires_at is not None
    ttl = DEPRECATED_TTL.total_seconds()
    assert before + ttl - 5 <= retired.expires_at <= time.time() + ttl + 5
    assert bot_files(settings) == files - {f"MyStrategy-p{p}.env" for p in PRUNED_PROFILES}
    assert aliases(registry, "PascalStrategy") == {f"p{p}": 1 for p in range(1, 6)}  # others untouched
    after = assert_converged(settings)
    assert after.orphans == ()

    # the strategy comes back: an ordinary apply restores aliases, lifecycle, the same config, the bots
    git(repo, "revert", "--no-edit", removed)
    assert retire_targets(plan_env(ReleaseContext.open(settings, "dev")).actions) == []
    apply_env(ReleaseContext.open(settings, "dev"))
    assert aliases(registry, "MyStrategy") == {f"p{p}": 1 for p in PRUNED_PROFILES}
    assert lifecycle(registry, "MyStrategy", 1) == ("Production", "Production")
    again = configs.get_active("MyStrategy")
    assert again is not None and again.config_id == active.config_id and again.expires_at is None
    assert bot_files(settings) == files
    assert_converged(settings)


def test_a_deleted_profile_is_an_orphan_until_prune_retires_it_and_comes_back_on_apply(repo: Path) -> None:
    settings = Settings(repo=repo)
    registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)
    hub = ModelHub.from_settings(settings)
    set_production(repo, "dev", "MyStrategy", 2, profiles=[5])  # v2: pinned by profile 5 only
    commit_all(repo, "profile 5 runs MyStrategy v2")
    apply_env(ReleaseContext.open(settings, "dev"))
    pointer = hub.get_profile_pointer("dev", 5)
    assert pointer is not None
    files = bot_files(settings)
    profile_5 = {name for name in files if name.endswith("-p5.env")}
    assert len(profile_5) == 3

    (repo / "releases" / "dev" / "profile-5.yaml").unlink()
    deleted = commit_all(repo, "delete dev profile 5")
    orphans = [
        *[(A.RetireBot.kind, f"dev/{name.removesuffix('.env')}") for name in sorted(profile_5)],
        *[(A.RetireAlias.kind, f"{name}@p5") for name in ("KeplerStrategy", "MyStrategy", "PascalStrategy")],
        (A.RetireVersion.kind, "MyStrategy/v2"),
        (A.RetirePointer.kind, "dev/profile-5"),
    ]
    plan = plan_env(ReleaseContext.open(settings, "dev"))
    assert retire_targets(plan.orphans) == orphans and retire_targets(plan.actions) == []
    reasons = {a.reason for a in plan.orphans if a.kind != A.RetireVersion.kind}
    assert reasons == {"profile 5 has no manifest in dev any more"}
    apply_env(ReleaseContext.open(settings, "dev"))
    assert hub.get_profile_pointer("dev", 5) == pointer
    assert aliases(registry, "MyStrategy") == {"p3": 1, "p4": 1, "p5": 2}
    assert lifecycle(registry, "MyStrategy", 2) == ("Production", "Production")
    assert bot_files(settings) == files
    assert retire_targets(assert_converged(settings).orphans) == orphans

    set_prune(repo, True)
    assert retire_targets(plan_env(ReleaseContext.open(settings, "dev")).actions) == orphans
    apply_env(ReleaseContext.open(settings, "dev"))
    assert hub.get_profile_pointer("dev", 5) is None
    assert aliases(registry, "MyStrategy") == {"p3": 1, "p4": 1}
    assert lifecycle(registry, "MyStrategy", 2) == ("Archived", "Archived")
    assert lifecycle(registry, "MyStrategy", 1) == ("Production", "Production")  # p3, p4 still run it
    assert bot_files(settings) == files - profile_5
    assert (
        ConfigVersionService.for_env(environment(settings, "dev"), settings).get_active("MyStrategy")
        is not None
    )
    assert assert_converged(settings).orphans == ()

    git(repo, "revert", "--no-edit", deleted)
    apply_env(ReleaseContext.open(settings, "dev"))
    restored = hub.get_profile_pointer("dev", 5)
    assert restored is not None and (restored.tag, restored.sha256) == (pointer.tag, pointer.sha256)
    assert aliases(registry, "MyStrategy") == {"p3": 1, "p4": 1, "p5": 2}
    assert lifecycle(registry, "MyStrategy", 2) == ("Production", "Production")
    assert bot_files(settings) == files
    assert_converged(settings)


def test_a_strategy_dropped_from_one_profile_stops_its_bot_in_the_same_apply_prune_or_not(repo: Path) -> None:
    """Dropping a strategy from one profile while others still run it is a pin change: the profile's
    alias and its bot go together (the env file is removed), not left behind as an orphan."""
    settings = Settings(repo=repo)
    registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)
    apply_env(ReleaseContext.open(settings, "dev"))
    files = bot_files(settings)
    assert "MyStrategy-p3.env" in files

    remove_strategy(repo, "MyStrategy", (3,))
    plan = plan_env(ReleaseContext.open(settings, "dev"))
    assert plan.orphans == ()
    stops = [(a.kind, a.target, a.reason) for a in plan.actions if a.kind == A.RetireBot.kind]
    assert stops == [(A.RetireBot.kind, "dev/MyStrategy-p3", "profile 3 no longer runs MyStrategy")]
    assert [a.target for a in plan.actions if a.kind == A.DeleteAlias.kind] == ["MyStrategy@p3"]

    deployment = apply_env(ReleaseContext.open(settings, "dev"))
    assert deployment.outcome == "succeeded"
    assert bot_files(settings) == files - {"MyStrategy-p3.env"}
    assert aliases(registry, "MyStrategy") == {"p4": 1, "p5": 1}
    assert_converged(settings)


def test_a_strategy_moved_to_another_model_is_a_pin_change_not_prune(repo: Path) -> None:
    """The strategy still runs: its old model's aliases move as they always did, prune or not."""
    settings = Settings(repo=repo)
    apply_env(ReleaseContext.open(settings, "dev"))
    registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)
    registry.create_registered_model_if_missing("MyStrategyNext")
    registry.client.create_model_version(
        "MyStrategyNext", "file:///nonexistent/next",
        tags={"strategy_name": "MyStrategy", "feature_count": "9", "trace_id": "t", "git_commit": "0" * 40},
    )
    for profile in PRUNED_PROFILES:
        path = repo / "releases" / "dev" / f"profile-{profile}.yaml"
        path.write_text(path.read_text().replace("name: MyStrategy", "name: MyStrategyNext"))
    commit_all(repo, "MyStrategy runs the MyStrategyNext model")
    plan = plan_env(ReleaseContext.open(settings, "dev"))
    assert plan.orphans == ()
    deletes = sorted(a.target for a in plan.actions if a.kind == A.DeleteAlias.kind)
    assert deletes == [f"MyStrategy@p{p}" for p in PRUNED_PROFILES]


def test_an_alias_set_by_hand_on_a_model_no_apply_recorded_is_an_orphan_and_stays_out_of_the_record(
    repo: Path,
) -> None:
    settings = Settings(repo=repo)
    apply_env(ReleaseContext.open(settings, "dev"))
    registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)
    registry.create_registered_model_if_missing("Stray")
    registry.client.create_model_version("Stray", "file:///stray", tags={"strategy_name": "MyStrategy"})
    registry.set_alias("Stray", "p2", 1)
    registry.set_alias("Stray", "champion", 1)  # not an alias this tool manages

    plan = plan_env(ReleaseContext.open(settings, "dev"))
    assert plan.empty and [(a.kind, a.target, a.reason) for a in plan.orphans] == [
        (A.RetireAlias.kind, "Stray@p2", "no manifest of dev pins Stray (found through its live aliases)")
    ]
    assert (
        apply_env(ReleaseContext.open(settings, "dev")).outcome == "noop"
    )  # nothing recorded: Stray is not this env's

    set_prune(repo, True)
    assert retire_targets(plan_env(ReleaseContext.open(settings, "dev")).actions) == [
        (A.RetireAlias.kind, "Stray@p2")
    ]
    apply_env(ReleaseContext.open(settings, "dev"))
    assert aliases(registry, "Stray") == {"champion": 1}
    assert_converged(settings)


# --- the parts prune relies on --------------------------------------------------------------------------


def test_deprecate_retires_only_the_active_version_and_activate_brings_it_back(repo: Path) -> None:
    settings = Settings(repo=repo)
    configs = ConfigVersionService.for_env(environment(settings, "dev"), settings)
    first = configs.create_version(strategy_name="Alpha", config_data={"a": 1})
    second = configs.create_version(strategy_name="Alpha", config_data={"a": 2})
    configs.activate("Alpha", first.config_id)
    with pytest.raises(ConfigConflict, match=r"not the ACTIVE version \(ACTIVE: v1-"):
        configs.deprecate("Alpha", second.config_id)
    deprecated = configs.deprecate("Alpha", first.config_id)
    assert deprecated.status is ConfigStatus.DEPRECATED and deprecated.expires_at is not None
    assert configs.get_active("Alpha") is None and "Alpha" not in configs.active_by_strategy()
    assert configs.deprecate("Alpha", first.config_id) == deprecated  # done already: unchanged
    assert configs.find_by_hash("Alpha", first.config_hash) == deprecated  # still found until the TTL
    back = configs.activate("Alpha", first.config_id)
    assert back.status is ConfigStatus.ACTIVE and back.expires_at is None


def test_env_file_target_lists_only_its_own_undeclared_pinned_files(tmp_path: Path) -> None:
    target = EnvFileTarget(tmp_path / "bots")
    stamp = DeployStamp("c" * 40, "d1", "t1")
    (tmp_path / "bots").mkdir()
    (tmp_path / "bots" / "notes.env").write_text("A=1\n")  # not a bot's name
    (tmp_path / "bots" / "Other-p2.env").write_text("A=1\n")  # a bot's name without pins
    (tmp_path / "bots" / "Foreign-p1.env").write_text("TRADAI_ENV=prod\nTRADAI_HUB_TAG=v1\n")  # another env
    (tmp_path / "bots" / "Mine-p1.env").write_text("TRADAI_ENV=dev\nTRADAI_HUB_TAG=v1\n")
    (tmp_path / "bots" / "Kept-p3.env").write_text("TRADAI_ENV=dev\nTRADAI_HUB_TAG=v1\n")
    found = target.undeclared("dev", [BotKey("dev", 3, "Kept")])
    assert list(found) == [BotKey("dev", 1, "Mine")]
    target.retire(BotKey("dev", 1, "Mine"), stamp)
    target.retire(BotKey("dev", 1, "Mine"), stamp)  # gone already: nothing to do
    assert target.undeclared("dev", [BotKey("dev", 3, "Kept")]) == {}
    assert EnvFileTarget(tmp_path / "absent").undeclared("dev", []) == {}


def test_prune_must_be_a_boolean_in_policy_yaml(repo: Path) -> None:
    (repo / "releases" / "policy.yaml").write_text("prune: yes please\n")
    commit_all(repo, "a prune that is not a boolean")
    report = validate_repository(repo, offline=True)
    assert [(p.file, p.field) for p in report.problems] == [("releases/policy.yaml:1", "prune")]
    assert report.problems[0].reason == 'expected boolean, got string "yes please"'
    # plan reads the policy of the commit it plans, and names the commit's file
    with pytest.raises(InputError, match=r"^HEAD:releases/policy.yaml:1: prune: expected boolean"):
        plan_env(ReleaseContext.open(Settings(repo=repo), "dev"))
    assert Policy.from_dict({}).prune is False and Policy.from_dict({"prune": True}).prune is True


class Crash(Exception):
    """The process dies between two actions."""


def test_a_prune_that_dies_half_way_converges_when_run_again(repo: Path) -> None:
    settings = Settings(repo=repo)
    registry = MlflowRegistry.for_env(environment(settings, "dev"), settings)
    apply_env(ReleaseContext.open(settings, "dev"))
    set_prune(repo, True)
    remove_strategy(repo, "MyStrategy", PRUNED_PROFILES)

    def crash(index: int, action: A.Action) -> None:
        if action.kind == A.RetireAlias.kind:
            raise Crash(f"killed after {action.target}")

    with pytest.raises(Crash):
        apply_env(ReleaseContext.open(settings, "dev"), after_action=crash)
    left = retire_targets(
        plan_env(ReleaseContext.open(settings, "dev")).actions
    )  # the bots and one alias are retired already
    assert left == [(k, t) for k, t in MY_ORPHANS if k != A.RetireBot.kind and t != "MyStrategy@p3"]
    assert apply_env(ReleaseContext.open(settings, "dev")).outcome == "succeeded"
    assert aliases(registry, "MyStrategy") == {}
    assert lifecycle(registry, "MyStrategy", 1) == ("Archived", "Archived")
    assert (
        ConfigVersionService.for_env(environment(settings, "dev"), settings).get_active("MyStrategy") is None
    )
    assert_converged(settings)
