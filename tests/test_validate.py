"""Offline validation rules of docs/architecture.md §4 on real git repositories built in tmp_path."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tradai_release.confighash import config_hash
from tradai_release.diff import changed_since
from tradai_release.errors import GitError
from tradai_release.gitrepo import GitTree
from tradai_release.repo import WorkTree, load_release_repo
from tradai_release.rules import tracked_files, validate_offline
from tradai_release.yamlio import load_yaml

# The seed's MyStrategy example, verbatim (docs/architecture.md §3).
SEED_TRADAI = """\
strategy:
  name: "MyStrategy"
  version: "1.0.0"
  entry_point: "mystrategy.strategy:MyStrategy"
  category: "momentum"
  timeframe: "1h"

strategy_service:
  source:
    KIND: Binance
  adapter:
    KIND: AWS
    bucket_name: tradai-data
    library: ohlcv
  defaults:
    timerange: "20240101-20241201"
    symbols:
      - "BTC/USDT:USDT"
      - "ETH/USDT:USDT"
    stake_amount: 1000
    max_open_trades: 3

mlflow:
  tracking_uri: ${MLFLOW_TRACKING_URI:-http://localhost:5001}
  experiment_name: "strategies/mystrategy"
  auto_log_params: true

optimization:
  defaults:
    epochs: 100
    loss_function: sharpe
    spaces: [buy, sell]
  presets:
    quick:
      epochs: 50
      spaces: [buy]
    standard:
      epochs: 200
      spaces: [buy, sell]
    production:
      epochs: 1000
      spaces: [buy, sell, roi, stoploss, trailing]
      walk_forward: true

deployment:
  ecr:
    repository: "tradai/strategies/mystrategy"
  ecs:
    cpu: 512
    memory: 1024
"""

ML_CONFIG = {
    "features": ["ret_1", "ret_3", "rsi_14", "macd_hist", "hour_sin", "hour_cos"],
    "signal": {"horizon": 4, "threshold": 0.001},
    "position": {"horizon": 12},
    "test_fraction": 0.25,
    "fee": 0.0006,
    "seed": 42,
}

TAG_SHA = "5d41402abc4b2a76b9719d911017c592ae1f1c2d7fd08d1e2a7a5d94e0b0c0de"


def strategy_yaml(name: str) -> str:
    """The seed's tradai.yaml with the strategy renamed (so each test repo has several strategies)."""
    return SEED_TRADAI.replace("MyStrategy", name).replace("mystrategy", name.lower())


def manifest_yaml(environment: str, profile: int, pins: dict[str, str], production: int = 1) -> str:
    lines = [
        f"# Release manifest: profile {profile} in {environment}.",
        f"profile: {profile}",
        f"environment: {environment}",
        "description: test profile",
        "artifacts:",
        "  tag: v20260415-p1   # model-hub tag",
        f"  sha256: {TAG_SHA}",
        "strategies:",
    ]
    for name, digest in pins.items():
        lines += [
            f"  {name}:",
            f"    config: {digest}  # config hash of strategies/{name}/tradai.yaml",
            "    model:",
            f"      name: {name}",
            f"      production: {production}",
        ]
    return "\n".join(lines) + "\n"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def make_release_repo(
    root: Path,
    strategies: tuple[str, ...] = ("MyStrategy", "PascalStrategy"),
    manifests: tuple[tuple[str, int], ...] = (("dev", 1), ("dev", 2), ("prod", 1)),
) -> Path:
    """A valid release repository in ``root``, committed once on branch main."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    pins = {}
    for name in strategies:
        directory = root / "strategies" / name
        directory.mkdir(parents=True)
        text = strategy_yaml(name)
        (directory / "tradai.yaml").write_text(text)
        (directory / "ml_config.json").write_text(json.dumps(ML_CONFIG, indent=2))
        pins[name] = config_hash(load_yaml(text.encode(), "t").data)
    for environment, profile in manifests:
        path = root / "releases" / environment / f"profile-{profile}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(manifest_yaml(environment, profile, pins))
    commit_all(root, "initial release repository")
    return root


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return make_release_repo(tmp_path / "repo")


def problems_of(root: Path) -> list[str]:
    return [str(problem) for problem in validate_offline(WorkTree(root))]


def test_valid_repository_has_no_problems(repo: Path) -> None:
    assert problems_of(repo) == []
    loaded = load_release_repo(WorkTree(repo))
    assert sorted(loaded.strategies) == ["MyStrategy", "PascalStrategy"]
    assert sorted(loaded.manifests) == [("dev", 1), ("dev", 2), ("prod", 1)]
    pin = loaded.manifests[("prod", 1)].strategies["MyStrategy"]
    assert pin.config == loaded.strategies["MyStrategy"].config_hash
    assert pin.model.name == "MyStrategy" and pin.model.production == 1 and pin.model.staging is None
    assert loaded.strategies["MyStrategy"].ml_config.signal.horizon == 4


def test_git_tree_reads_the_same_state_without_checkout(repo: Path) -> None:
    (repo / "releases" / "dev" / "profile-1.yaml").write_text("not: [valid\n")  # uncommitted breakage
    with GitTree(repo, "HEAD") as tree:
        loaded = load_release_repo(tree)
        assert loaded.problems == []
        assert sorted(loaded.manifests) == [("dev", 1), ("dev", 2), ("prod", 1)]
        assert tree.listdir("strategies") == ["MyStrategy", "PascalStrategy"]
        assert validate_offline(tree) == []
    assert any(line.startswith("releases/dev/profile-1.yaml:") for line in problems_of(repo))


def test_git_tree_unknown_ref_is_a_git_error(repo: Path) -> None:
    with pytest.raises(GitError, match="no-such-branch"):
        GitTree(repo, "no-such-branch")


def test_manifest_path_must_agree_with_environment_and_profile(repo: Path) -> None:
    path = repo / "releases" / "dev" / "profile-2.yaml"
    path.write_text(path.read_text().replace("environment: dev", "environment: prod"))
    [problem] = problems_of(repo)
    assert problem.startswith("releases/dev/profile-2.yaml:3: environment: 'prod' disagrees")


def test_profile_number_must_agree_with_file_name(repo: Path) -> None:
    path = repo / "releases" / "dev" / "profile-2.yaml"
    path.write_text(path.read_text().replace("profile: 2", "profile: 3"))
    [problem] = problems_of(repo)
    assert problem.startswith("releases/dev/profile-2.yaml:2: profile: 3 disagrees")


def test_pin_of_missing_strategy(repo: Path) -> None:
    path = repo / "releases" / "prod" / "profile-1.yaml"
    path.write_text(path.read_text().replace("PascalStrategy", "GhostStrategy"))
    [problem] = problems_of(repo)
    assert problem.startswith("releases/prod/profile-1.yaml:")
    assert "strategies.GhostStrategy: strategy 'GhostStrategy' does not exist" in problem


def test_stale_config_hash(repo: Path) -> None:
    tradai = repo / "strategies" / "PascalStrategy" / "tradai.yaml"
    tradai.write_text(tradai.read_text().replace("stake_amount: 1000", "stake_amount: 2000"))
    found = problems_of(repo)
    assert len(found) == 3  # every manifest that pins PascalStrategy
    assert all("strategies.PascalStrategy.config: stale config hash" in line for line in found)
    assert found[0].startswith("releases/dev/profile-1.yaml:")


def test_profiles_of_one_env_must_pin_one_config(repo: Path) -> None:
    # Both hashes are well-formed; the second profile pins another config than the first.
    tradai = repo / "strategies" / "PascalStrategy" / "tradai.yaml"
    old = config_hash(load_yaml(tradai.read_bytes(), "t").data)
    tradai.write_text(tradai.read_text().replace("stake_amount: 1000", "stake_amount: 2000"))
    new = config_hash(load_yaml(tradai.read_bytes(), "t").data)
    for profile in (1, 2):
        path = repo / "releases" / "dev" / f"profile-{profile}.yaml"
        path.write_text(path.read_text().replace(old, new if profile == 1 else old))
    prod = repo / "releases" / "prod" / "profile-1.yaml"
    prod.write_text(prod.read_text().replace(old, new))
    found = problems_of(repo)
    consistency = [line for line in found if "one ACTIVE config" in line]
    assert len(consistency) == 1
    assert consistency[0].startswith("releases/dev/profile-2.yaml:")
    assert "strategies.PascalStrategy.config: pins config" in consistency[0]


def test_tracked_model_binary(repo: Path) -> None:
    binary = repo / "strategies" / "MyStrategy" / "models" / "signal.pkl"
    binary.parent.mkdir()
    binary.write_bytes(b"\x80\x04not really a pickle")
    git(repo, "add", "-f", str(binary))
    assert tracked_files(WorkTree(repo)).count("strategies/MyStrategy/models/signal.pkl") == 1
    [problem] = problems_of(repo)
    assert problem.startswith("strategies/MyStrategy/models/signal.pkl: (file): model binary tracked in git")


def test_untracked_binary_is_fine(repo: Path) -> None:
    (repo / "strategies" / "MyStrategy" / "model_xgb.json").write_text("{}")
    assert problems_of(repo) == []


def test_strategy_name_must_match_directory(repo: Path) -> None:
    tradai = repo / "strategies" / "PascalStrategy" / "tradai.yaml"
    tradai.write_text(tradai.read_text().replace('name: "PascalStrategy"', 'name: "Pascal"'))
    found = [line for line in problems_of(repo) if "strategy.name" in line]
    assert found == [
        "strategies/PascalStrategy/tradai.yaml:2: strategy.name: 'Pascal' differs from its directory name "
        "'PascalStrategy'"
    ]


def test_ml_config_features_come_from_the_catalogue(repo: Path) -> None:
    path = repo / "strategies" / "MyStrategy" / "ml_config.json"
    data = dict(ML_CONFIG, features=["ret_1", "moon_phase"])
    path.write_text(json.dumps(data))
    assert problems_of(repo) == [
        "strategies/MyStrategy/ml_config.json: features[1]: unknown feature 'moon_phase' "
        "(not in the feature catalogue)"
    ]


def test_ml_config_schema(repo: Path) -> None:
    path = repo / "strategies" / "MyStrategy" / "ml_config.json"
    path.write_text(json.dumps(dict(ML_CONFIG, test_fraction=0.7, fee="cheap")))
    found = problems_of(repo)
    assert any(
        line.startswith("strategies/MyStrategy/ml_config.json: fee: expected number") for line in found
    )
    assert any(line.startswith("strategies/MyStrategy/ml_config.json: test_fraction:") for line in found)


def test_bad_sha256_and_unknown_environment_dir(repo: Path) -> None:
    path = repo / "releases" / "dev" / "profile-1.yaml"
    path.write_text(path.read_text().replace(TAG_SHA, "ABC123"))
    (repo / "releases" / "qa").mkdir()
    (repo / "releases" / "qa" / "profile-1.yaml").write_text("profile: 1\n")
    found = problems_of(repo)
    assert 'releases/dev/profile-1.yaml:7: artifacts.sha256: "ABC123" does not match ^[0-9a-f]{64}$' in found
    assert ("releases/qa: environment: environment 'qa' is not declared in releases/policy.yaml "
            "(dev, staging, prod)") in found


def test_changed_since_names_strategies_and_manifests(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    assert changed_since(repo, base, WorkTree(repo)).is_empty()
    tradai = repo / "strategies" / "MyStrategy" / "tradai.yaml"
    tradai.write_text(tradai.read_text() + "# a comment\n")
    prod = repo / "releases" / "prod" / "profile-1.yaml"
    prod.write_text(prod.read_text().replace("production: 1", "production: 2"))
    (repo / "releases" / "staging").mkdir()
    (repo / "releases" / "staging" / "profile-4.yaml").write_text("profile: 4\n")
    changes = changed_since(repo, base, WorkTree(repo))
    assert changes.strategies == frozenset({"MyStrategy"})
    assert changes.manifests == frozenset({("prod", 1), ("staging", 4)})
    assert changes.environments == frozenset({"prod", "staging"})


def test_manifest_edits_keep_comments_and_order(repo: Path) -> None:
    from tradai_release.errors import InputError
    from tradai_release.manifest_edit import edit_manifest

    path = repo / "releases" / "prod" / "profile-1.yaml"
    before = path.read_text()
    with edit_manifest(path, "releases/prod/profile-1.yaml") as editor:
        editor.set_production("MyStrategy", 3)
        editor.set_staging("MyStrategy", 4)
        editor.set_override("MyStrategy", "alice", "drawdown within the desk's limit")
        editor.set_artifacts("v20260501-p1", "0" * 64)
    after = path.read_text()
    assert after.splitlines()[0] == before.splitlines()[0]  # the header comment survives
    assert "  tag: v20260501-p1   # model-hub tag" in after
    assert "  sha256: '" + "0" * 64 + "'" in after  # quoted: an all-digit hash must stay a string
    loaded = load_release_repo(WorkTree(repo)).manifests[("prod", 1)]
    model = loaded.strategies["MyStrategy"].model
    assert (model.production, model.staging, model.override and model.override.approved_by) == (3, 4, "alice")
    assert list(loaded.strategies) == ["MyStrategy", "PascalStrategy"]

    with edit_manifest(path) as editor:
        editor.set_staging("MyStrategy", None)
        editor.set_override("MyStrategy", None)
    assert "staging" not in path.read_text() and "override" not in path.read_text()

    # An edit that would break the manifest is refused and nothing is written.
    current = path.read_text()
    with pytest.raises(InputError, match=r"strategies\.MyStrategy\.config"), edit_manifest(path) as editor:
        editor.set_config("MyStrategy", "not-a-hash")
    assert path.read_text() == current
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    # Nothing to change: the file is not rewritten at all.
    stamp = path.stat().st_mtime_ns
    with edit_manifest(path) as editor:
        editor.set_production("MyStrategy", 3)
    assert path.stat().st_mtime_ns == stamp
