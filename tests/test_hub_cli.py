"""tools/r2_hub.py: the seed's flags in-process on a file hub, errors as one line, and end to end over S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from hub_helpers import make_models_dir, snapshot

SCRIPT = REPO_ROOT / "tools" / "r2_hub.py"


def _run(args: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _main(args: list[str]) -> int:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import r2_hub
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return r2_hub.main(args)


@pytest.fixture
def file_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADAI_HUB_URI", f"file://{tmp_path / 'hub'}")
    monkeypatch.setenv("TRADAI_REPO", str(tmp_path / "repo"))
    (tmp_path / "repo").mkdir()
    return tmp_path


def test_missing_credentials_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    for args in (["--list"], ["--pull"], ["--push"]):
        done = _run(args, {"TRADAI_HUB_URI": f"s3://hub-{uuid.uuid4().hex[:8]}"}, cwd=tmp_path)
        assert done.returncode == 1
        assert done.stderr == "error: missing credentials: set CF_R2_ACCESS_KEY_ID (model hub access)\n"
        assert done.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["--list", "--revision", "v1"],
        ["--push", "--profile", "3"],
        ["--pull", "--tag", "x"],
        ["--push", "--strategy", "AlphaStrategy"],
        [],
    ],
)
def test_flags_that_do_not_apply_are_usage_errors(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _main(args)
    assert exit_.value.code == 2
    assert "r2_hub.py" in capsys.readouterr().err


def test_seed_workflow_on_a_file_hub(file_hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = make_models_dir(file_hub / "repo" / "models", ("AlphaStrategy",))
    original = snapshot(models)
    assert _main(["--push", "--message", "Phase 15"]) == 0
    out = capsys.readouterr().out
    assert "pushed tag v" in out and "uploaded 13 files" in out
    assert _main(["--push"]) == 0
    assert "uploaded 0 files, 0 B; 13 already in the hub" in capsys.readouterr().out

    assert _main(["--list", "--json"]) == 0
    tags = json.loads(capsys.readouterr().out)
    assert [t["latest"] for t in tags] == [False, True]
    first = tags[0]["tag"]
    assert tags[0]["message"] == "Phase 15" and tags[1]["tag"] == f"{first}-2"

    assert _main(["--tag-only", "v15-production", "Phase 15 validated", "--from", first]) == 0
    assert "created tag v15-production" in capsys.readouterr().out
    assert _main(["--list"]) == 0
    assert "v15-production <- " + first in capsys.readouterr().out

    (models / "AlphaStrategy" / "signal" / "ensemble_rf.pkl").write_bytes(b"junk")
    assert _main(["--pull", "--revision", "v15-production"]) == 0
    assert "downloaded 1 files" in capsys.readouterr().out
    assert snapshot(models) == original

    other = file_hub / "elsewhere"
    assert _main(["--pull", "--models-dir", str(other)]) == 0
    assert snapshot(other) == original


def test_pull_of_one_strategy_leaves_the_others(file_hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = make_models_dir(file_hub / "repo" / "models", ("AlphaStrategy", "BetaStrategy"))
    assert _main(["--push", "--tag", "v1"]) == 0
    original = snapshot(models)
    (models / "BetaStrategy" / "signal" / "ensemble_rf.onnx").write_bytes(b"stale")
    (models / "BetaStrategy" / "extra.pkl").write_bytes(b"not in the tag")
    (models / "AlphaStrategy" / "signal" / "ensemble_rf.onnx").write_bytes(b"local, not asked for")
    alpha = snapshot(models / "AlphaStrategy")
    capsys.readouterr()
    assert _main(["--pull", "--revision", "v1", "--strategy", "BetaStrategy"]) == 0
    out = capsys.readouterr().out
    assert "pulled tag v1 (BetaStrategy only)" in out and "downloaded 1 files, 2.0 KB; 12 already" in out
    beta = {path: data for path, data in original.items() if path.startswith("BetaStrategy/")}
    assert {path: data for path, data in snapshot(models).items() if path.startswith("BetaStrategy/")} == beta
    assert snapshot(models / "AlphaStrategy") == alpha
    with pytest.raises(SystemExit):
        _main(["--pull", "--strategy", "GammaStrategy"])
    assert "holds no files for GammaStrategy" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _main(["--pull", "--strategy", "../etc"])
    assert capsys.readouterr().err.startswith("error: --strategy: strategy: '../etc'")


def test_cli_refuses_bad_inputs_with_one_line(file_hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = make_models_dir(file_hub / "repo" / "models", ("AlphaStrategy",))
    assert _main(["--push", "--tag", "v1"]) == 0
    capsys.readouterr()
    before = snapshot(models)
    for profile in (1, 3):  # the repository's prod profiles: a profile the env lacks is refused by name
        (file_hub / "repo" / "releases" / "prod").mkdir(parents=True, exist_ok=True)
        (file_hub / "repo" / "releases" / "prod" / f"profile-{profile}.yaml").write_text("")
    cases = [
        (["--push", "--tag", "v1"], "tag v1: already exists (tags are immutable)"),
        (["--push", "--tag", "../evil"], "invalid tag name '../evil'"),
        (["--pull", "--revision", "../../etc"], "invalid tag name"),
        (["--pull", "--revision", "v9"], "tag v9: no such tag"),
        (["--pull", "--profile", "3"], "prod profile 3: no approved revision recorded"),
        (["--pull", "--profile", "0"], "'0' is not a profile number"),
        (["--pull", "--profile", "7"], "unknown profile 7 (prod has profiles 1, 3)"),
        (["--pull", "--profile", "3", "--env", "qa"], "unknown environment 'qa'"),
        (["--tag-only", "x", "msg", "--from", "nope"], "tag nope: no such tag"),
    ]
    for args, expected in cases:
        with pytest.raises(SystemExit) as exit_:
            _main(args)
        err = capsys.readouterr().err
        assert exit_.value.code == 1, args
        assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, (args, err)
    assert snapshot(models) == before


def test_cli_pull_checks_features_of_the_working_tree(
    file_hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = file_hub / "repo"
    models = make_models_dir(repo / "models", ("AlphaStrategy",), features=("ret_1", "ret_3"))
    assert _main(["--push", "--tag", "narrow"]) == 0
    (repo / "strategies" / "AlphaStrategy").mkdir(parents=True)
    ml_config = {"features": ["ret_1", "ret_3", "rsi_14"], "signal": {"horizon": 4, "threshold": 0.001},
                 "position": {"horizon": 12}, "test_fraction": 0.25, "fee": 0.0006, "seed": 42}
    (repo / "strategies" / "AlphaStrategy" / "ml_config.json").write_text(json.dumps(ml_config))
    before = snapshot(models)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        _main(["--pull", "--revision", "narrow"])
    assert "feature_count 2 != 3 features in ml_config" in capsys.readouterr().err
    assert snapshot(models) == before


@pytest.mark.e2e
def test_push_then_pull_revision_against_moto_server(moto_server: str, tmp_path: Path) -> None:
    from tradai_release.core.endpoints import AwsOptions
    from tradai_release.stores.aws import client

    bucket = f"hub-e2e-{uuid.uuid4().hex[:8]}"
    client(AwsOptions(endpoint_url=moto_server, region="us-east-1"), "s3").create_bucket(Bucket=bucket)
    env = {
        "TRADAI_HUB_URI": f"s3://{bucket}",
        "TRADAI_HUB_ENDPOINT_URL": moto_server,
        "CF_R2_ACCESS_KEY_ID": "testing",
        "CF_R2_SECRET_ACCESS_KEY": "testing",
        "TRADAI_REPO": str(tmp_path),
    }
    models = make_models_dir(tmp_path / "models", ("AlphaStrategy", "BetaStrategy"), size=200_000)
    pushed = _run(["--push", "--tag", "v20260415-p3", "--message", "e2e"], env)
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed tag v20260415-p3" in pushed.stdout and "uploaded 26 files" in pushed.stdout
    again = _run(["--push"], env)
    assert again.returncode == 0 and "uploaded 0 files, 0 B" in again.stdout, again.stderr

    dest = tmp_path / "bot" / "models"
    pulled = _run(["--pull", "--revision", "v20260415-p3", "--models-dir", str(dest)], env)
    assert pulled.returncode == 0, pulled.stderr
    assert snapshot(dest) == snapshot(models)

    listed = _run(["--list", "--json"], env)
    assert next(t["tag"] for t in json.loads(listed.stdout)) == "v20260415-p3"

    missing = _run(["--pull", "--revision", "v19990101"], env)
    assert missing.returncode == 1 and missing.stderr.startswith("error: model hub s3://")
    assert missing.stderr.count("\n") == 1
