"""`invoke demo` end to end on the embedded default: the whole release loop in a scratch repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # trains a challenger, on the embedded backends (no server)
def test_demo_promotes_applies_reverts_and_ends_in_sync(demo_run: dict[str, Any]) -> None:
    # conftest's demo_run: the run's one `invoke demo --json`, given a hub setting that would fail (the
    # demo ignores the caller's backends); test_report_browser.py opens the board it wrote
    workdir = Path(demo_run["workdir"])
    assert demo_run["returncode"] == 0, demo_run["stderr"]
    report = demo_run["report"]

    assert len(report["steps"]) == 12
    board = Path(report["board"])  # the last step: a recorded drift check of prod, then the release board
    assert board == workdir.resolve() / "board" / "index.html" and board.is_file()
    assert 'id="cell-prod-3-PascalStrategy"' in board.read_text()
    # the bot of prod profile 3 starts on v2 after the merge, on v1 after the revert, from its env file
    merged, reverted = report["bots"]
    assert (merged["model_version"], reverted["model_version"]) == (2, 1)
    assert merged["pins_from"] == reverted["pins_from"] == "deployment"
    assert merged["hub_tag"] != reverted["hub_tag"] == "v20261101"
    assert merged["downloaded_bytes"] > 0 and reverted["downloaded_bytes"] > 0  # v1's files differ
    assert reverted["reused_files"] > 0  # files equal in both tags are not fetched again
    assert merged["git_commit"] != reverted["git_commit"]
    pulled = Path(reverted["models_dir"])
    assert sorted(p.name for p in pulled.iterdir()) == ["PascalStrategy"]  # that strategy's files only
    pascal = {view["version"]: view for view in report["lifecycle"]["PascalStrategy"]}
    assert pascal[1]["lifecycle"] == "Production" and pascal[1]["aliases"] == ["p1", "p2", "p3", "p4", "p5"]
    assert pascal[2]["lifecycle"] == "Archived" and pascal[2]["aliases"] == []
    # bootstrap, merge and revert are deployments; the final no-op apply records nothing
    assert [d["outcome"] for d in report["deployments"]] == ["succeeded"] * 3
    assert [d["actor"] for d in report["deployments"]] == ["demo", "demo", "bootstrap"]

    markdown = Path(report["plan_markdown"]).read_text()
    assert "comparator: **promote**" in markdown and "PascalStrategy@p3" in markdown

    repo = workdir / "repo"
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", "-4"], capture_output=True, text=True)
    subjects = log.stdout.splitlines()
    assert subjects[0].startswith('Revert "Merge release/prod-PascalStrategy-v2')
    assert subjects[1].startswith("Merge release/prod-PascalStrategy-v2")
    profile_3 = (repo / "releases" / "prod" / "profile-3.yaml").read_text()
    assert "production: 1" in profile_3 and "v20261101" in profile_3


def test_demo_refuses_a_used_workdir(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "demo", "--workdir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: demo:") and len(done.stderr.strip().splitlines()) == 1
