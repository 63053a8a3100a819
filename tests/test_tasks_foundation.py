"""The real `invoke validate / hash / diff` CLI in temporary git repositories: exit codes and error lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers import BILLION_LAUGHS, commit_all, git, invoke


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, "expected error lines on stderr"
    assert all(line.startswith("error: ") for line in lines), done.stderr
    return lines


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_valid_repo_passes(repo: Path) -> None:
    done = invoke(repo, "validate", "--offline")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "2 strategies and 3 manifests pass validation" in done.stdout


MANIFEST = "releases/dev/profile-2.yaml"
TRADAI = "strategies/PascalStrategy/tradai.yaml"


@pytest.mark.parametrize(
    ("path", "old", "new", "expected"),
    [
        (MANIFEST, "strategies:", "strategies: [", f"error: {MANIFEST}:10: (yaml): malformed YAML"),
        (
            TRADAI,
            "strategy:",
            "strategy:\n  name: X\n",
            f"error: {TRADAI}:4: name: duplicate key (first defined on line 2)",
        ),
        (TRADAI, "  ecs:\n", "  ecs:\n    gpu: 1\n", f"error: {TRADAI}:49: deployment.ecs.gpu: unknown key"),
        (TRADAI, "cpu: 512", "cpu: lots", f"error: {TRADAI}:49: deployment.ecs.cpu: expected integer"),
        (
            MANIFEST,
            "environment: dev",
            "environment: prod",
            f"error: {MANIFEST}:3: environment: 'prod' disagrees",
        ),
        (MANIFEST, "profile: 2", "profile: 1", f"error: {MANIFEST}:2: profile: 1 disagrees"),
        (
            MANIFEST,
            "  PascalStrategy:",
            "  GhostStrategy:",
            f"error: {MANIFEST}:14: strategies.GhostStrategy: strategy 'GhostStrategy' does not exist",
        ),
    ],
    ids=[
        "malformed",
        "duplicate-key",
        "unknown-key",
        "wrong-type",
        "env-mismatch",
        "profile-mismatch",
        "ghost",
    ],
)
def test_bad_input_is_one_error_line(repo: Path, path: str, old: str, new: str, expected: str) -> None:
    edit(repo / path, old, new)
    done = invoke(repo, "validate", "--offline")
    assert done.returncode == 1
    lines = error_lines(done)
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected), lines[0]


def test_alias_bomb_fails_fast_with_one_line(repo: Path) -> None:
    (repo / TRADAI).write_text(BILLION_LAUGHS)
    done = invoke(repo, "validate", "--offline")
    assert done.returncode == 1
    [line] = error_lines(done)
    assert line.startswith(f"error: {TRADAI}:") and "alias bomb" in line


def test_stale_config_hash_then_hash_write_fixes_it_keeping_comments(repo: Path) -> None:
    edit(repo / TRADAI, "stake_amount: 1000", "stake_amount: 1200")
    done = invoke(repo, "validate", "--offline")
    assert done.returncode == 1
    lines = error_lines(done)
    assert len(lines) == 3  # dev/1, dev/2, prod/1 pin PascalStrategy
    assert lines[0].startswith("error: releases/dev/profile-1.yaml:")
    assert "strategies.PascalStrategy.config: stale config hash" in lines[0]

    before = (repo / MANIFEST).read_text()
    done = invoke(repo, "hash", "--write", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    new_hash = report["strategies"]["PascalStrategy"]["config_hash"]
    assert {update["path"] for update in report["updated"]} == {
        "releases/dev/profile-1.yaml",
        "releases/dev/profile-2.yaml",
        "releases/prod/profile-1.yaml",
    }
    after = (repo / MANIFEST).read_text()
    assert after.startswith("# Release manifest: profile 2 in dev.\n")
    assert f"    config: {new_hash}  # config hash of {TRADAI}" in after
    assert len(after.splitlines()) == len(before.splitlines())
    assert invoke(repo, "validate", "--offline").returncode == 0
    # Nothing left to refresh: a second --write changes nothing.
    again = invoke(repo, "hash", "--write", "--json")
    assert json.loads(again.stdout)["updated"] == []


def test_hash_write_refreshes_a_placeholder_pin_the_schema_refuses(repo: Path) -> None:
    # A strategy newly added to a profile with a placeholder pin (its first one is MyStrategy's).
    text = (repo / MANIFEST).read_text()
    pinned = text[text.index("    config: ") + len("    config: "):].split()[0]
    edit(repo / MANIFEST, f"config: {pinned}", "config: '0'")
    assert invoke(repo, "validate", "--offline").returncode == 1

    done = invoke(repo, "hash", "--write", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["updated"] == [
        {"path": MANIFEST, "strategy": "MyStrategy", "old": "0", "new": pinned}
    ]
    assert f"config: {pinned}" in (repo / MANIFEST).read_text()
    assert invoke(repo, "validate", "--offline").returncode == 0


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        ("strategies: [1, 2\n", "(yaml)"),  # not YAML
        ("- a list\n", "(root)"),  # not a mapping
    ],
)
def test_hash_write_refuses_a_manifest_it_cannot_read_and_writes_nothing(
    repo: Path, broken: str, field: str
) -> None:
    edit(repo / TRADAI, "stake_amount: 1000", "stake_amount: 1200")  # every Pascal pin is stale
    (repo / "releases/prod/profile-1.yaml").write_text(broken)
    before = {path: (repo / path).read_text() for path in ("releases/dev/profile-1.yaml", MANIFEST)}
    done = invoke(repo, "hash", "--write")
    assert done.returncode == 1
    [line] = error_lines(done)
    assert line.startswith(f"error: releases/prod/profile-1.yaml: {field}:"), line
    assert "up to date" not in done.stdout
    assert {path: (repo / path).read_text() for path in before} == before


def test_two_profiles_of_one_env_pin_different_configs(repo: Path) -> None:
    edit(repo / TRADAI, "stake_amount: 1000", "stake_amount: 1200")
    assert invoke(repo, "hash", "--write").returncode == 0
    # Profile 2 of dev goes back to the previous pin: stale, and disagreeing with profile 1.
    git(repo, "checkout", "-q", "HEAD", "--", MANIFEST)
    done = invoke(repo, "validate", "--offline")
    assert done.returncode == 1
    lines = error_lines(done)
    assert any(
        line.startswith(f"error: {MANIFEST}:")
        and "strategies.PascalStrategy.config: pins config" in line
        and "profile-1.yaml of dev" in line
        for line in lines
    ), lines


def test_tracked_pickle(repo: Path) -> None:
    model = repo / "strategies" / "PascalStrategy" / "signal_model.pkl"
    model.write_bytes(b"\x80\x04.")
    git(repo, "add", "-f", str(model))
    commit_all(repo, "oops, a binary")
    done = invoke(repo, "validate", "--offline")
    assert done.returncode == 1
    assert error_lines(done) == [
        "error: strategies/PascalStrategy/signal_model.pkl: (file): model binary tracked in git: "
        "push it to the model hub and `git rm --cached` it"
    ]


def test_validate_json_lists_problems(repo: Path) -> None:
    edit(repo / MANIFEST, "profile: 2", "profile: 4")
    done = invoke(repo, "validate", "--offline", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert report["problems"] == [
        {
            "file": f"{MANIFEST}:2",
            "field": "profile",
            "reason": "4 disagrees with the file name profile-2.yaml",
        }
    ]


def test_validate_base_reports_changes(repo: Path) -> None:
    edit(repo / "releases/prod/profile-1.yaml", "production: 1", "production: 2")
    done = invoke(repo, "validate", "--offline", "--base", "HEAD", "--json")
    assert done.returncode == 0, done.stderr
    changes = json.loads(done.stdout)["changes"]
    assert changes == {"strategies": [], "manifests": [{"environment": "prod", "profile": 1}]}
    bad = invoke(repo, "validate", "--offline", "--base", "no-such-ref")
    assert bad.returncode == 1
    assert error_lines(bad) == ["error: git: no-such-ref: Ref 'no-such-ref' did not resolve to an object"]


def test_hash_and_diff_tasks(repo: Path) -> None:
    done = invoke(repo, "hash")
    assert done.returncode == 0, done.stderr
    assert "PascalStrategy" in done.stdout and "MyStrategy" in done.stdout
    edit(repo / "releases/prod/profile-1.yaml", "production: 1", "production: 5")
    commit_all(repo, "promote")
    done = invoke(repo, "diff", "--base", "HEAD~1", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pins"] == [
        {
            "environment": "prod",
            "profile": 1,
            "strategy": "MyStrategy",
            "field": "model.production",
            "old": 1,
            "new": 5,
        }
    ]
    text = invoke(repo, "diff", "--base", "HEAD~1")
    assert "MyStrategy.model.production: 1 -> 5" in text.stdout
    helped = invoke(repo, "diff", "--help")
    assert helped.returncode == 0 and "--base" in helped.stdout
    missing = invoke(repo, "diff")
    assert missing.returncode == 1
    assert error_lines(missing) == ["error: diff: --base: required (the older git ref to compare with)"]
