"""`invoke train` end to end on the embedded default: train, push to a local hub, register in MLflow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers import invoke
from tradai_release.core.settings import Settings
from tradai_release.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.repository.environments import environment
from training_helpers import file_hashes, make_training_repo

STRATEGY = "MyStrategy"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_training_repo(tmp_path / "repo", (STRATEGY,))


@pytest.mark.slow
def test_train_then_push_and_register_in_one_go(repo: Path, tmp_path: Path) -> None:
    done = invoke(repo, "train", "--strategy", STRATEGY)
    assert done.returncode == 0, done.stderr
    assert f"trained {STRATEGY}" in done.stdout and "ONNX parity: max abs diff" in done.stdout
    assert "pushed" not in done.stdout
    first = file_hashes(repo / "models")
    settings = Settings()
    assert not (settings.state_dir / "hub").exists()

    push = ("--push-to-hub", "--register-env", "dev", "--register-env", "prod", "--json")
    done = invoke(repo, "train", "--strategy", STRATEGY, *push)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert file_hashes(repo / "models") == first  # retraining reproduced the bundle byte for byte
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    assert out["strategy"] == STRATEGY and out["git_commit"] == head
    assert set(out["versions"]) == {"dev", "prod"} and out["tag"].startswith("v")
    assert out["duplicates"] == []
    assert out["onnx_parity_max_abs_diff"] <= 1e-5

    hub = ModelHub.from_settings(settings)
    assert hub.resolve_latest().tag == out["tag"]
    manifest = hub.read_tag(out["tag"], expected_sha256=out["manifest_sha256"])
    assert f"{STRATEGY}/signal/ensemble_rf.onnx" in manifest.files
    assert manifest.git_commit == head
    assert manifest.metadata[STRATEGY]["signal"]["accuracy"] == out["metrics"]["accuracy"]
    pulled = hub.pull(tmp_path / "pulled", tag=out["tag"], features={STRATEGY: list(out["features"])})
    assert file_hashes(pulled.dest) == first

    for env in ("dev", "prod"):
        version = MlflowRegistry.for_env(environment(settings, env), settings).get_version(
            STRATEGY, out["versions"][env]
        )
        assert version.status == "READY"
        assert version.tags["r2_tag"] == out["tag"]
        assert version.tags["git_commit"] == head
        assert version.tags["trace_id"] == out["trace_id"]
        assert version.tags["feature_count"] == str(out["feature_count"])
        assert version.metrics["total_trades"] == out["metrics"]["total_trades"]
    assert not (settings.state_dir / "staging").exists()  # only the requested envs have a registry

    again = invoke(repo, "train", "--strategy", STRATEGY, "--push-to-hub")
    assert again.returncode == 0, again.stderr
    assert "uploaded 0 files" in again.stdout  # nothing changed, so the hub already has every blob
    # The same files again: the registry's version is returned, no new one is minted.
    assert f"{STRATEGY} version 1 in dev already has these files; not registered again" in again.stdout


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (
            ["--strategy", "Nope"],
            {},
            "error: strategies/Nope: --strategy: no such strategy (known: MyStrategy)",
        ),
        ([], {}, "error: train: --strategy: required (the strategy to train)"),
        (
            ["--strategy", STRATEGY, "--register-env", "dev"],
            {},
            "error: train: --register-env: needs --push-to-hub (a registered version carries its r2_tag)",
        ),
        (
            ["--strategy", STRATEGY, "--push-to-hub", "--register-env", "qa"],
            {},
            "error: settings: env: unknown environment 'qa' (expected one of dev, staging, prod)",
        ),
        (
            ["--strategy", STRATEGY, "--push-to-hub", "--tag", "../x"],
            {},
            "error: --tag: tag: invalid tag name '../x' (letters, digits, '.', '_', '-'; no '..')",
        ),
        (
            ["--strategy", STRATEGY, "--push-to-hub"],
            {"TRADAI_HUB_URI": "s3://models-bucket"},
            "error: missing credentials: set CF_R2_ACCESS_KEY_ID (model hub access)",
        ),
    ],
)
def test_bad_flags_fail_before_training(repo: Path, args: list[str], env: dict[str, str], line: str) -> None:
    done = invoke(repo, "train", *args, env=env)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [line]
    assert done.stdout == ""
    assert not (repo / "models").exists()


@pytest.mark.slow
def test_bad_data_is_one_line_and_keeps_models(repo: Path) -> None:
    assert invoke(repo, "train", "--strategy", STRATEGY).returncode == 0
    before = file_hashes(repo / "models")
    csv = repo / "strategies" / STRATEGY / "data" / "btc_usdt_1h.csv"
    lines = csv.read_text().splitlines()
    lines[1000] = lines[1000].replace(lines[1000].split(",")[4], "nan")
    csv.write_text("\n".join(lines) + "\n")
    done = invoke(repo, "train", "--strategy", STRATEGY, "--push-to-hub")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: strategies/{STRATEGY}/data/btc_usdt_1h.csv: line 1001: close: not a finite number: 'nan'"
    ]
    assert file_hashes(repo / "models") == before
    assert not ModelHub.from_settings(Settings()).list_tags()
