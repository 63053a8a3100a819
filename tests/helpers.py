"""Helpers shared by the test modules: release repositories in tmp_path, the invoke CLI in a fresh process,
and parsers of what the renderers emit. No test module imports another; they import from here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forked_cli import run_invoke
from tradai_release.core.confighash import config_hash
from tradai_release.core.yamlio import load_yaml

SOURCE = Path(__file__).resolve().parent.parent  # this checkout: its tasks.py, strategies/ and releases/


def process_scratch(prefix: str) -> Path:
    """A new directory in the system's temp dir, deleted when this process exits, for what a helper keeps
    for the rest of the process (an xdist worker's exit handlers registered after conftest's
    ``_exit_at_once`` run before it)."""
    import atexit
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def invoke(cwd: Path, *args: str, env: Mapping[str, str] | None = None,
           timeout: float | None = 300) -> subprocess.CompletedProcess[str]:
    """Run this checkout's ``invoke`` task ``args`` in ``cwd`` as a user does: a new process with the
    test's environment, the release repository ``cwd``, wide lines, plus ``env``; its exit code, stdout
    and stderr (never raises on failure). The process is forked from a zygote that imported the CLI's
    libraries once (forked_cli.py); TRADAI_TEST_COLD_CLI=1 starts a new interpreter instead."""
    environ = {**os.environ, "TRADAI_REPO": str(cwd), "COLUMNS": "200", **(env or {})}
    return run_invoke(["--search-root", str(SOURCE), *args], cwd, environ, timeout)


def copy_project_repo(root: Path, message: str) -> Path:
    """A git repository at ``root`` holding this project's strategies/ (without candles) and releases/,
    committed once on main with ``message``."""
    root.mkdir()
    shutil.copytree(SOURCE / "strategies", root / "strategies", ignore=shutil.ignore_patterns("data"))
    shutil.copytree(SOURCE / "releases", root / "releases")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return root


# --- a small valid release repository -----------------------------------------------------------------

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


def write_strategy_module(directory: Path, name: str) -> None:
    """The strategy class :func:`strategy_yaml`'s entry point names: ``<name lowercased>.strategy:<name>``."""
    module = directory / name.lower()
    module.mkdir(exist_ok=True)
    (module / "strategy.py").write_text(
        "from tradai_release.bot.strategy import ReleasedStrategy\n\n\n"
        f"class {name}(ReleasedStrategy):\n    pass\n"
    )


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
        write_strategy_module(directory, name)
        pins[name] = config_hash(load_yaml(text.encode(), "t").data)
    for environment, profile in manifests:
        path = root / "releases" / environment / f"profile-{profile}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(manifest_yaml(environment, profile, pins))
    commit_all(root, "initial release repository")
    return root


# --- YAML and tradai.yaml inputs --------------------------------------------------------------------

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


TRADAI_YAML = """\
# comments and formatting do not matter
strategy:
  name: "PascalStrategy"
  version: "2.3.1"
  entry_point: "pascal.strategy:PascalStrategy"
  category: "trend"
  timeframe: "1h"
strategy_service:
  source: {KIND: Binance}
  adapter: {KIND: AWS, bucket_name: tradai-data, library: ohlcv}
  defaults:
    timerange: "20240101-20241201"
    symbols: ["BTC/USDT:USDT"]
    stake_amount: 2500
    max_open_trades: 2
mlflow:
  tracking_uri: ${MLFLOW_TRACKING_URI:-http://localhost:5001}
  experiment_name: "strategies/pascalstrategy"
  auto_log_params: true
optimization:
  defaults: {epochs: 150, loss_function: sharpe, spaces: [buy, sell]}
  presets:
    quick: {epochs: 50, spaces: [buy]}
    standard: {epochs: 200, spaces: [buy, sell]}
    production: {epochs: 1000, spaces: [buy, sell, roi, stoploss, trailing], walk_forward: true}
deployment:
  ecr: {repository: "tradai/strategies/pascalstrategy"}
  ecs: {cpu: 512, memory: 1024}
"""


def tradai_data() -> dict[str, Any]:
    """TRADAI_YAML parsed (a loader also takes the parsed content instead of a path)."""
    data: dict[str, Any] = load_yaml(TRADAI_YAML.encode(), "tradai.yaml").data
    return data


# --- the plan comment's Mermaid charts --------------------------------------------------------------

NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"
TEXT = r'"[^"\n]*"'
DIRECTIVE = re.compile(r"^%%\{init:\s*(\{.*\})\s*\}%%$")
TITLE = re.compile(rf"^title\s+{TEXT}$")
X_RANGE = re.compile(rf"^x-axis(?:\s+{TEXT})?\s+({NUMBER})\s*-->\s*({NUMBER})$")
X_BANDS = re.compile(rf"^x-axis(?:\s+{TEXT})?\s+\[([^\]]*)\]$")
Y_AXIS = re.compile(rf"^y-axis(?:\s+{TEXT})?(?:\s+({NUMBER})\s*-->\s*({NUMBER}))?$")
SERIES = re.compile(rf"^(line|bar)(?:\s+{TEXT})?\s+\[\s*({NUMBER}(?:\s*,\s*{NUMBER})*)\s*\]$")


class MermaidSyntaxError(AssertionError):
    pass


def mermaid_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```$", markdown, flags=re.S | re.M)


def parse_xychart(block: str) -> dict[str, object]:
    """The statements of one xychart block; raises MermaidSyntaxError on anything the grammar rejects."""
    lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
    chart: dict[str, object] = {"series": []}
    if lines and lines[0].startswith("%%{"):
        match = DIRECTIVE.match(lines.pop(0))
        if not match:
            raise MermaidSyntaxError("malformed init directive")
        try:
            chart["init"] = json.loads(match.group(1))
        except ValueError as err:
            raise MermaidSyntaxError(f"init directive is not JSON: {err}") from None
    if not lines or lines.pop(0) not in ("xychart-beta", "xychart-beta horizontal"):
        raise MermaidSyntaxError("no xychart-beta header")
    series: list[tuple[str, list[float]]] = []
    for line in lines:
        if TITLE.match(line):
            chart["title"] = line
        elif match := X_RANGE.match(line):
            low, high = float(match.group(1)), float(match.group(2))
            if not low < high:
                raise MermaidSyntaxError(f"x-axis range {low} --> {high} is empty")
            chart["x"] = (low, high)
        elif match := X_BANDS.match(line):
            chart["x"] = [band.strip() for band in match.group(1).split(",")]
        elif match := Y_AXIS.match(line):
            if match.group(1) is not None:
                chart["y"] = (float(match.group(1)), float(match.group(2)))
        elif match := SERIES.match(line):
            series.append((match.group(1), [float(value) for value in match.group(2).split(",")]))
        else:
            raise MermaidSyntaxError(f"not an xychart statement: {line!r}")
    if not series:
        raise MermaidSyntaxError("no line or bar")
    if len({len(values) for _, values in series}) != 1:
        raise MermaidSyntaxError("series of different lengths")
    chart["series"] = series
    return chart
