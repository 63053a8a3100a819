"""Shared helpers of the engine tests: a release repo in tmp_path, a pushed hub tag, counting backends."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fake_registry import FakeRegistry
from helpers import commit_all, git, process_scratch
from hub_helpers import make_models_dir
from tradai_release.configs.repository import ConfigRepository
from tradai_release.configs.service import ConfigVersionService
from tradai_release.configs.table import PARTITION_KEY, SORT_KEY, TABLE_NAME
from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.settings import EnvOverrides, Settings
from tradai_release.engine import plan as P
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.plan import plan_env
from tradai_release.engine.release_table import RELEASE_TABLE
from tradai_release.engine.state import EngineBackends
from tradai_release.hub.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry, ModelRegistry, ModelVersionInfo
from tradai_release.registry.lifecycle import current_lifecycle
from tradai_release.repository.bots import BotKey, BotSpec
from tradai_release.repository.environments import environment
from tradai_release.repository.manifest_edit import edit_manifest
from tradai_release.repository.policy import DEFAULT_ENVIRONMENTS as ENVIRONMENTS
from tradai_release.stores import Condition, KeyValueTable, ObjectInfo, ObjectStore, Operation
from tradai_release.stores.aws import client
from tradai_release.stores.local import LocalObjectStore
from tradai_release.stores.sqlite import SqliteTable
from tradai_release.targets import DeploymentTarget, DeployStamp, RunningBot
from tradai_release.workflows.provision import provision

PROFILES: tuple[int, ...] = (1, 2, 3, 4, 5)  # the profiles of this repository's releases/<env>/

SOURCE = Path(__file__).resolve().parent.parent
STRATEGIES = ("KeplerStrategy", "MyStrategy", "PascalStrategy")
TAG = "v20261101"

REGISTRATION_TAGS = {
    "feature_count": "19",
    "trace_id": "trace-test",
    "git_commit": "0" * 40,
    "lifecycle": "None",
}


def features_of(strategy: str) -> list[str]:
    data = json.loads((SOURCE / "strategies" / strategy / "ml_config.json").read_text())
    return list(data["features"])


def push_tag(hub: ModelHub, scratch: Path, tag: str = TAG, *, seed: int = 0) -> str:
    """Push a fake bundle of every strategy (with its real feature list) as ``tag``; returns its sha256."""
    models = scratch / f"models-{tag}"
    for strategy in STRATEGIES:
        make_models_dir(models, (strategy,), size=64 + seed, features=features_of(strategy))
    return hub.push(models, tag=tag, message=f"test bundle {tag}").manifest_sha256


def make_repo(root: Path, tag: str, sha256: str) -> Path:
    """A git repository with this project's strategies/ and releases/, artifacts pinned to ``tag``."""
    repo = root / "repo"
    repo.mkdir()
    shutil.copytree(SOURCE / "strategies", repo / "strategies")
    shutil.copytree(SOURCE / "releases", repo / "releases")
    git(repo, "init", "-q", "-b", "main")
    for env in ENVIRONMENTS:
        for profile in PROFILES:
            path = repo / "releases" / env / f"profile-{profile}.yaml"
            if path.exists():
                with edit_manifest(path) as editor:
                    editor.set_artifacts(tag, sha256)
    commit_all(repo, "initial release repository")
    return repo


def set_production(
    repo: Path, env: str, strategy: str, version: int, profiles: Sequence[int] = PROFILES
) -> None:
    for profile in profiles:
        path = repo / "releases" / env / f"profile-{profile}.yaml"
        with edit_manifest(path) as editor:
            if strategy in editor.strategies():
                editor.set_production(strategy, version)


def register_versions(registry: FakeRegistry, count: int = 1, **metrics: float) -> None:
    """``count`` READY versions of every strategy's model, with the registration tags."""
    base = {
        "total_profit": 100.0,
        "sharpe_ratio": 1.2,
        "max_drawdown": 0.1,
        "win_rate": 0.5,
        "total_trades": 40.0,
    }
    for name in STRATEGIES:
        for _ in range(count):
            registry.add_version(
                name,
                tags={
                    **REGISTRATION_TAGS,
                    "strategy_name": name,
                    "feature_count": str(len(features_of(name))),
                },
                metrics={**base, **metrics},
            )


class CountingTable:
    """A KeyValueTable wrapper counting reads and writes by method."""

    def __init__(self, inner: KeyValueTable) -> None:
        self.inner = inner
        self.name = inner.name
        self.partition_key = inner.partition_key
        self.sort_key = inner.sort_key
        self.reads: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()

    def get(self, key: Mapping[str, Any], *, consistent: bool = True) -> dict[str, Any] | None:
        self.reads["get"] += 1
        return self.inner.get(key, consistent=consistent)

    def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self.writes["put"] += 1
        self.inner.put(item, condition=condition)

    def delete(self, key: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self.writes["delete"] += 1
        self.inner.delete(key, condition=condition)

    def query(self, partition: str, *, prefix: str = "", descending: bool = False) -> list[dict[str, Any]]:
        self.reads["query"] += 1
        return self.inner.query(partition, prefix=prefix, descending=descending)

    def scan(self) -> Iterator[dict[str, Any]]:
        self.reads["scan"] += 1
        return self.inner.scan()

    def transact(self, operations: Sequence[Operation]) -> None:
        self.writes["transact"] += 1
        self.inner.transact(operations)


class CountingObjects:
    """An ObjectStore wrapper counting reads and writes by method."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.name = inner.name
        self.part_size = inner.part_size
        self.reads: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()

    def put(self, key: str, data: bytes) -> None:
        self.writes["put"] += 1
        self.inner.put(key, data)

    def create(self, key: str, data: bytes) -> None:
        self.writes["create"] += 1
        self.inner.create(key, data)

    def get(self, key: str) -> bytes:
        self.reads["get"] += 1
        return self.inner.get(key)

    def head(self, key: str) -> ObjectInfo | None:
        self.reads["head"] += 1
        return self.inner.head(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.reads["list"] += 1
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.writes["delete"] += 1
        self.inner.delete(key)

    def put_file(self, key: str, path: Path, *, sha256: str | None = None) -> None:
        self.writes["put_file"] += 1
        self.inner.put_file(key, path, sha256=sha256)

    def get_stream(self, key: str, sink: IO[bytes]) -> None:
        self.reads["get_stream"] += 1
        self.inner.get_stream(key, sink)

    def get_range(self, key: str, start: int, length: int, sink: IO[bytes]) -> int:
        self.reads["get_range"] += 1
        return self.inner.get_range(key, start, length, sink)


class Counted:
    """The counting wrappers of one environment's backends."""

    def __init__(
        self, backends: EngineBackends, tables: list[CountingTable], stores: list[CountingObjects]
    ) -> None:
        self.backends = backends
        self.tables = tables
        self.stores = stores

    def reset(self) -> None:
        for counter in [*self.tables, *self.stores]:
            counter.reads.clear()
            counter.writes.clear()
        for inner in (self.backends.registry, self.backends.target):
            writes = getattr(inner, "writes", None)
            if writes is not None:
                writes.clear()

    @property
    def writes(self) -> int:
        registry_writes = len(getattr(self.backends.registry, "writes", []))
        target_writes = len(getattr(self.backends.target, "writes", []))
        stored = sum(sum(c.writes.values()) for c in [*self.tables, *self.stores])
        return stored + registry_writes + target_writes

    @property
    def reads(self) -> int:
        return sum(sum(c.reads.values()) for c in [*self.tables, *self.stores])


def local_backends(state: Path, env: str, registry: ModelRegistry, hub_root: Path) -> Counted:
    """Embedded-default storage (SQLite + local directories) wrapped in counters, with ``registry``."""
    config_table = CountingTable(SqliteTable(state / env / "state.db", TABLE_NAME, PARTITION_KEY, SORT_KEY))
    release_table = CountingTable(SqliteTable(state / env / "state.db", RELEASE_TABLE, "pk", "sk"))
    config_store = CountingObjects(LocalObjectStore(state / env / "configs"))
    hub_store = CountingObjects(LocalObjectStore(hub_root))
    backends = EngineBackends(
        env=env,
        configs=ConfigVersionService(config_table, ConfigRepository(config_store)),
        registry=registry,
        hub=ModelHub(hub_store, workers=1),
        releases=release_table,
    )
    return Counted(backends, [config_table, release_table], [config_store, hub_store])


def register_mlflow(registry: MlflowRegistry, count: int = 2) -> None:
    """``count`` READY versions of every strategy's model in an MLflow registry (no run: metrics empty)."""
    client = registry.client
    for name in STRATEGIES:
        registry.create_registered_model_if_missing(name)
        for _ in range(count):
            tags = {**REGISTRATION_TAGS, "strategy_name": name, "feature_count": str(len(features_of(name)))}
            client.create_model_version(name, f"file:///nonexistent/{name}", tags=tags)


def embedded_repo(scratch: Path, versions: int = 2) -> Path:
    """A release repository pinning TAG on the embedded default: the tag pushed to the settings' hub,
    ``versions`` versions of every strategy registered in dev's MLflow (on SQLite)."""
    settings = Settings()
    sha = push_tag(ModelHub.from_settings(settings), scratch)
    seed_registry(settings, "dev", versions)
    return make_repo(scratch, TAG, sha)


def seed_registry(settings: Settings, env: str, versions: int) -> None:
    """``versions`` versions of every strategy in ``env``'s embedded MLflow registry: a copy of a
    template when the registry does not exist yet, else registered into it."""
    uri = settings.backends(env).mlflow_tracking_uri
    database = Path(uri.removeprefix("sqlite:///"))
    if not uri.startswith("sqlite:///") or database.exists():
        register_mlflow(MlflowRegistry.for_env(environment(settings, env), settings), versions)
    else:
        copy_registry(_mlflow_template(versions), database)


_MLFLOW_TEMPLATES: dict[int, Path] = {}


def _mlflow_template(versions: int) -> Path:
    """A dev MLflow SQLite file holding ``versions`` versions of every strategy, built once per process:
    creating the database (MLflow's migrations) and registering take about 2.8 s, a copy 10 ms."""
    if versions not in _MLFLOW_TEMPLATES:
        settings = Settings(state_dir=process_scratch("mlflow-template-"))
        register_mlflow(MlflowRegistry.for_env(environment(settings, "dev"), settings), versions)
        uri = settings.backends("dev").mlflow_tracking_uri
        _MLFLOW_TEMPLATES[versions] = Path(uri.removeprefix("sqlite:///"))
    return _MLFLOW_TEMPLATES[versions]


def copy_registry(template: Path, database: Path) -> None:
    """``template`` as ``database``, its default experiment's artifact location where MLflow would have
    put it for this process (``mlruns/0`` of the working directory); the versions hold no paths."""
    import sqlite3

    database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, database)
    with sqlite3.connect(database) as connection:
        location = str(Path.cwd().resolve() / "mlruns" / "0")
        update = "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0"
        connection.execute(update, (location,))


class CountingRegistry:
    """A ModelRegistry wrapper that records every write call (reads pass through)."""

    def __init__(self, inner: ModelRegistry) -> None:
        self.inner = inner
        self.tracking_uri = getattr(inner, "tracking_uri", "")  # apply runs an embedded one sequentially
        self.writes: list[tuple[str, ...]] = []

    @property
    def calls(self) -> int:
        return self.inner.calls

    def versions(self, names: Iterable[str]) -> dict[str, list[ModelVersionInfo]]:
        return self.inner.versions(names)

    def get_version(self, name: str, version: int) -> ModelVersionInfo:
        return self.inner.get_version(name, version)

    def aliased_models(self) -> dict[str, list[str]]:
        return self.inner.aliased_models()

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.writes.append(("set_alias", name, alias, str(version)))
        self.inner.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.writes.append(("delete_alias", name, alias))
        self.inner.delete_alias(name, alias)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.writes.append(("set_version_tag", name, str(version), key))
        self.inner.set_version_tag(name, version, key, value)

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        self.writes.append(("delete_version_tag", name, str(version), key))
        self.inner.delete_version_tag(name, version, key)

    def set_stage(self, name: str, version: int, stage: str) -> bool:
        self.writes.append(("set_stage", name, str(version), stage))
        return self.inner.set_stage(name, version, stage)

    def create_registered_model_if_missing(self, name: str) -> None:
        self.writes.append(("create_registered_model", name))
        self.inner.create_registered_model_if_missing(name)


class CountingTarget:
    """A DeploymentTarget wrapper that records every deploy (reads and waits pass through)."""

    def __init__(self, inner: DeploymentTarget) -> None:
        self.inner = inner
        self.name = inner.name
        self.waits = inner.waits
        self.writes: list[str] = []

    def definition_hash(self, spec: BotSpec) -> str:
        return self.inner.definition_hash(spec)

    def read(
        self, keys: Sequence[BotKey], *, known: Mapping[str, str], variables: bool = False
    ) -> dict[BotKey, RunningBot]:
        return self.inner.read(keys, known=known, variables=variables)

    def deploy(self, spec: BotSpec, stamp: DeployStamp) -> RunningBot:
        self.writes.append(spec.key.name)
        return self.inner.deploy(spec, stamp)

    def wait(self, keys: Sequence[BotKey]) -> None:
        self.inner.wait(keys)

    def undeclared(self, env: str, declared: Collection[BotKey]) -> dict[BotKey, RunningBot]:
        return self.inner.undeclared(env, declared)

    def retire(self, key: BotKey, stamp: DeployStamp) -> None:
        self.writes.append(f"retire {key.name}")
        self.inner.retire(key, stamp)


def counted_from_settings(settings: Settings, env: str) -> Counted:
    """The settings' real backends of ``env``, each wrapped in a counter."""
    real = EngineBackends.from_settings(settings, environment(settings, env))
    config_table = CountingTable(real.configs.table)
    release_table = CountingTable(real.releases)
    config_store = CountingObjects(real.configs.repository.store)
    hub_store = CountingObjects(real.hub.store)
    backends = EngineBackends(
        env=env,
        configs=ConfigVersionService(config_table, ConfigRepository(config_store)),
        registry=CountingRegistry(real.registry),
        hub=ModelHub(hub_store, workers=1),
        releases=release_table,
        target=CountingTarget(real.target),
    )
    return Counted(backends, [config_table, release_table], [config_store, hub_store])


# --- against the loopback servers (the e2e modules) ----------------------------------------------------

E2E_METRICS = {"total_profit": 100.0, "max_drawdown": 0.1, "win_rate": 0.5, "total_trades": 40.0}


def server_settings(moto_server: str, mlflow_server: str, repo: Path, uid: str) -> Settings:
    return Settings(
        repo=repo,
        aws_endpoint_url=moto_server,
        hub_uri=f"s3://hub-{uid}",
        hub_endpoint_url=moto_server,
        r2_access_key_id="testing",  # type: ignore[arg-type]
        r2_secret_access_key="testing",  # type: ignore[arg-type]
        envs={
            "prod": EnvOverrides(
                config_store_uri=f"s3://configs-{uid}",
                config_table_uri=f"dynamodb://tradai-config-versions-prod-{uid}",
                release_table_uri=f"dynamodb://tradai-releases-prod-{uid}",
                mlflow_tracking_uri=mlflow_server,
            )
        },
    )


def server_release_repo(settings: Settings, moto_server: str, tmp_path: Path, uid: str) -> Path:
    """Buckets, tables, a pushed tag, one registered version per strategy, and a repository pinning them."""
    client(AwsOptions(endpoint_url=moto_server), "s3").create_bucket(Bucket=f"hub-{uid}")
    provision(settings, environment(settings, "prod"))
    sha = push_tag(ModelHub.from_settings(settings), tmp_path)
    register_runs(MlflowRegistry.for_env(environment(settings, "prod"), settings), uid, (1.2,))
    repo = make_repo(tmp_path, TAG, sha)
    rename_models(repo, uid)
    commit_all(repo, "unique model names")
    return repo


def register_runs(registry: MlflowRegistry, suffix: str, sharpes: tuple[float, ...]) -> None:
    """One version per sharpe of each strategy's model ``<strategy>_<suffix>`` (names unique on the
    shared mlflow server), each from a run with backtest metrics and that sharpe."""
    for strategy in STRATEGIES:
        name = f"{strategy}_{suffix}"
        registry.create_registered_model_if_missing(name)
        count = str(len(features_of(strategy)))
        tags = {**REGISTRATION_TAGS, "strategy_name": strategy, "feature_count": count}
        experiment = registry.experiment_id(f"e2e-{name}")
        for sharpe in sharpes:
            run = registry.client.create_run(experiment)
            for key, value in {**E2E_METRICS, "sharpe_ratio": sharpe}.items():
                registry.client.log_metric(run.info.run_id, key, value)
            source = f"runs:/{run.info.run_id}/model"
            registry.client.create_model_version(name, source, run_id=run.info.run_id, tags=tags)


def rename_models(repo: Path, suffix: str) -> None:
    """Unique registered-model names: the mlflow server is shared by the whole test run."""
    for path in (repo / "releases").rglob("profile-*.yaml"):
        text = path.read_text()
        path.write_text(re.sub(r"(?m)^(\s+name: )(\w+)$", rf"\g<1>\g<2>_{suffix}", text))


# --- a world on the fake registry (the plan/apply unit tests) -----------------------------------------

@dataclass
class World:
    repo: Path
    settings: Settings
    registry: FakeRegistry
    counted: Counted
    hub: ModelHub
    sha: str

    def plan(self, commit: str = "HEAD") -> P.Plan:
        return plan_env(
            ReleaseContext.open(
                self.settings, "dev", commit=commit, repo=self.repo, backends=self.counted.backends
            )
        )

    def apply(self, commit: str = "HEAD", **kwargs: object):  # type: ignore[no-untyped-def]
        return apply_env(
            ReleaseContext.open(
                self.settings, "dev", commit=commit, repo=self.repo, backends=self.counted.backends
            ),
            actor="tester",
            **kwargs,
        )  # type: ignore[arg-type]

    def live(self) -> dict[str, object]:
        """Everything apply manages, as plain values (to compare two runs)."""
        versions = self.registry.versions(STRATEGIES)
        configs = self.counted.backends.configs.active_by_strategy()
        pointers = {p: self.hub.get_profile_pointer("dev", p) for p in range(1, 6)}
        return {
            "aliases": {
                n: sorted((a, i.version) for i in vs for a in i.aliases) for n, vs in versions.items()
            },
            "lifecycle": {
                n: [(i.version, current_lifecycle(i), i.stage) for i in vs] for n, vs in versions.items()
            },
            "configs": {n: c.config_hash for n, c in configs.items()},
            "pointers": {p: (x.tag, x.sha256) if x else None for p, x in pointers.items()},
        }


def make_world(tmp_path: Path, state: Path, versions: int = 2, template: World | None = None) -> World:
    """A repo, a hub with one tag, a fake registry; ``template`` is copied instead of built (faster)."""
    hub_root = tmp_path / "hub"
    if template is None:
        hub = ModelHub(LocalObjectStore(hub_root), workers=1)
        sha = push_tag(hub, tmp_path)
        repo = make_repo(tmp_path, TAG, sha)
    else:
        shutil.copytree(template.repo.parent / "hub", hub_root)
        shutil.copytree(template.repo, tmp_path / "repo")
        hub, sha, repo = ModelHub(LocalObjectStore(hub_root), workers=1), template.sha, tmp_path / "repo"
    registry = FakeRegistry()
    register_versions(registry, versions)
    counted = local_backends(state, "dev", registry, hub_root)
    return World(repo, Settings(repo=repo), registry, counted, hub, sha)


def policy_problems(tmp_path: Path, policy: str) -> list[str]:
    """The offline validation problems of this project's releases/ with ``policy`` as its policy.yaml."""
    from tradai_release.repository.rules import validate_offline
    from tradai_release.repository.tree import ReleaseTree

    repo = make_repo(tmp_path, TAG, "0" * 64)
    (repo / "releases" / "policy.yaml").write_text(policy)
    tree = ReleaseTree.work(repo)
    return [str(p) for p in validate_offline(tree.tree, tree.load()) if "policy" in p.file]
