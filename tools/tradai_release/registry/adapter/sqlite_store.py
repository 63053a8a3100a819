"""A new SQLite registry starts as a copy of an empty, already migrated one.

MLflow builds a new SQLite store by running its whole chain of schema migrations: 1 to 2 s of CPU
for every environment's first registration, every demo and every scratch repository. The result
depends only on the MLflow version, so it is made once per version in the user's cache directory
and copied (milliseconds). The copy holds the schema alone: the Default experiment is deleted from
the template, and MLflow creates it on first open with this store's own artifact root and time,
as it would have in a store it migrated itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
from pathlib import Path

from tradai_release.core.fsutil import user_cache_dir

_BUILDING = threading.Lock()


def create_from_template(database: Path) -> bool:
    """Create ``database`` as a copy of the migrated template, unless it exists. False when no template
    could be made or copied (an unwritable cache, say): MLflow then migrates the new store itself."""
    try:
        template = _template()
        partial = database.with_name(f".{database.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            shutil.copyfile(template, partial)
            # A link, not a rename: it fails rather than replace a store another process created meanwhile.
            os.link(partial, database)
        finally:
            partial.unlink(missing_ok=True)
    except FileExistsError:
        return True
    except (OSError, sqlite3.Error):
        return False
    return True


def _template() -> Path:
    """The migrated, empty store for the installed MLflow, made on first use (built aside, renamed in).
    One thread at a time: alembic keeps a running migration's context in module globals, so two
    migrations in one process break each other (another process's is harmless: the rename)."""
    import mlflow

    directory = user_cache_dir() / "mlflow-schema"
    path = directory / f"mlflow-{mlflow.__version__}.db"
    with _BUILDING:
        if path.exists():
            return path
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            building = Path(scratch) / "store.db"
            _migrate(building, Path(scratch) / "artifacts")
            os.replace(building, path)
    return path


def _migrate(database: Path, artifact_root: Path) -> None:
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    uri = f"sqlite:///{database}"
    for store in (TrackingStore(uri, str(artifact_root)), RegistryStore(uri)):
        store.engine.dispose()
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("DELETE FROM experiments WHERE experiment_id = 0")
