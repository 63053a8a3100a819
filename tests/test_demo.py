"""`invoke demo` end to end on the embedded default: the whole release loop in a scratch repository."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from forked_cli import run_invoke

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # trains a challenger, on the embedded backends (no server)
def test_demo_verifies_a_challenger_live_promotes_it_rolls_a_breach_back_and_ends_in_sync(
    demo_run: dict[str, Any],
) -> None:
    # conftest's demo_run: the run's one `invoke demo --json`, given a hub setting that would fail (the
    # demo ignores the caller's backends); test_report_browser.py opens the board it wrote
    workdir = Path(demo_run["workdir"])
    assert demo_run["returncode"] == 0, demo_run["stderr"]
    report = demo_run["report"]

    assert len(report["steps"]) == 16
    # trained once, in dev; the same artifact promoted dev -> staging -> prod (each merged and applied)
    names = [step["name"] for step in report["steps"]]
    assert names[3:6] == ["challenger: trained once, pushed to the hub, registered in dev",
                          "dev: promote v2 in profile 3, merge, apply",
                          "staging: promote --from dev (the same artifact), merge, apply"]
    carried = [step["detail"] for step in report["steps"][5:7]]
    assert "dev v2 is staging v2 (promoted_from dev:v2)" in carried[0]
    assert "apply staging succeeded: deployed staging/PascalStrategy-p3" in carried[0]
    assert "staging v2 is prod v2, same files" in carried[1]
    board = Path(report["board"])  # the last step: a recorded drift check of prod, then the release board
    assert board == workdir.resolve() / "board" / "index.html" and board.is_file()
    assert 'id="cell-prod-3-PascalStrategy"' in board.read_text()
    # The staged v2 ran as a challenger beside the champion, both real dry-run Freqtrade processes on the
    # loopback stand-in, and observe read both over Freqtrade's REST API: each says the version and the
    # file digest it runs, the very ones its deployment pins.
    champion, challenger, merged, rolled_back = report["bots"]
    assert [(b["bot"], b["model_version"]) for b in report["bots"]] == [
        ("PascalStrategy-p3", 1), ("PascalStrategy-p3-challenger", 2), ("PascalStrategy-p3", 2),
        ("PascalStrategy-p3", 1)]
    observed = {o["bot"]: o for o in report["observed"]}
    assert set(observed) == {"PascalStrategy-p3", "PascalStrategy-p3-challenger"}
    env_files = workdir / "state" / "prod" / "bots"
    for name, version in (("PascalStrategy-p3", 1), ("PascalStrategy-p3-challenger", 2)):
        reading = observed[name]
        assert reading["answered"] and reading["model_version"] == version, reading
        assert len(reading["files_sha256"]) == 64
    digests = {name: reading["files_sha256"] for name, reading in observed.items()}
    assert digests["PascalStrategy-p3"] != digests["PascalStrategy-p3-challenger"]
    now_pinned = dict(line.split("=", 1) for line in (env_files / "PascalStrategy-p3.env").read_text()
                      .splitlines() if "=" in line)  # v1 again after the rollback: what the champion ran
    assert now_pinned["TRADAI_FILES_SHA256"] == digests["PascalStrategy-p3"]
    assert observed["PascalStrategy-p3-challenger"]["role"] == "challenger"
    assert not (env_files / "PascalStrategy-p3-challenger.env").exists()  # retired with its staging pin
    assert Path(challenger["trades_db"]) != Path(champion["trades_db"])  # its own trade database
    assert "trading PascalStrategy v2" in Path(challenger["log"]).read_text()
    # progress promoted it in wave 1 (p3); the bot then filled an entry tagged with v2, read from Freqtrade's
    # own trade database (its exit code says nothing); a breach rolled it back and v1 came up again
    db = Path(report["trades_db"])
    assert db == Path(merged["trades_db"]) == Path(rolled_back["trades_db"])
    assert db.is_relative_to(workdir.resolve()) and merged["exec"]["dry_run"] is True
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        fills = connection.execute(
            "SELECT t.pair, t.enter_tag, o.filled, o.average, t.open_rate FROM trades t "
            "JOIN orders o ON o.ft_trade_id = t.id WHERE o.ft_order_side = 'buy' AND o.status = 'closed'"
        ).fetchall()
    mine = [fill for fill in fills if fill[1] == "PascalStrategy v2"]
    assert [(pair, tag) for pair, tag, *_ in mine] == [("BTC/USDT:USDT", "PascalStrategy v2")]
    assert mine[0][2] > 0 and mine[0][3] == mine[0][4] > 0
    assert "trading PascalStrategy v1" in Path(rolled_back["log"]).read_text()
    assert "trading PascalStrategy v2" in Path(merged["log"]).read_text()
    for bot in report["bots"]:
        assert Path(bot["log"]).is_file()
        with pytest.raises(ProcessLookupError):  # stopped: the runtime's pid became Freqtrade's, now gone
            os.kill(bot["pid"], 0)
    for bot in (merged, rolled_back):
        assert Path(bot["exec"]["config"]).stat().st_mode & 0o077 == 0  # the rendered config is the bot's own
        assert bot["pins_from"] == "deployment"
    assert merged["hub_tag"] != rolled_back["hub_tag"] == "v20261101"
    assert merged["downloaded_bytes"] > 0 and rolled_back["downloaded_bytes"] > 0  # v1's files differ
    assert rolled_back["reused_files"] > 0  # files equal in both tags are not fetched again
    assert merged["git_commit"] != rolled_back["git_commit"]
    pulled = Path(rolled_back["models_dir"])
    assert sorted(p.name for p in pulled.iterdir()) == ["PascalStrategy"]  # that strategy's files only
    pascal = {view["version"]: view for view in report["lifecycle"]["PascalStrategy"]}
    assert pascal[1]["lifecycle"] == "Production" and pascal[1]["aliases"] == ["p1", "p2", "p3", "p4", "p5"]
    assert pascal[2]["lifecycle"] == "Archived" and pascal[2]["aliases"] == []
    # bootstrap, the staging pin, the promotion and the rollback are deployments; the no-op apply is not
    assert [d["outcome"] for d in report["deployments"]] == ["succeeded"] * 4
    assert [d["actor"] for d in report["deployments"]] == ["demo", "demo", "demo", "bootstrap"]

    markdown = Path(report["plan_markdown"]).read_text()
    assert "comparator: **promote**" in markdown and "PascalStrategy@p3" in markdown

    repo = workdir / "repo"
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", "-4"], capture_output=True, text=True)
    subjects = log.stdout.splitlines()
    assert subjects[0] == "Merge progress/prod-PascalStrategy-rollback-v2-to-v1-p3"
    assert subjects[1] == "Promote PascalStrategy v1 to Production in prod profile 3"
    assert subjects[2] == "Merge progress/prod-PascalStrategy-promote-v2-p3"
    rollback = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%B", "HEAD^2"],
                              capture_output=True, text=True).stdout
    assert "progress (rollback): v2 breached the production rules in p3: back to v1" in rollback
    assert "- PascalStrategy-p3 v2: max_drawdown 0.1500 over 6.0 h (limit 0.1000)" in rollback
    profile_3 = (repo / "releases" / "prod" / "profile-3.yaml").read_text()
    assert "production: 1" in profile_3 and "v20261101" in profile_3 and "staging" not in profile_3


def test_demo_refuses_a_used_workdir(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    done = run_invoke(["demo", "--workdir", str(tmp_path)], REPO_ROOT, dict(os.environ), 120)
    assert done.returncode == 1
    assert done.stderr.startswith("error: demo:") and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # uses the demo run
def test_tampered_pinned_files_start_no_freqtrade(demo_run: dict[str, Any], tmp_path: Path) -> None:
    """The demo's prod profile 3 bot, its container command in a copy of the demo's state, after one of its
    pinned model files was overwritten in the hub: one error line, exit 1, and no Freqtrade process (no
    run directory, no config, no trade database)."""
    from tradai_release.core.settings import Settings
    from tradai_release.hub import ModelHub

    assert demo_run["returncode"] == 0, demo_run["stderr"]
    source = Path(demo_run["workdir"])
    for part in ("repo", "state"):
        shutil.copytree(source / part, tmp_path / part, symlinks=True)
    state = tmp_path / "state"
    env_file = state / "prod" / "bots" / "PascalStrategy-p3.env"
    pins = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    hub = ModelHub.from_settings(Settings(repo=tmp_path / "repo", state_dir=state))
    path, entry = next((p, f) for p, f in sorted(hub.read_tag(pins["TRADAI_HUB_TAG"]).files.items())
                       if p.startswith("PascalStrategy/") and p.endswith(".onnx"))
    blob = state / "hub" / "blobs" / "sha256" / entry.sha256
    blob.write_bytes(b"#" * blob.stat().st_size)
    shutil.rmtree(state / "cache", ignore_errors=True)  # no unverified shortcut around the hub
    run_dir = state / "prod" / "run"
    shutil.rmtree(run_dir)

    environ = {name: value for name, value in os.environ.items() if not name.startswith("TRADAI_")}
    environ.update(TRADAI_REPO=str(tmp_path / "repo"), TRADAI_STATE_DIR=str(state),
                   TRADAI_MODELS_DIR=str(tmp_path / "bot" / "models"))
    done = subprocess.run(
        [sys.executable, "-m", "tradai_release.runtime", "--env-file", str(env_file),
         "--exec", "freqtrade", "trade"],
        env=environ, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1 and done.stdout == "", done.stdout
    assert done.stderr.startswith("error: model hub ") and done.stderr.count("\n") == 1, done.stderr
    assert path.rsplit("/", 1)[-1] in done.stderr or entry.sha256[:12] in done.stderr, done.stderr
    assert not run_dir.exists()  # nothing rendered, no trade database: Freqtrade never started
    assert not list((tmp_path / "bot").rglob("*.onnx"))  # and no half-pulled models left behind
