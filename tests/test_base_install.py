"""The base install is a bot's: a venv with only the package's base dependencies starts a bot on an
embedded-default state another venv applied, and a task needing an extra says which one in one line."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from engine_helpers import TAG, embedded_repo, git
from tradai_release.configs import ConfigVersionService
from tradai_release.core.settings import Settings
from tradai_release.engine.apply import apply_env
from tradai_release.engine.context import ReleaseContext
from tradai_release.repository.environments import environment
from tradai_release.runtime.ready import RECORD_FIELDS

STRATEGY = "PascalStrategy"
HEAVY = (
    "mlflow", "sklearn", "xgboost", "lightgbm", "pandas", "skl2onnx", "onnxmltools", "matplotlib", "jinja2",
    "moto", "pytest",
)


def user_cache(name: str) -> str:
    """The user's cache directory ``name`` (the tests run with a temporary HOME, whose caches are empty)."""
    home = pwd.getpwuid(os.getuid()).pw_dir
    return str(Path(home) / ".cache" / name)


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (with pip, as a user's) holding ``<checkout>`` installed without extras, built from a
    copy of the checkout so the build leaves nothing in it. uv installs it: the same resolution of the base
    dependencies as ``pip install``, in a few seconds instead of half a minute of pip's."""
    root = tmp_path_factory.mktemp("base-install")
    source = root / "source"
    ignore = shutil.ignore_patterns("*.egg-info", "__pycache__", "build")
    shutil.copytree(REPO_ROOT / "tools", source / "tools", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {**os.environ, "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR") or user_cache("uv")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "uv"), "pip", "install", "--quiet", "--python",
         str(venv / "bin" / "python"), str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def in_base(venv: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A command of the base venv, outside the checkout (nothing of the main venv on its path)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean["PATH"] = f"{venv / 'bin'}{os.pathsep}{clean.get('PATH', '')}"
    return subprocess.run(
        list(args), env={**clean, **(env or {})}, capture_output=True, text=True, timeout=300, check=False,
        cwd=venv,
    )


@pytest.mark.slow
def test_a_base_install_starts_a_bot_and_names_the_missing_extra(base_venv: Path, tmp_path: Path) -> None:
    python = str(base_venv / "bin" / "python")
    listed = in_base(base_venv, python, "-m", "pip", "list", "--format=json")
    installed = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert "tradai-release" in installed and "onnxruntime" in installed and "boto3" in installed
    assert not installed & {"mlflow", "mlflow-skinny", "scikit-learn", "xgboost-cpu", "lightgbm", "pandas"}
    probe = "import importlib.util, sys; print([m for m in sys.argv[1:] if importlib.util.find_spec(m)])"
    found = in_base(base_venv, python, "-c", probe, *HEAVY)
    assert found.returncode == 0 and found.stdout.strip() == "[]", found.stdout + found.stderr

    helped = in_base(base_venv, python, "-m", "tradai_release.runtime", "--help")
    assert helped.returncode == 0 and "--env-file F" in helped.stdout, helped.stderr

    # The embedded default (SQLite tables, a file hub, MLflow on SQLite) applied by this venv.
    repo = embedded_repo(tmp_path, 1)
    assert apply_env(ReleaseContext.open(Settings(repo=repo), "dev"), actor="ci").outcome == "succeeded"
    models = tmp_path / "bot" / "models"
    env = {"TRADAI_REPO": str(repo), "TRADAI_MODELS_DIR": str(models)}

    env_file = Path(os.environ["TRADAI_STATE_DIR"]) / "dev" / "bots" / f"{STRATEGY}-p3.env"
    runtime = (python, "-m", "tradai_release.runtime")
    done = in_base(base_venv, *runtime, "--env-file", str(env_file), "--json", env=env)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert list(record) == sorted(RECORD_FIELDS)
    assert (record["pins_from"], record["hub_tag"], record["model_version"]) == ("deployment", TAG, 1)
    assert record["downloaded_files"] == 13 and record["git_commit"] == git(repo, "rev-parse", "HEAD")
    active = ConfigVersionService.for_env(environment(Settings(), "dev"), Settings()).get_active(STRATEGY)
    assert active is not None and record["config_id"] == active.config_id

    # Without deployment pins the bot checks the live alias in the registry: that needs the client.
    live = in_base(base_venv, *runtime, "--env", "dev", "--profile", "3", "--strategy", STRATEGY, env=env)
    assert live.returncode == 1 and live.stdout == ""
    assert live.stderr == "error: tradai-release[registry]: mlflow: not installed " \
        "(pip install 'tradai-release[registry]')\n"
    assert (models / STRATEGY / "model_compat.json").is_file()

    hub_cli = str(REPO_ROOT / "tools" / "r2_hub.py")
    listed_tags = in_base(base_venv, python, hub_cli, "--list", "--json", env=env)
    assert listed_tags.returncode == 0 and TAG in listed_tags.stdout, listed_tags.stderr

    before = {path: path.read_bytes() for path in models.rglob("*") if path.is_file()}
    trained = in_base(
        base_venv, str(base_venv / "bin" / "invoke"), "--search-root", str(REPO_ROOT), "train",
        "--strategy", STRATEGY, env=env,
    )
    assert trained.returncode == 1 and trained.stdout == ""
    assert trained.stderr.startswith("error: tradai-release[train]: "), trained.stderr
    assert trained.stderr.endswith(": not installed (pip install 'tradai-release[train]')\n")
    assert trained.stderr.count("\n") == 1
    assert {path: path.read_bytes() for path in models.rglob("*") if path.is_file()} == before
