"""A bot's start-up (tradai_release.runtime): pinned files by content, one strategy pulled, config and
compat checked, live-state resolution after an apply, and the module command's exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from engine_helpers import (
    STRATEGIES,
    TAG,
    World,
    embedded_repo,
    features_of,
    git,
    make_world,
)
from hub_helpers import make_models_dir, snapshot
from tradai_release.core.errors import HubIntegrityError, InputError, PinMismatch
from tradai_release.core.settings import Settings
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.release_table import ReleaseTable
from tradai_release.engine.state import EngineBackends
from tradai_release.repository import bots
from tradai_release.runtime import start_bot
from tradai_release.runtime.__main__ import main
from tradai_release.runtime.launch import Launch
from tradai_release.runtime.ready import RECORD_FIELDS, Ready

STRATEGY = "PascalStrategy"
CHANGED = ("signal/ensemble_rf.onnx", "position/position_rf.onnx")


@pytest.fixture
def world(tmp_path: Path, isolated_environment: Path) -> World:
    """The dev environment applied from a repository whose profiles pin TAG (a fake registry)."""
    built = make_world(tmp_path, isolated_environment)
    assert built.apply().outcome == "succeeded"
    return built


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """``main()`` in-process on the world's backends (settings would build an MLflow registry)."""
    monkeypatch.setattr(
        EngineBackends, "from_settings", classmethod(lambda cls, settings, env: world.counted.backends)
    )
    monkeypatch.setenv("TRADAI_REPO", str(world.repo))
    return world


def identity(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root`` with inode, mtime and bytes: equal means not rewritten."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def retrain(world: World, tag: str, *, features: tuple[str, ...] | None = None) -> tuple[str, dict[str, int]]:
    """A tag made from TAG with PascalStrategy's CHANGED files (or, with ``features``, a whole new
    PascalStrategy bundle of that compat); returns its sha256 and the sizes of the files that changed."""
    models = world.repo.parent / f"retrained-{tag}"
    if features is not None:
        make_models_dir(models, (STRATEGY,), size=80, features=features)
        sizes = {}
    else:
        world.hub.pull(models / "src", tag=TAG, strategies=[STRATEGY])
        shutil.move(models / "src" / STRATEGY, models / STRATEGY)
        shutil.rmtree(models / "src")
        sizes = {}
        for number, rel in enumerate(CHANGED):
            data = os.urandom(300 + 100 * number)
            (models / STRATEGY / rel).write_bytes(data)
            sizes[f"{STRATEGY}/{rel}"] = len(data)
    pushed = world.hub.compose(models, [STRATEGY], source=TAG, tag=tag, message="retrained")
    return pushed.manifest_sha256, sizes


def pins(world: World, tag: str, sha256: str, **changes: object) -> dict[str, str]:
    """The variables a deployment of PascalStrategy in dev profile 3 carries."""
    active = world.counted.backends.configs.get_active(STRATEGY)
    assert active is not None
    values: dict[str, object] = {
        "env": "dev",
        "profile": 3,
        "strategy": STRATEGY,
        "config_id": active.config_id,
        "config_hash": active.config_hash,
        "model_name": STRATEGY,
        "model_version": 1,
        "hub_tag": tag,
        "hub_sha256": sha256,
        "image": "registry.example/tradai-bot:1.4.0",
    }
    values.update(changes)
    return bots.BotPins(**values).variables()  # type: ignore[arg-type]


def start(world: World, variables: dict[str, str], models: Path, **kwargs: object) -> Ready:
    return start_bot(
        world.settings, variables=variables, models_dir=models, backends=world.counted.backends, **kwargs
    )  # type: ignore[arg-type]


def bot_models(world: World) -> Path:
    """A bot host's models dir holding TAG (every strategy)."""
    models = world.repo.parent / "bot" / "models"
    world.hub.pull(models, tag=TAG)
    return models


def test_stale_bundle_pulls_only_the_changed_files_of_its_strategy(world: World) -> None:
    models = bot_models(world)
    others = {name: identity(models / name) for name in STRATEGIES if name != STRATEGY}
    sha2, changed = retrain(world, "v2")
    hub_reads = world.counted.stores[1].reads
    hub_reads.clear()

    ready = start(world, pins(world, "v2", sha2), models)
    assert ready.downloaded_bytes == sum(changed.values())
    assert (ready.downloaded_files, ready.reused_files) == (2, 11)
    assert hub_reads["get_stream"] == 2
    assert snapshot(models / STRATEGY) == {
        rel.split("/", 1)[1]: data for rel, data in snapshot(world.repo.parent / "retrained-v2").items()
    }
    assert {name: identity(models / name) for name in others} == others
    record = ready.to_dict()
    assert list(record) == list(RECORD_FIELDS)
    deployment = ReleaseTable(world.counted.backends.releases, "dev").deployments()[0]
    assert record | {"models_dir": ""} == {
        "env": "dev",
        "profile": 3,
        "strategy": STRATEGY,
        "config_id": ready.config.config_id,
        "config_hash": world.counted.backends.configs.get_active(STRATEGY).config_hash,  # type: ignore[union-attr]
        "model_name": STRATEGY,
        "model_version": 1,
        "hub_tag": "v2",
        "hub_sha256": sha2,
        "image": "registry.example/tradai-bot:1.4.0",
        "git_commit": git(world.repo, "rev-parse", "HEAD"),
        "trace_id": deployment.trace_id,
        "deployment_id": deployment.deployment_id,
        "pins_from": "deployment",
        "models_dir": "",
        "downloaded_bytes": sum(changed.values()),
        "downloaded_files": 2,
        "reused_files": 11,
    }
    assert ready.config.strategy.name == STRATEGY and ready.config.model_version == 1

    hub_reads.clear()
    warm = identity(models)
    again = start(world, pins(world, "v2", sha2), models)
    assert (again.downloaded_bytes, again.downloaded_files, again.reused_files) == (0, 0, 13)
    assert hub_reads["get_stream"] == 0 and identity(models) == warm


def test_tampered_blob_exits_1_and_leaves_the_old_files(
    cli: World, capsys: pytest.CaptureFixture[str]
) -> None:
    models = bot_models(cli)
    before = identity(models)
    sha2, changed = retrain(cli, "v2")
    path, size = next(iter(changed.items()))
    blob = cli.hub.read_tag("v2").files[path].sha256
    evil = b"import os; os.system('evil')  # "  # the same size, other content: found by its hash
    (cli.repo.parent / "hub" / "blobs" / "sha256" / blob).write_bytes(evil.ljust(size, b"#"))
    env_file = cli.repo.parent / "PascalStrategy-p3.env"
    env_file.write_text(bots.format_env_file(pins(cli, "v2", sha2), ["written by a test"]))

    assert main(["--env-file", str(env_file), "--models-dir", str(models)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: model hub ") and err.count("\n") == 1
    assert f"{STRATEGY}/signal/ensemble_rf.onnx: blob content hashes to" in err
    assert identity(models) == before
    assert sorted(p.name for p in models.iterdir()) == sorted(STRATEGIES)
    with pytest.raises(HubIntegrityError):  # the library raises what the command prints
        start(cli, pins(cli, "v2", sha2), models)


def test_config_id_mismatch_exits_1_naming_both_ids(cli: World, capsys: pytest.CaptureFixture[str]) -> None:
    models = bot_models(cli)
    before = identity(models)
    active = cli.counted.backends.configs.get_active(STRATEGY)
    assert active is not None
    env_file = cli.repo.parent / "bot.env"
    env_file.write_text(bots.format_env_file(pins(cli, TAG, cli.sha, config_id="v9-0badc0de"), []))
    assert main(["--env-file", str(env_file), "--models-dir", str(models)]) == 1
    assert capsys.readouterr().err == (
        f"error: {env_file}: TRADAI_CONFIG_ID: ACTIVE config of {STRATEGY} in dev is {active.config_id}, "
        "the deployment pins v9-0badc0de\n"
    )
    with pytest.raises(PinMismatch, match="TRADAI_CONFIG_HASH: the hash of ACTIVE config"):
        start(cli, pins(cli, TAG, cli.sha, config_hash="f" * 64), models)
    # A deployment pins its strategy's own files by digest: a tag holding other files is refused.
    with pytest.raises(PinMismatch, match=f"TRADAI_FILES_SHA256: {STRATEGY}'s files in hub tag {TAG}"):
        start(cli, pins(cli, TAG, cli.sha, files_sha256="e" * 64), models)
    assert identity(models) == before


def test_compat_mismatch_exits_1_and_keeps_the_models(cli: World, capsys: pytest.CaptureFixture[str]) -> None:
    models = bot_models(cli)
    before = identity(models)
    sha3, _ = retrain(cli, "v3", features=("rsi_14", "macd"))
    env_file = cli.repo.parent / "bot.env"
    env_file.write_text(bots.format_env_file(pins(cli, "v3", sha3), []))
    assert main(["--env-file", str(env_file), "--models-dir", str(models)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{STRATEGY}/model_compat.json: feature_count 2 != {len(features_of(STRATEGY))} features" in err
    assert identity(models) == before

    # Files edited on the host after a good pull are found by content and refused the same way.
    compat = models / STRATEGY / "model_compat.json"
    compat.write_text(json.dumps({"feature_count": 2, "features": ["rsi_14", "macd"]}))
    ready = start(cli, pins(cli, TAG, cli.sha), models)  # the pin restores the tag's compat file
    assert ready.downloaded_files == 1
    kepler = {rel: value for rel, value in before.items() if rel.startswith("KeplerStrategy/")}
    assert {
        rel: value for rel, value in identity(models).items() if rel.startswith("KeplerStrategy/")
    } == kepler


def test_flags_must_agree_with_the_pins_and_features_must_be_known(
    cli: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    models = bot_models(cli)
    for name, value in pins(cli, TAG, cli.sha).items():
        monkeypatch.setenv(name, value)
    cases = [
        (["--env", "prod"], "error: deployment: TRADAI_ENV: --env is prod, the deployment pins dev\n"),
        (["--profile", "2"], "error: deployment: TRADAI_PROFILE: --profile is 2, the deployment pins 3\n"),
        (
            ["--strategy", "MyStrategy"],
            f"error: deployment: TRADAI_STRATEGY: --strategy is MyStrategy, the deployment pins {STRATEGY}\n",
        ),
        (["--ml-config", str(tmp_path / "absent.json")], "--ml-config: cannot read"),
    ]
    for args, expected in cases:
        assert main([*args, "--models-dir", str(models)]) == 1, args
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, err
    monkeypatch.setenv("TRADAI_REPO", str(tmp_path))  # a host without the release repository
    assert main(["--models-dir", str(models)]) == 1
    assert "--ml-config: no ml_config.json of PascalStrategy" in capsys.readouterr().err
    ml_config = cli.repo / "strategies" / STRATEGY / "ml_config.json"
    assert main(["--models-dir", str(models), "--ml-config", str(ml_config)]) == 0
    assert capsys.readouterr().out.startswith(f"ready: env=dev profile=3 strategy={STRATEGY} config=v")


# --------------------------------------------------------------------------- --exec freqtrade trade


def test_exec_renders_a_checked_private_config_and_hands_over_to_freqtrade(
    cli: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    models = bot_models(cli)
    for name, value in pins(cli, TAG, cli.sha).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRADAI_EXCHANGE_API_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("FREQTRADE__EXCHANGE__KEY", "key-that-stays-in-the-environment")
    monkeypatch.setenv("FREQTRADE__API_SERVER__PASSWORD", "api-password-that-stays-in-the-environment")
    monkeypatch.setenv("TRADAI_BOT_API_PORT", "0")  # a free port, picked at start-up
    launched: list[Launch] = []
    args = ["--models-dir", str(models), "--exec", "freqtrade", "trade", "--logfile", "x.log"]
    assert main(args, launched.append) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"ready: env=dev profile=3 strategy={STRATEGY}")
    [launch] = launched
    assert out[1] == f"exec: {' '.join(launch.argv[1:])} (trades: {launch.db_path})"
    code = cli.repo / "strategies" / STRATEGY / "pascal"
    assert launch.argv == (
        sys.executable, "-m", "freqtrade", "trade", "--config", str(launch.config_path),
        "--strategy", STRATEGY, "--strategy-path", str(code), "--userdir", str(launch.run_dir),
        "--logfile", "x.log",
    )  # fmt: skip
    state = Path(os.environ["TRADAI_STATE_DIR"])
    assert launch.run_dir == state / "dev" / "run" / f"{STRATEGY}-p3" and launch.dry_run
    modes = (launch.run_dir.stat().st_mode & 0o777, launch.config_path.stat().st_mode & 0o777)
    assert modes == (0o700, 0o600)
    config = json.loads(launch.config_path.read_text())
    assert config["tradai"] == {"models_dir": str(models / STRATEGY), "entry_tag": f"{STRATEGY} v1"}
    api = config["api_server"]
    assert api["enabled"] and (api["listen_ip_address"], api["username"]) == ("127.0.0.1", "tradai")
    assert launch.api_url == f"http://127.0.0.1:{api['listen_port']}" and api["listen_port"] > 0
    assert api["password"] == "" and api["jwt_secret_key"] == ""  # Freqtrade reads both from its environment
    assert len(launch.environment["FREQTRADE__API_SERVER__JWT_SECRET_KEY"]) == 64
    assert "api-password-that-stays" not in launch.config_path.read_text()
    assert config["dry_run"] is True and config["db_url"] == f"sqlite:///{launch.db_path}"
    assert config["exchange"]["pair_whitelist"] == ["BTC/USDT:USDT"] and config["trading_mode"] == "futures"
    assert config["exchange"]["ccxt_config"]["urls"]["api"]["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"
    assert "key-that-stays" not in launch.config_path.read_text()


def test_nothing_starts_when_a_check_before_the_exec_fails(
    cli: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    models = bot_models(cli)
    for name, value in pins(cli, TAG, cli.sha).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FREQTRADE__API_SERVER__PASSWORD", "p")
    run_dir = Path(os.environ["TRADAI_STATE_DIR"]) / "dev" / "run"
    launched: list[Launch] = []

    def refused(*extra: str, exec_args: tuple[str, ...] = ("freqtrade", "trade")) -> str:
        assert main(["--models-dir", str(models), *extra, "--exec", *exec_args], launched.append) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert not launched and not run_dir.exists()
        return err

    assert "--exec: runs `freqtrade trade [flags]`, not freqtrade webserver" in refused(
        exec_args=("freqtrade", "webserver")
    )
    assert "--exec: --db-url is set by the runtime" in refused(exec_args=("freqtrade", "trade", "--db-url=x"))
    # An entry point whose module or class is not there.
    assert "strategy.entry_point: pascal.strategy:PascalStrategy: no module file" in refused(
        "--strategy-path", str(tmp_path)
    )
    (tmp_path / "strategy.py").write_text("class SomethingElse:\n    pass\n")
    assert "PascalStrategy" in refused("--strategy-path", str(tmp_path))
    # A bot that trades live needs its exchange key before anything starts.
    monkeypatch.setenv("TRADAI_ENVS__DEV__LIVE_TRADING", "true")
    assert "FREQTRADE__EXCHANGE__KEY: dev trades live and the exchange key is missing" in refused()
    monkeypatch.setenv("FREQTRADE__EXCHANGE__KEY", "k")
    assert "FREQTRADE__EXCHANGE__SECRET" in refused()
    monkeypatch.delenv("TRADAI_ENVS__DEV__LIVE_TRADING")
    # Its REST API, which observe reads, needs a password from the secrets store or the environment.
    monkeypatch.delenv("FREQTRADE__API_SERVER__PASSWORD")
    assert "FREQTRADE__API_SERVER__PASSWORD: the bot's REST API needs a password" in refused()
    monkeypatch.setenv("FREQTRADE__API_SERVER__PASSWORD", "p")
    # A stake that is not a number (a TRADAI_CFG__ override of the runtime config).
    monkeypatch.setenv("TRADAI_CFG__STRATEGY_SERVICE__DEFAULTS__STAKE_AMOUNT", "lots")
    assert "stake_amount" in refused()


def test_tampered_models_start_no_freqtrade(cli: World, capsys: pytest.CaptureFixture[str]) -> None:
    models = bot_models(cli)
    sha2, changed = retrain(cli, "v2")
    path, size = next(iter(changed.items()))
    blob = cli.hub.read_tag("v2").files[path].sha256
    (cli.repo.parent / "hub" / "blobs" / "sha256" / blob).write_bytes(b"#" * size)
    env_file = cli.repo.parent / "PascalStrategy-p3.env"
    env_file.write_text(bots.format_env_file(pins(cli, "v2", sha2), ["written by a test"]))
    launched: list[Launch] = []
    args = ["--env-file", str(env_file), "--models-dir", str(models), "--exec", "freqtrade", "trade"]
    assert main(args, launched.append) == 1
    assert capsys.readouterr().err.startswith("error: model hub ")
    assert not launched and not (Path(os.environ["TRADAI_STATE_DIR"]) / "dev" / "run").exists()


def test_live_state_after_an_apply(world: World) -> None:
    models = world.repo.parent / "bot" / "models"
    ready = start(world, {}, models, env="dev", profile=3, strategy=STRATEGY)
    assert ready.pins_from == "live" and ready.image is None
    assert (ready.hub_tag, ready.hub_sha256, ready.model_version) == (TAG, world.sha, 1)
    assert ready.downloaded_files == 13 and sorted(p.name for p in models.iterdir()) == [STRATEGY]
    assert ready.deployment_id is not None and ready.git_commit == git(world.repo, "rev-parse", "HEAD")

    # Someone activates another config by hand: the bot refuses what the last apply did not make live.
    configs = world.counted.backends.configs
    applied = configs.get_active(STRATEGY)
    assert applied is not None
    data = json.loads(json.dumps(applied.config_data))
    data["strategy_service"]["defaults"]["max_open_trades"] = 99
    other = configs.create_version(strategy_name=STRATEGY, config_data=data, description="by hand")
    configs.activate(STRATEGY, other.config_id)
    with pytest.raises(PinMismatch) as err:
        start(world, {}, models, env="dev", profile=3, strategy=STRATEGY)
    assert str(err.value) == (
        f"live state of dev: TRADAI_CONFIG_ID: ACTIVE config of {STRATEGY} in dev is {other.config_id}, "
        f"the last apply made live {applied.config_id}"
    )
    # ...and the next apply restores it, after which the bot starts again (warm: no download).
    assert world.apply().outcome == "succeeded"
    again = start(world, {}, models, env="dev", profile=3, strategy=STRATEGY)
    assert again.config_id == applied.config_id and again.downloaded_bytes == 0


def test_without_pins_or_profile_the_seed_start_up_pulls_latest_when_missing(world: World) -> None:
    models = world.repo.parent / "seed" / "models"
    first = start(world, {}, models, env="dev", strategy=STRATEGY)
    assert (first.pins_from, first.profile, first.hub_tag) == ("latest", None, TAG)
    assert first.downloaded_files == 13 * len(STRATEGIES)
    again = start(world, {}, models, env="dev", strategy=STRATEGY)
    assert (again.hub_tag, again.downloaded_bytes) == (None, 0)
    with pytest.raises(InputError, match="--strategy: required"):
        start(world, {}, models, env="dev")


def run_module(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tools = str(REPO_ROOT / "tools")
    path = os.pathsep.join(p for p in (tools, os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "tradai_release.runtime", *args],
        env={**os.environ, **env, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_module_command_on_the_embedded_default(tmp_path: Path) -> None:
    """The real settings' backends (SQLite, a file hub, MLflow on SQLite), in a subprocess."""
    repo = embedded_repo(tmp_path, 1)
    assert apply_env(ReleaseContext.open(Settings(repo=repo), "dev"), actor="ci").outcome == "succeeded"
    models = tmp_path / "bot" / "models"
    env = {"TRADAI_REPO": str(repo), "TRADAI_MODELS_DIR": str(models)}

    done = run_module("--env", "dev", "--profile", "3", "--strategy", STRATEGY, "--json", env=env)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert list(record) == sorted(RECORD_FIELDS)
    assert record["pins_from"] == "live" and record["hub_tag"] == TAG and record["downloaded_files"] == 13
    assert record["models_dir"] == str(models) and record["git_commit"] == git(repo, "rev-parse", "HEAD")

    done = run_module(
        "--env", "dev", "--profile", "3", "--strategy", STRATEGY, env={**env, "TRADAI_ENV": "prod"}
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "error: deployment: TRADAI_ENV: --env is dev, the deployment pins prod\n"

    helped = run_module("--help", env=env)
    assert helped.returncode == 0 and "--env-file F" in helped.stdout and "--ml-config F" in helped.stdout


def test_the_model_versions_config_tags_come_from_the_apply_record(
    tmp_path: Path, isolated_environment: Path
) -> None:
    """A bot reads the version's ``config.*`` tags as the apply that aliased it recorded: no registry call."""
    trades = "config.strategy_service.defaults.max_open_trades"
    world = make_world(tmp_path, isolated_environment)
    world.registry.set_version_tag(STRATEGY, 1, trades, "5")
    world.registry.set_version_tag(STRATEGY, 1, "r2_tag_note", "not a config tag")
    assert world.apply().outcome == "succeeded"
    applied = ReleaseTable(world.counted.backends.releases, "dev").applied()
    assert applied is not None and applied.config_tags[STRATEGY] == {"1": {trades: "5"}}

    world.registry.set_version_tag(STRATEGY, 1, trades, "9")  # by hand, after the apply
    calls = world.registry.calls
    ready = start(world, pins(world, TAG, world.sha), bot_models(world))
    assert ready.config.service.max_open_trades == 5
    assert ready.config.source_of("strategy_service.defaults.max_open_trades") == (
        f"mlflow tag {trades} of {STRATEGY} v1"
    )
    assert world.registry.calls == calls
    assert world.plan().empty  # the snapshot is a record of the apply, not a value to converge
