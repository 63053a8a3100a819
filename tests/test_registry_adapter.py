"""MlflowRegistry on a temporary SQLite registry and, end to end, on a real ``mlflow server``."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fake_registry import FakeRegistry
from registry_helpers import METRICS, training_result
from tradai_release.core.errors import ModelVersionNotFound, RegistryError
from tradai_release.core.settings import Settings
from tradai_release.registry.adapter import MlflowRegistry, MlflowTagSource, ModelRegistry
from tradai_release.registry.registrar import ModelRegistrar
from tradai_release.repository.environments import environment


@pytest.fixture(scope="module")
def sqlite_registry(tmp_path_factory: pytest.TempPathFactory) -> MlflowRegistry:
    root = tmp_path_factory.mktemp("mlflow")
    return MlflowRegistry(f"sqlite:///{root}/mlflow.db", str(root / "artifacts"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / "mlruns").exists(), "MLflow wrote into ./mlruns"


def exercise(registry: MlflowRegistry, root: Path) -> None:
    """The adapter contract, shared by the SQLite and the HTTP test."""
    assert isinstance(registry, ModelRegistry)
    registrar = ModelRegistrar(registry)
    first, second = training_result(root), training_result(root)
    registrar.register(first)
    for _ in range(2):  # the same model with other files (each result's metadata differs): new versions
        registrar.register(training_result(root, first.strategy_name))
    registrar.register(second)

    before = registry.calls
    found = registry.versions([first.strategy_name, second.strategy_name, "absent_model_x"])
    # models + versions + experiments + runs: independent of how many versions there are
    assert registry.calls - before == 4
    assert [info.version for info in found[first.strategy_name]] == [1, 2, 3]
    assert [info.version for info in found[second.strategy_name]] == [1]
    assert found["absent_model_x"] == []
    info = found[first.strategy_name][0]
    assert isinstance(info.version, int)
    assert info.status == "READY"
    assert info.metrics["sharpe_ratio"] == pytest.approx(1.3)
    assert info.tags["strategy_name"] == first.strategy_name
    assert info.created_at is not None
    content = info.tags["content_sha256"]
    before = registry.calls
    assert [v.version for v in registry.find_versions(first.strategy_name, "content_sha256", content)] == [1]
    assert registry.find_versions(second.strategy_name, "content_sha256", content) == []
    assert registry.calls - before == 2  # one search each

    name = first.strategy_name
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FutureWarning about stages may reach the user
        registry.set_alias(name, "p1", 2)
        registry.set_alias(name, "p1-staging", 3)
        registry.set_version_tag(name, 2, "lifecycle", "Production")
        registry.set_version_tag(name, 2, "scratch", "x")
        registry.delete_version_tag(name, 2, "scratch")
        assert registry.set_stage(name, 2, "Production") is True

    two = registry.get_version(name, 2)
    assert (two.version, two.aliases, two.stage, two.lifecycle) == (2, ("p1",), "Production", "Production")
    assert "scratch" not in two.tags
    assert two.metrics["total_trades"] == 42.0
    listed = {i.version: i for i in registry.versions([name])[name]}
    assert listed[2].aliases == ("p1",) and listed[3].aliases == ("p1-staging",)

    registry.set_alias(name, "p1", 3)
    registry.delete_alias(name, "p1-staging")
    assert registry.get_version(name, 3).aliases == ("p1",)
    assert registry.get_version(name, 2).aliases == ()

    assert MlflowTagSource(registry).model_version_tags(name, 1)["trace_id"] == first.trace_id

    with pytest.raises(ModelVersionNotFound, match=f"{name} version 99: model version not found"):
        registry.get_version(name, 99)
    with pytest.raises(ModelVersionNotFound):
        registry.set_alias(name, "p2", 99)
    with pytest.raises(ModelVersionNotFound):
        registry.get_version("absent_model_x", 1)
    with pytest.raises(RegistryError, match="unknown stage"):
        registry.set_stage(name, 1, "Live")
    registry.create_registered_model_if_missing(name)  # existing: no error


def test_sqlite_registry_contract(sqlite_registry: MlflowRegistry, workdir: Path) -> None:
    exercise(sqlite_registry, workdir)


def test_versions_of_many_models_batch_into_chunks(sqlite_registry: MlflowRegistry, workdir: Path) -> None:
    names = [f"nobody_{i}" for i in range(120)]  # three name chunks, no versions so no run lookups
    before = sqlite_registry.calls
    found = sqlite_registry.versions(names)
    assert sqlite_registry.calls - before == 6
    assert set(found) == set(names)


def test_names_with_quotes_are_escaped(sqlite_registry: MlflowRegistry, workdir: Path) -> None:
    assert sqlite_registry.versions(["it's"]) == {"it's": []}


def test_for_env_uses_the_env_database_under_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    registry = MlflowRegistry.for_env(environment(settings, "staging"), settings)
    assert registry.tracking_uri == f"sqlite:///{tmp_path.as_posix()}/staging/mlflow.db"
    assert registry.artifact_root == f"{tmp_path.as_posix()}/staging/mlartifacts"
    assert registry.calls == 0  # nothing contacted yet


def test_unreachable_server_is_a_registry_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    registry = MlflowRegistry("http://127.0.0.1:9")
    with pytest.raises(RegistryError, match="mlflow: "):
        registry.versions(["x"])


@pytest.mark.e2e
def test_http_registry_contract(mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exercise(MlflowRegistry(mlflow_server, str(tmp_path / "unused")), tmp_path)
    assert not (tmp_path / "unused").exists()  # the server keeps its own artifacts


# --- the ModelRegistry protocol: one contract for the fake and the MLflow adapters ----------------------


Seed = Callable[[str, float], None]  # adds the next version of a model, its run's sharpe_ratio given


def fake_seed(registry: FakeRegistry) -> Seed:
    """Versions as the fake holds them: the registration tags and the run's metrics."""

    def seed(name: str, sharpe: float) -> None:
        registry.add_version(name, tags={"strategy_name": name, "lifecycle": "None"},
                             metrics={**METRICS, "sharpe_ratio": sharpe}, run_id=f"run-{uuid.uuid4().hex}")

    return seed


def mlflow_seed(registry: MlflowRegistry, root: Path) -> Seed:
    """Versions as registration makes them (a run with the result's metrics, then a new version)."""

    def seed(name: str, sharpe: float) -> None:
        ModelRegistrar(registry).register(training_result(root, name, sharpe_ratio=sharpe))

    return seed


def exercise_protocol(registry: ModelRegistry, seed: Seed) -> None:
    """What plan/apply, the lifecycle and the read views rely on, whatever the registry behind it."""
    assert isinstance(registry, ModelRegistry)
    name, other, absent = (f"contract_{uuid.uuid4().hex[:8]}" for _ in range(3))
    for sharpe in (1.1, 1.2, 1.3):
        seed(name, sharpe)
    seed(other, 2.0)
    before = registry.calls
    found = registry.versions([name, other, absent, name])
    assert registry.calls > before
    assert sorted(found) == sorted([name, other, absent])
    assert [info.version for info in found[name]] == [1, 2, 3] and found[absent] == []
    first = found[name][0]
    assert (first.name, first.status, first.stage, first.aliases, first.lifecycle) == (
        name, "READY", "None", (), "None")
    assert first.tags["strategy_name"] == name and first.run_id and first.created_at is not None
    assert [info.metrics["sharpe_ratio"] for info in found[name]] == pytest.approx([1.1, 1.2, 1.3])
    assert found[name][0].metrics["total_trades"] == 42.0

    registry.set_alias(name, "p1", 2)
    registry.set_alias(name, "p2", 2)
    registry.set_alias(other, "p1", 1)
    assert registry.get_version(name, 2).aliases == ("p1", "p2")
    assert {i.version: i.aliases for i in registry.versions([name])[name]} == {1: (), 2: ("p1", "p2"), 3: ()}
    aliased = registry.aliased_models()
    assert aliased[name] == ["p1", "p2"] and aliased[other] == ["p1"]
    registry.set_alias(name, "p1", 3)  # an alias moves: it names one version
    assert registry.get_version(name, 3).aliases == ("p1",)
    assert registry.get_version(name, 2).aliases == ("p2",)
    registry.delete_alias(other, "p1")
    assert other not in registry.aliased_models() and registry.get_version(other, 1).aliases == ()

    registry.set_version_tag(name, 2, "lifecycle", "Production")
    registry.set_version_tag(name, 2, "scratch", "x")
    registry.delete_version_tag(name, 2, "scratch")
    assert registry.set_stage(name, 2, "Production") is True
    two = registry.get_version(name, 2)
    assert (two.lifecycle, two.stage) == ("Production", "Production") and "scratch" not in two.tags
    assert registry.versions([name])[name][1] == two
    assert registry.get_version(name, 1).tags == first.tags  # writes touch only the version named

    with pytest.raises(ModelVersionNotFound, match=f"{name} version 99: model version not found"):
        registry.get_version(name, 99)
    with pytest.raises(ModelVersionNotFound):
        registry.get_version(absent, 1)
    with pytest.raises(ModelVersionNotFound):
        registry.set_alias(name, "p3", 99)
    with pytest.raises(ModelVersionNotFound):
        registry.set_version_tag(name, 99, "lifecycle", "Production")
    with pytest.raises(RegistryError, match="unknown stage"):
        registry.set_stage(name, 1, "Live")

    registry.create_registered_model_if_missing(absent)
    registry.create_registered_model_if_missing(name)  # existing: no error, nothing changes
    assert registry.versions([absent]) == {absent: []}
    assert [info.version for info in registry.versions([name])[name]] == [1, 2, 3]


@pytest.fixture(params=["fake", "sqlite"])
def protocol_registry(request: pytest.FixtureRequest, workdir: Path) -> tuple[ModelRegistry, Seed]:
    if request.param == "fake":
        fake = FakeRegistry()
        return fake, fake_seed(fake)
    registry = MlflowRegistry(f"sqlite:///{workdir}/mlflow.db", str(workdir / "artifacts"))
    return registry, mlflow_seed(registry, workdir)


def test_registry_protocol_contract(protocol_registry: tuple[ModelRegistry, Seed]) -> None:
    exercise_protocol(*protocol_registry)


@pytest.mark.e2e
def test_http_registry_protocol_contract(mlflow_server: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    registry = MlflowRegistry(mlflow_server, str(tmp_path / "unused"))
    exercise_protocol(registry, mlflow_seed(registry, tmp_path))
