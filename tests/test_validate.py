"""Offline validation rules of docs/architecture.md §4 on real git repositories built in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import ML_CONFIG, TAG_SHA, git
from tradai_release.core.confighash import config_hash
from tradai_release.core.errors import GitError
from tradai_release.core.yamlio import load_yaml
from tradai_release.domain.diff import changed_since
from tradai_release.repository.gitrepo import GitTree
from tradai_release.repository.rules import tracked_files, validate_offline
from tradai_release.repository.tree import WorkTree, load_release_repo


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


def test_each_entry_point_names_a_class_of_its_strategys_folder(repo: Path) -> None:
    """Checked by parsing the module file (validating imports neither Freqtrade nor a pull request's code)."""
    code = repo / "strategies" / "PascalStrategy" / "pascalstrategy" / "strategy.py"
    code.write_text("import freqtrade_that_is_not_installed\n\nclass Other:\n    pass\n")
    (repo / "strategies" / "MyStrategy" / "mystrategy" / "strategy.py").unlink()
    assert problems_of(repo) == [
        "strategies/MyStrategy/tradai.yaml:4: strategy.entry_point: no module file "
        "strategies/MyStrategy/mystrategy/strategy.py",
        "strategies/PascalStrategy/tradai.yaml:4: strategy.entry_point: "
        "strategies/PascalStrategy/pascalstrategy/strategy.py defines no class PascalStrategy",
    ]
    code.write_text("class PascalStrategy(\n")
    assert "strategy.py does not parse (line 1)" in problems_of(repo)[-1]


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
    from tradai_release.core.errors import InputError
    from tradai_release.repository.manifest_edit import edit_manifest

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
