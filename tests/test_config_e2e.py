"""The config tasks in real git repositories, and the registry against a real moto_server on loopback."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from pathlib import Path
from typing import cast

import pytest

from config_helpers import Clock, create_aws_resources, run_threads
from helpers import commit_all, invoke, tradai_data
from servers import OneWriteAtATime
from tradai_release.configs import ConfigRepository, ConfigStatus, ConfigVersionService
from tradai_release.configs.loader import StrategyConfigLoader
from tradai_release.configs.strategies import list_strategies, upload_strategy
from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import ConfigConflict, InputError, SettingsError, ValidationFailed
from tradai_release.core.settings import EnvOverrides, Settings
from tradai_release.repository.environments import environment
from tradai_release.stores import KeyValueTable

TRADAI = "strategies/PascalStrategy/tradai.yaml"


def bump_stake(repo: Path, stake: int) -> None:
    path = repo / TRADAI
    text = path.read_text()
    lines = [
        f"    stake_amount: {stake}" if line.strip().startswith("stake_amount:") else line
        for line in text.splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")
    assert path.read_text() != text


# --- library functions behind the tasks -----------------------------------------------------------------


def test_upload_records_head_only_for_committed_files(repo: Path) -> None:
    settings = Settings(repo=repo)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    first = upload_strategy(settings, "PascalStrategy", environment(settings, "dev"), trace_id="trace-e2e")
    assert first.created and first.git_commit == head.strip() and first.trace_id == "trace-e2e"
    assert first.description == f"uploaded from {TRADAI} at {head.strip()[:12]}"

    bump_stake(repo, 4321)
    edited = upload_strategy(settings, "PascalStrategy", environment(settings, "dev"))
    assert edited.created and edited.version_number == 2 and edited.git_commit is None
    assert edited.config_data["strategy_service"]["defaults"]["stake_amount"] == 4321
    assert edited.trace_id  # a fresh trace id when none is given
    commit_all(repo, "raise stake")
    again = upload_strategy(settings, "PascalStrategy", environment(settings, "dev"))
    assert again.duplicate and again.config_id == edited.config_id

    service = ConfigVersionService.for_env(environment(settings, "dev"), settings)
    service.activate("PascalStrategy", first.config_id)
    rows = {item.name: item for item in list_strategies(settings, environment(settings, "dev"))}
    assert sorted(rows) == ["MyStrategy", "PascalStrategy"]
    pascal = rows["PascalStrategy"]
    assert (pascal.active_config_id, pascal.versions, pascal.in_sync) == (first.config_id, 2, False)
    assert pascal.config_hash == edited.config_hash and pascal.version == "1.0.0"
    assert rows["MyStrategy"].active_config_id is None and rows["MyStrategy"].versions == 0
    prod = {item.name: item for item in list_strategies(settings, environment(settings, "prod"))}
    assert prod["PascalStrategy"].versions == 0  # each env has its own registry


def test_upload_takes_the_ci_runs_trace_id(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADAI_TRACE_ID", "ci-run-42")
    version = upload_strategy(Settings(repo=repo), "PascalStrategy", environment(Settings(repo=repo), "dev"))
    assert version.trace_id == "ci-run-42"


def test_upload_refuses_bad_input(repo: Path) -> None:
    settings = Settings(repo=repo)
    with pytest.raises(InputError, match=r"no such strategy \(known: MyStrategy, PascalStrategy\)"):
        upload_strategy(settings, "Missing", environment(settings, "dev"))
    with pytest.raises(SettingsError, match="unknown environment 'qa'"):
        upload_strategy(settings, "PascalStrategy", environment(settings, "qa"))
    (repo / TRADAI).write_text((repo / TRADAI).read_text().replace("max_open_trades:", "max_trades:"))
    with pytest.raises(ValidationFailed, match=r"max_trades: unknown key"):
        upload_strategy(settings, "PascalStrategy", environment(settings, "dev"))
    assert (
        ConfigVersionService.for_env(environment(settings, "dev"), settings).list_versions("PascalStrategy")
        == []
    )


# --- the real CLI ---------------------------------------------------------------------------------------


def test_upload_and_strategy_list_tasks(repo: Path) -> None:
    done = invoke(repo, "upload", "--strategy", "PascalStrategy", "--env", "dev")
    assert done.returncode == 0, done.stderr
    assert "created in dev as DRAFT" in done.stdout
    config_id = done.stdout.split(":")[1].split()[0]
    assert config_id.startswith("v1-")

    again = invoke(repo, "upload", "--strategy", "PascalStrategy", "--env", "dev", "--json")
    assert again.returncode == 0, again.stderr
    body = json.loads(again.stdout)
    assert body["created"] is False and body["duplicate"] is True and body["config_id"] == config_id
    assert "unchanged" in invoke(repo, "upload", "--strategy", "PascalStrategy", "--env", "dev").stdout

    listed = invoke(repo, "strategy.list", "--env", "dev", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)["strategies"]}
    assert rows["PascalStrategy"]["versions"] == 1 and rows["PascalStrategy"]["active_config_id"] is None
    table = invoke(repo, "strategy.list")
    assert table.returncode == 0 and "PascalStrategy" in table.stdout and "no active" in table.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("upload", "--env", "dev"), "error: upload: --strategy: required"),
        (("upload", "--strategy", "PascalStrategy"), "error: upload: --env: required"),
        (
            ("upload", "--strategy", "Nope", "--env", "dev"),
            "error: strategies/Nope: --strategy: no such strategy",
        ),
        (
            ("upload", "--strategy", "PascalStrategy", "--env", "qa"),
            "error: settings: env: unknown environment",
        ),
        (("strategy.list", "--env", "qa"), "error: settings: env: unknown environment"),
    ],
)
def test_tasks_refuse_bad_flags_with_one_line(repo: Path, args: tuple[str, ...], expected: str) -> None:
    done = invoke(repo, *args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), done.stderr


# --- against a real moto_server -------------------------------------------------------------------------


@pytest.fixture
def moto_settings(moto_server: str, tmp_path: Path) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    table, bucket = f"tradai-config-versions-e2e-{suffix}", f"tradai-configs-e2e-{suffix}"
    create_aws_resources(AwsOptions(endpoint_url=moto_server, region="us-east-1"), table, bucket)
    return Settings(
        repo=tmp_path,
        aws_endpoint_url=moto_server,
        envs={"dev": EnvOverrides(config_table_uri=f"dynamodb://{table}", config_store_uri=f"s3://{bucket}")},
    )


@pytest.mark.e2e
def test_lifecycle_against_moto_server(moto_settings: Settings) -> None:
    clock = Clock()
    built = ConfigVersionService.for_env(environment(moto_settings, "dev"), moto_settings)
    service = ConfigVersionService(built.table, built.repository, clock=clock)
    assert built.table.name.startswith("dynamodb://tradai-config-versions-e2e-")
    data = {"strategy": {"name": "PascalStrategy"}, "stake": 1000.0, "symbols": ["BTC/USDT:USDT"]}
    first = service.create_version(strategy_name="PascalStrategy", config_data=data, description="one")
    assert service.create_version(strategy_name="PascalStrategy", config_data=data, description="x").duplicate
    second = service.create_version(
        strategy_name="PascalStrategy", config_data={**data, "stake": 2000.5}, description="two"
    )
    service.activate("PascalStrategy", first.config_id)
    service.activate("PascalStrategy", second.config_id)
    newest, older = service.list_versions("PascalStrategy")
    assert (newest.config_id, newest.status) == (second.config_id, ConfigStatus.ACTIVE)
    assert older.status is ConfigStatus.DEPRECATED and older.superseded_by == second.config_id
    assert ConfigRepository(built.repository.store).load("PascalStrategy", first.config_hash) == data
    assert service.active_by_strategy() == {"PascalStrategy": newest}

    service.activate("PascalStrategy", first.config_id)  # rollback
    assert service.get_active("PascalStrategy").config_id == first.config_id  # type: ignore[union-attr]
    clock.advance(days=91)
    assert [v.config_id for v in service.list_versions("PascalStrategy")] == [first.config_id]


@pytest.mark.e2e
def test_concurrent_activations_against_moto_server(moto_settings: Settings) -> None:
    setup = ConfigVersionService.for_env(environment(moto_settings, "dev"), moto_settings)
    versions = [
        setup.create_version(strategy_name="KeplerStrategy", config_data={"n": n}, description="")
        for n in range(8)
    ]
    barrier = threading.Barrier(8)

    def activate(index: int) -> object:
        built = ConfigVersionService.for_env(environment(moto_settings, "dev"), moto_settings)
        table = cast(KeyValueTable, OneWriteAtATime(built.table, barrier))
        service = ConfigVersionService(table, built.repository)
        return service.activate("KeplerStrategy", versions[index].config_id)

    _, errors = run_threads(8, activate)
    assert all(isinstance(err, ConfigConflict) for err in errors), errors
    statuses = [v.status for v in setup.list_versions("KeplerStrategy")]
    assert statuses.count(ConfigStatus.ACTIVE) == 1
    assert statuses.count(ConfigStatus.DEPRECATED) == 7


@pytest.mark.e2e
def test_loader_reads_the_active_config_from_moto_server(moto_settings: Settings) -> None:

    service = ConfigVersionService.for_env(environment(moto_settings, "dev"), moto_settings)
    version = service.create_version(
        strategy_name="PascalStrategy", config_data=tradai_data(), description=""
    )
    service.activate("PascalStrategy", version.config_id)
    loaded = StrategyConfigLoader.for_env(environment(moto_settings, "dev"), moto_settings, environ={}).load(
        "PascalStrategy"
    )
    assert loaded.config_id == version.config_id and loaded.service.stake_amount == 2500
