"""ModelRegistrar: one run, one tagged READY version, the bundle and its MLmodel under the artifact root."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from registry_helpers import training_result
from tradai_release.core.errors import RegistryError
from tradai_release.core.settings import Settings
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.registry.registrar import (
    CONTENT_TAG,
    ModelRegistrar,
    RegisteredVersion,
    bundle_digests,
    content_sha256,
    register_training,
)
from tradai_release.repository.environments import environment
from tradai_release.repository.policy import DEFAULT_ENVIRONMENTS as ENVIRONMENTS


def test_register_logs_run_and_tags_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    registry = MlflowRegistry(f"sqlite:///{tmp_path}/db/mlflow.db", str(tmp_path / "artifacts"))
    registrar = ModelRegistrar(registry)
    warmup = training_result(tmp_path)
    registrar.register(warmup, r2_tag="warmup")  # first registration also creates the database
    result = training_result(tmp_path, warmup.strategy_name)  # other files (its metadata differs)
    config = {"strategy": {"name": result.strategy_name, "version": "1.0.0"}, "mlflow": {"enabled": True}}

    started = time.perf_counter()
    registered = registrar.register(result, r2_tag=f"{result.strategy_name}/v2", config=config)
    print(f"\nregistration on SQLite: {time.perf_counter() - started:.3f} s")

    assert registered == RegisteredVersion(result.strategy_name, 2, registered.run_id)
    assert registered.created and not registered.duplicate
    info = registry.get_version(result.strategy_name, 2)
    assert info.status == "READY"
    assert info.tags == {
        "strategy_name": result.strategy_name,
        "git_commit": result.git_commit,
        "r2_tag": f"{result.strategy_name}/v2",
        "feature_count": "2",
        "trace_id": result.trace_id,
        "lifecycle": "None",
        "content_sha256": content_sha256(bundle_digests(result.model_dir)),
        "training_run": registered.run_id,  # a registrar that names no environment: the run id alone
    }
    assert info.metrics == pytest.approx(result.metrics)

    run = registry.client.get_run(registered.run_id)
    assert run.data.params["n_estimators"] == "50"
    assert run.data.params["config.strategy.version"] == "1.0.0"
    assert run.data.params["config.mlflow.enabled"] == "true"
    assert run.data.params["feature_count"] == "2"
    assert run.data.tags["mlflow.source.git.commit"] == result.git_commit
    assert run.info.status == "FINISHED"

    model_dirs = list((tmp_path / "artifacts").rglob("MLmodel"))
    assert len(model_dirs) == 2 and not (tmp_path / "mlruns").exists()
    latest = next(path.parent for path in model_dirs if registered.run_id in str(path))
    assert (latest / "signal.onnx").read_bytes() == b"\x08\x07fake-onnx"
    assert (latest / "requirements.txt").read_text().split() == ["onnxruntime", "numpy", "scikit-learn"]
    mlmodel = yaml.safe_load((latest / "MLmodel").read_text())
    assert "rsi_14" in mlmodel["signature"]["inputs"]
    assert mlmodel["flavors"]["tradai_bundle"]["files"] == ["features.json", "metadata.json", "signal.onnx"]


def test_the_equity_curve_is_a_version_tag_read_with_every_listing(tmp_path: Path) -> None:
    from dataclasses import replace

    from tradai_release.core.equity import EQUITY_TAG, EquityCurve, downsample, from_tags

    registry = MlflowRegistry(f"sqlite:///{tmp_path}/db/mlflow.db", str(tmp_path / "artifacts"))
    curve = EquityCurve(downsample([1 + i / 1000 for i in range(1, 900)]), 899, "2024-04-01", "2024-05-01")
    result = replace(training_result(tmp_path), equity=curve)
    registered = ModelRegistrar(registry).register(result)
    calls = registry.calls
    (listed,) = registry.versions([result.strategy_name])[result.strategy_name]
    assert from_tags(listed.tags) == curve  # no artifact download: the listing carries it
    assert listed.tags[EQUITY_TAG] == curve.to_tag()
    assert registry.calls - calls <= 4  # the usual listing calls, nothing per version
    plain = ModelRegistrar(registry).register(training_result(tmp_path))
    assert EQUITY_TAG not in registry.get_version(plain.name, plain.version).tags
    assert registered.version == 1


def test_register_without_r2_tag_or_commit(tmp_path: Path) -> None:
    registry = MlflowRegistry(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"))
    result = training_result(tmp_path)
    bare = type(result)(**{**result.__dict__, "git_commit": None})
    registered = ModelRegistrar(registry).register(bare)
    tags = registry.get_version(registered.name, registered.version).tags
    assert "r2_tag" not in tags and "git_commit" not in tags


def test_missing_model_dir_is_a_registry_error(tmp_path: Path) -> None:
    result = training_result(tmp_path)
    for path in result.model_dir.iterdir():
        path.unlink()
    result.model_dir.rmdir()
    registry = MlflowRegistry(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"))
    with pytest.raises(RegistryError, match=r"model directory .* does not exist"):
        ModelRegistrar(registry).register(result)
    assert registry.calls == 0


def test_register_training_registers_in_every_env(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    result = training_result(tmp_path)
    registered = register_training(settings, result, r2_tag="t1")
    assert set(registered) == set(ENVIRONMENTS)
    for env in ENVIRONMENTS:
        assert registered[env].version == 1
        info = MlflowRegistry.for_env(environment(settings, env), settings).get_version(
            result.strategy_name, 1
        )
        assert info.tags["r2_tag"] == "t1"
        assert (tmp_path / "state" / env / "mlflow.db").exists()
        assert list((tmp_path / "state" / env / "mlartifacts").rglob("MLmodel"))
    again = register_training(
        settings, result, None, envs=[environment(settings, "dev")]
    )  # the same files: dev's v1
    assert list(again) == ["dev"] and again["dev"].version == 1 and again["dev"].duplicate
    (result.model_dir / "signal.onnx").write_bytes(b"\x08\x07other-onnx")
    only_dev = register_training(settings, result, None, envs=[environment(settings, "dev")])
    assert list(only_dev) == ["dev"] and only_dev["dev"].version == 2 and only_dev["dev"].created


def test_same_files_return_the_existing_version_marked_duplicate(tmp_path: Path) -> None:
    """Registering files an existing version has returns that version (one search, nothing written);
    other files, or a version from before the content tag, make a new one."""
    registry = MlflowRegistry(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"))
    registrar = ModelRegistrar(registry)
    result = training_result(tmp_path)
    first = registrar.register(result, r2_tag="t1")
    runs_before = len(registry.client.search_runs([registry.experiment_id("tradai/" + result.strategy_name)]))
    calls_before = registry.calls

    again = registrar.register(result, r2_tag="t2", config={"strategy": {"version": "9.9.9"}})

    assert again == first and again.duplicate and not again.created and again.run_id == first.run_id
    assert registry.calls - calls_before == 1  # one search, no write
    listed = registry.versions([result.strategy_name])[result.strategy_name]
    assert [v.version for v in listed] == [1]
    assert listed[0].tags["r2_tag"] == "t1"  # the existing version is returned as it is
    experiment = registry.experiment_id("tradai/" + result.strategy_name)
    assert len(registry.client.search_runs([experiment])) == runs_before

    # A version registered before the content tag existed is no duplicate candidate: one more version.
    registry.delete_version_tag(result.strategy_name, 1, CONTENT_TAG)
    untagged = registrar.register(result)
    assert untagged.version == 2 and untagged.created
    # From then on the tagged version is found, and another file makes another version.
    assert registrar.register(result) == RegisteredVersion(result.strategy_name, 2, untagged.run_id)
    assert registrar.register(result).duplicate
    (result.model_dir / "features.json").write_text('["rsi_14"]\n', encoding="utf-8")
    assert registrar.register(result).version == 3


def test_content_digest_is_the_hub_tags_for_the_same_files(tmp_path: Path) -> None:
    """A local bundle and the ``<S>/`` files of a hub tag holding it have the same content digest."""
    from hub_helpers import MemoryStore, make_models_dir
    from tradai_release.hub import ModelHub

    make_models_dir(tmp_path / "models", ("AlphaStrategy", "BetaStrategy"))
    hub = ModelHub(MemoryStore(), workers=1)
    hub.push(tmp_path / "models", tag="v1", created_at="2026-11-01T00:00:00Z")
    files = hub.read_tag("v1").files_of(["BetaStrategy"])
    from_tag = content_sha256({path.split("/", 1)[1]: entry.sha256 for path, entry in files.items()})
    assert from_tag == content_sha256(bundle_digests(tmp_path / "models" / "BetaStrategy"))
    assert from_tag != content_sha256(bundle_digests(tmp_path / "models" / "AlphaStrategy"))
    assert content_sha256({"a": "1", "b": "2"}) == content_sha256({"b": "2", "a": "1"})
    assert content_sha256({"a": "1"}) != content_sha256({"b": "1"})  # paths count, not only contents


@pytest.mark.e2e
def test_register_over_http(mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    registry = MlflowRegistry(mlflow_server, str(tmp_path / "unused"))
    result = training_result(tmp_path)
    registered = ModelRegistrar(registry).register(result, r2_tag="http-tag")
    assert registered.version == 1
    info = registry.get_version(result.strategy_name, 1)
    assert info.tags["r2_tag"] == "http-tag" and info.status == "READY"
    again = ModelRegistrar(registry).register(result, r2_tag="other-tag")  # the tag search over REST
    assert again.version == 1 and again.duplicate
    assert [v.version for v in registry.versions([result.strategy_name])[result.strategy_name]] == [1]
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "unused").exists()
    assert "View run" not in capsys.readouterr().out  # stdout stays clean for --json
