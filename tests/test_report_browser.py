"""The release board of `invoke demo`, opened from disk in a real headless browser, and `invoke report`.

The browser is Debian's chromium (`apt-get install chromium`; Playwright's own browser download is not
reachable here), driven by Playwright through ``executable_path``. Every request the pages make is
intercepted: anything but a ``file://`` URL is refused and fails the test. Screenshots are saved under
the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forked_cli import run_invoke
from helpers import mermaid_blocks, parse_xychart
from tradai_release.repository.environments import environment

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("TRADAI_TEST_CHROMIUM", "/usr/bin/chromium"))

# e2e: a headless chromium; slow: its demo (conftest's demo_run, made once per run and shared with
# test_demo.py) trains a challenger.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
MERMAID_JS = os.environ.get("TRADAI_TEST_MERMAID_JS")


@pytest.fixture(scope="module")
def demo(demo_run: dict[str, Any]) -> dict[str, Any]:
    """The report of the run's one `invoke demo --json` (conftest's demo_run), with the board it wrote."""
    assert demo_run["returncode"] == 0, demo_run["stderr"]
    report: dict[str, Any] = demo_run["report"]
    return report


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (or set TRADAI_TEST_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI and this machine run as root, where chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def test_the_demo_board_in_a_headless_browser(demo: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    board = Path(demo["board"])
    assert board.name == "index.html" and board.is_file()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    requests: list[str] = []

    def route(handle: Any) -> None:
        url = handle.request.url
        requests.append(url)
        if url.startswith("file://"):
            handle.continue_()
        else:
            problems.append(f"request to another host: {url}")
            handle.abort()

    page.route("**/*", route)
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))

    page.goto(board.as_uri())
    page.screenshot(path=str(tmp_path / "board.png"), full_page=True)
    cell = page.locator("#cell-prod-3-PascalStrategy")
    assert cell.get_attribute("data-state") == "in sync"

    def field(name: str) -> str:
        return str(cell.locator(f'[data-field="{name}"]').inner_text()).strip()

    # after progress's rollback, prod profile 3 runs PascalStrategy v1 again, from the bootstrap's hub tag
    assert field("version") == "v1"
    assert field("lifecycle") == "Production"
    assert field("tag") == "v20261101"
    assert len(field("sha256")) == 12
    assert field("config").startswith("v1-")
    assert field("state") == "✓ in sync"  # the state is text, not only a colour
    assert field("since").endswith("UTC")
    assert field("psi").startswith("PSI ")  # the demo recorded a drift check of prod
    # the rollback is the newest deployment that moved profile 3 (the others still show the bootstrap's)
    rollback = demo["deployments"][0]  # newest first
    assert str(cell.locator("time").get_attribute("datetime")) >= rollback["started_at"]
    glance = page.locator('table.glance tr[data-env="prod"]')
    assert "12 in sync" in glance.inner_text()
    assert page.locator("section.env h2").all_inner_texts()[:3] == ["prod", "staging", "dev"]

    page.locator("#env-prod").get_by_role("link", name="PascalStrategy").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/strategies/PascalStrategy.html")
    page.screenshot(path=str(tmp_path / "pascal.png"), full_page=True)
    equity = page.locator("#env-prod img[data-chart=equity]")
    assert equity.count() == 1
    assert equity.evaluate("img => img.complete && img.naturalWidth > 0")  # the SVG loaded and decoded
    svg = (board.parent / "strategies" / str(equity.get_attribute("src"))).resolve().read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "v1 champion" in svg and "v2 previous champion" in svg  # champion and the rolled-back version
    rows = page.locator("#env-prod table.versions tbody tr")
    assert rows.count() == 2
    assert page.locator('#env-prod tr[data-version="2"]').inner_text().count("promote vs v1") == 1
    psi = page.locator("#env-prod img[data-chart=psi]")
    assert psi.evaluate("img => img.complete && img.naturalWidth > 0")
    # prod declares waves: the live verification block says where the release stands (v2 rolled back:
    # every profile runs the newest version again) and what progress would decide now
    verification = page.locator("#env-prod [data-verification]")
    assert verification.get_attribute("data-verification") == "done"
    assert "progress would now hold" in verification.inner_text()

    page.locator("header nav").get_by_role("link", name="Deployments").click()
    page.wait_for_load_state("load")
    page.screenshot(path=str(tmp_path / "deployments.png"), full_page=True)
    prod = page.locator("#deployments-prod li.deployment")
    assert prod.count() == 4  # bootstrap, the staging pin, wave 1, the rollback
    newest = prod.first.inner_text()
    assert "rollback-v2-to-v1-p3" in newest and "demo" in newest and "PascalStrategy@p3" in newest

    assert problems == []
    assert requests and all(url.startswith("file://") for url in requests)
    print(f"screenshots: {tmp_path}")


def test_the_plan_comment_charts_champion_and_challenger(demo: dict[str, Any]) -> None:
    markdown = Path(demo["plan_markdown"]).read_text()
    (block,) = mermaid_blocks(markdown)
    chart = parse_xychart(block)
    assert len(chart["series"]) == 2  # type: ignore[arg-type]
    assert "grey line: champion v1" in markdown and "blue line: challenger v2" in markdown


@pytest.mark.skipif(
    not MERMAID_JS, reason="set TRADAI_TEST_MERMAID_JS to mermaid.min.js to render the chart with Mermaid"
)
def test_the_plan_comment_chart_renders_in_mermaid(demo: dict[str, Any], browser: Any) -> None:
    """With Mermaid's own bundle (``npm pack mermaid@11``; TRADAI_TEST_MERMAID_JS=.../dist/mermaid.min.js)
    the block is parsed and rendered in chromium; without it the grammar check above stands alone."""
    bundle = str(MERMAID_JS)
    (block,) = mermaid_blocks(Path(demo["plan_markdown"]).read_text())
    page = browser.new_page()
    page.set_content("<div id=out></div>")
    page.add_script_tag(path=bundle)
    page.evaluate("mermaid.initialize({startOnLoad: false})")
    rendered = page.evaluate(
        "async (text) => { try { await mermaid.parse(text); return (await mermaid.render('c', text)).svg; }"
        " catch (error) { return 'error: ' + error.message; } }",
        block,
    )
    assert rendered.startswith("<svg"), rendered
    assert "#6b7280" in rendered and "#2563eb" in rendered  # champion grey, challenger blue, as captioned


def test_report_shows_hand_made_drift_and_pending_changes(demo: dict[str, Any], tmp_path: Path) -> None:
    """A copy of the demo's state: an alias moved by hand is drift; a committed promotion is pending."""
    from tradai_release.demo import embedded_settings
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.report import build_site
    from tradai_release.workflows.promote import promote

    source = Path(demo["workdir"])
    copy = tmp_path / "demo"
    shutil.copytree(source / "repo", copy / "repo", symlinks=True)
    shutil.copytree(source / "state", copy / "state", symlinks=True)
    settings = embedded_settings(copy / "repo", copy / "state")
    MlflowRegistry.for_env(environment(settings, "prod"), settings).set_alias("PascalStrategy", "p3", 2)
    promoted = promote(
        settings, environment(settings, "prod"), "1", "PascalStrategy", "2", commit=False, plan=False
    )
    assert not promoted.blocked
    subprocess.run(["git", "-C", str(copy / "repo"), "commit", "-qam", "promote p1"], check=True)

    result = build_site(settings, tmp_path / "site", ["prod"])
    assert result.envs == ("prod",)
    html = (tmp_path / "site" / "index.html").read_text()
    p3 = _cell(html, "prod", 3)
    assert 'data-state="drift"' in p3 and "alias p3 of PascalStrategy points at v2, applied v1" in p3
    p1 = _cell(html, "prod", 1)
    assert 'data-state="pending"' in p1 and "set_alias" in p1
    assert 'id="cell-staging-' not in html  # only the environments asked for


def _cell(html: str, env: str, profile: int) -> str:
    start = html.index(f'id="cell-{env}-{profile}-PascalStrategy"')
    return html[start : html.index("</td>", start)]


def test_invoke_report_writes_refuses_and_replaces(demo: dict[str, Any], tmp_path: Path) -> None:
    workdir = Path(demo["workdir"])
    env = {**os.environ, "TRADAI_REPO": str(workdir / "repo"), "TRADAI_STATE_DIR": str(workdir / "state"),
           "TRADAI_REPOSITORY_URL": "https://git.example.invalid/quant/releases"}

    def report(*args: str) -> subprocess.CompletedProcess[str]:
        return run_invoke(["report", *args], REPO_ROOT, env, 300)

    out = tmp_path / "site"
    done = report("--out", str(out), "--env", "prod", "--json")
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)
    assert written["envs"] == ["prod"] and written["pages"] == 2 + 3 and written["charts"] >= 2
    timeline = (out / "deployments.html").read_text()
    head = demo["deployments"][0]["commit"]
    assert f'href="https://git.example.invalid/quant/releases/commit/{head}"' in timeline

    again = report("--out", str(out), "--env", "prod")  # an earlier report is replaced
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"open {out / 'index.html'}"

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    refused = report("--out", str(foreign))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"error: {foreign}: --out: is not empty and holds no earlier report; give a new directory"
    ]
    assert sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]  # nothing written
    unknown = report("--out", str(tmp_path / "other"), "--env", "nope")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: ")
    assert len(unknown.stderr.strip().splitlines()) == 1 and not (tmp_path / "other").exists()
    missing = report()
    assert missing.returncode == 1 and missing.stderr.strip() == (
        "error: report: --out: required (the directory to write the site to)"
    )
