"""A new SQLite registry is a copy of the migrated template: the same store MLflow would have made."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.registry.adapter.sqlite_store import create_from_template


def _schema(database: Path) -> dict[str, object]:
    """Tables, their columns, indexes and foreign keys, and the migration revision. Not the tables' SQL
    text: MLflow's own migrations order a table's constraints differently from one run to the next."""
    with closing(sqlite3.connect(database)) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        schema: dict[str, object] = {
            "revision": connection.execute("SELECT version_num FROM alembic_version").fetchall()
        }
        for name in names:
            schema[name] = (
                sorted(row[1:] for row in connection.execute(f"PRAGMA table_info('{name}')")),
                sorted(row[1:] for row in connection.execute(f"PRAGMA index_list('{name}')")),
                sorted(row[2:] for row in connection.execute(f"PRAGMA foreign_key_list('{name}')")),
            )
    return schema


def _default_experiment(uri: str) -> tuple[str, str]:
    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(tracking_uri=uri).get_experiment("0")
    return experiment.name, experiment.artifact_location


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # MLflow's Default experiment lives under the working directory
    return tmp_path


def test_a_copied_store_is_the_store_mlflow_migrates_itself(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    copied, migrated = workdir / "copied" / "mlflow.db", workdir / "migrated" / "mlflow.db"
    copied.parent.mkdir()
    migrated.parent.mkdir()
    assert create_from_template(copied)
    SqlAlchemyStore(f"sqlite:///{migrated}", "./mlruns").engine.dispose()  # MLflow's own migrations

    assert _schema(copied) == _schema(migrated)
    # The template holds no Default experiment: the copy's is made on open, where this store would put it.
    assert _default_experiment(f"sqlite:///{copied}") == _default_experiment(f"sqlite:///{migrated}")
    assert _default_experiment(f"sqlite:///{copied}")[1] == f"{workdir}/mlruns/0"


def test_the_template_is_made_once_and_an_existing_store_is_never_replaced(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = workdir / "first.db"
    assert create_from_template(first)
    (template,) = (tmp_path / "cache" / "tradai-release" / "mlflow-schema").iterdir()
    made = template.stat().st_mtime_ns

    second = workdir / "second.db"
    assert create_from_template(second)
    assert template.stat().st_mtime_ns == made
    assert second.read_bytes() == first.read_bytes()

    existing = workdir / "existing.db"
    existing.write_bytes(b"someone else's store")
    assert create_from_template(existing)  # it exists: that is all a caller needs
    assert existing.read_bytes() == b"someone else's store"
    assert sorted(p.name for p in workdir.glob("*.db*")) == ["existing.db", "first.db", "second.db"]


def test_without_a_writable_cache_mlflow_migrates_the_new_store_itself(
    workdir: Path, unwritable_cache: Path
) -> None:
    database = workdir / "db" / "mlflow.db"
    database.parent.mkdir()
    assert not create_from_template(database)
    assert list(database.parent.iterdir()) == []  # no partial copy left behind

    registry = MlflowRegistry(f"sqlite:///{database}", str(workdir / "artifacts"))
    assert registry.versions(["KeplerStrategy"]) == {"KeplerStrategy": []}
    registry.create_registered_model_if_missing("KeplerStrategy")
    assert database.exists() and registry.versions(["KeplerStrategy"]) == {"KeplerStrategy": []}


def test_stores_created_at_once_by_threads_share_one_template(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no template yet: all want to make it
    databases = [workdir / f"env{n}.db" for n in range(3)]
    with ThreadPoolExecutor(len(databases)) as pool:
        assert list(pool.map(create_from_template, databases)) == [True] * len(databases)
    assert len({database.read_bytes() for database in databases}) == 1
    assert len(list((tmp_path / "cache" / "tradai-release" / "mlflow-schema").iterdir())) == 1
