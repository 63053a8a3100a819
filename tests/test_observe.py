"""invoke observe: every bot of an environment read over its REST API and recorded in the release-state
table; a bot that does not answer is recorded as such. Here with a stand-in reader; the demo's test reads
real Freqtrade bots (tests/test_demo.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine_helpers import commit_all, embedded_repo
from tradai_release.bot.rest import BotReading
from tradai_release.core.errors import InputError
from tradai_release.core.settings import Settings
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.release_table import ReleaseTable
from tradai_release.repository.bots import BotKey, run_directory
from tradai_release.repository.manifest_edit import edit_manifest
from tradai_release.workflows.observe import api_url, observe

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
FILES = "ab" * 32


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = embedded_repo(tmp_path, 2)
    with edit_manifest(repo / "releases" / "dev" / "profile-1.yaml") as editor:
        editor.set_staging("PascalStrategy", 2)
    commit_all(repo, "PascalStrategy v2 dry-runs in dev p1")
    return repo


def write_run_config(settings: Settings, key: BotKey, port: int) -> None:
    """What the runtime leaves in a bot's run directory: its rendered config, with the REST API's port."""
    run_dir = run_directory(settings, key)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"api_server": {"listen_ip_address": "127.0.0.1",
                                                                    "listen_port": port}}))


def test_observe_records_what_each_bot_says_it_runs_and_a_silent_bot_as_silent(repo: Path) -> None:
    settings = Settings(repo=repo, bot_api_password="secret-password")
    champion = BotKey("dev", 1, "PascalStrategy")
    challenger = BotKey("dev", 1, "PascalStrategy", "challenger")
    write_run_config(settings, champion, 18001)
    write_run_config(settings, challenger, 18002)
    asked: list[tuple[str, str, str]] = []

    def read(url: str, user: str, password: str) -> BotReading:
        asked.append((url, user, password))
        if url.endswith(":18001"):
            return BotReading(True, strategy_version=f"PascalStrategy v1 files {FILES}", trades=4,
                              closed_profit=0.012, max_drawdown=0.03, open_trades=1,
                              started_at=datetime(2026, 12, 5, tzinfo=UTC), heartbeat=NOW)
        if url.endswith(":18002"):
            return BotReading(True, strategy_version=f"PascalStrategy v2 files {'cd' * 32}", trades=2,
                              closed_profit=0.02, max_drawdown=0.01,
                              started_at=datetime(2026, 12, 6, tzinfo=UTC))
        return BotReading(False, f"{url}: no answer to show_config (connection refused)")

    report = observe(ReleaseContext.open(settings, "dev"), now=NOW, read=read)
    by_bot = {r.bot: r for r in report.results}
    assert len(by_bot) == 13  # dev's 12 production bots and p1's challenger
    assert ("http://127.0.0.1:18001", "tradai", "secret-password") in asked
    p1, p1c = by_bot["PascalStrategy-p1"], by_bot["PascalStrategy-p1-challenger"]
    assert (p1.answered, p1.model_version, p1.files_sha256, p1.trades) == (True, 1, FILES, 4)
    assert (p1c.role, p1c.model_version, p1c.closed_profit, p1c.hours) == ("challenger", 2, 0.02, 12.0)
    silent = by_bot["KeplerStrategy-p3"]
    assert not silent.answered and silent.trades == 0 and silent.model_version is None
    assert silent.error.startswith("no run directory on this host")
    recorded = ReleaseTable(ReleaseContext.open(settings, "dev").backends.releases, "dev").live_results()
    assert sorted(r.bot for r in recorded) == sorted(by_bot)
    assert {r.bot: r for r in recorded}["PascalStrategy-p1-challenger"] == p1c
    document = report.to_dict()
    assert document["answered"] == 2 and "KeplerStrategy-p3" in document["not_answering"]


def test_a_bot_on_another_host_is_reached_by_the_url_template_and_observe_needs_the_password(
    repo: Path,
) -> None:
    settings = Settings(repo=repo, bot_api_url="http://{service}.{env}.tradai.internal:8080/")
    key = BotKey("prod", 3, "PascalStrategy", "challenger")
    expected = "http://tradai-prod-PascalStrategy-p3-challenger.prod.tradai.internal:8080"
    assert api_url(settings, key) == (expected, "")
    with pytest.raises(InputError, match="TRADAI_BOT_API_PASSWORD: not set"):
        observe(ReleaseContext.open(settings, "dev"), now=NOW, read=lambda *a: BotReading(False))


def test_the_observe_task_prints_json(repo: Path) -> None:
    from helpers import invoke

    done = invoke(repo, "observe", "--env", "dev", "--json", env={"TRADAI_BOT_API_PASSWORD": "pw"})
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["answered"] == 0 and len(document["not_answering"]) == 13
