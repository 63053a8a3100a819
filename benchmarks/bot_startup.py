"""A bot's start-up (runtime.start_bot): warm vs cold, one strategy vs the whole tag, in one run.

    .venv/bin/python benchmarks/bot_startup.py [--strategies 50] [--file-kb 256] [--rounds 3] [--moto]

Builds one hub tag of --strategies strategies (the training layout: ten binaries of --file-kb
each plus the JSON files, per strategy) on a local hub (and, with --moto, on a loopback
moto_server too), an ACTIVE config on SQLite and an in-memory registry, then times:
start-up with the bot's models already right (warm: hashed, nothing downloaded), start-up into
an empty models dir (cold: the bot's strategy only, verified), and a pull of the whole tag into
an empty dir (what a bot pulled before). Goals: warm downloads 0 bytes; cold moves about
1/--strategies of the whole tag's bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools"))

STRATEGY = "PascalStrategy"


def _median(label: str, rounds: int, body: Callable[[int], Any]) -> tuple[float, Any]:
    """Median seconds of ``rounds`` calls of ``body(round)``, and the last call's result."""
    times, result = [], None
    for n in range(rounds):
        start = time.perf_counter()
        result = body(n)
        times.append(time.perf_counter() - start)
    elapsed = statistics.median(times)
    print(f"  {label:<46} {elapsed:7.3f} s", flush=True)
    return elapsed, result


def _world(work: Path, hub: Any, strategies: int, file_kb: int) -> tuple[Any, dict[str, str], int]:
    """The tag (pushed to ``hub``), the backends of dev and the pins of the bot; returns its total bytes."""
    from engine_helpers import features_of
    from fake_registry import FakeRegistry
    from hub_helpers import make_models_dir
    from tradai_release.configs.repository import ConfigRepository
    from tradai_release.configs.service import ConfigVersionService
    from tradai_release.configs.table import PARTITION_KEY, SORT_KEY, TABLE_NAME
    from tradai_release.core.yamlio import load_yaml
    from tradai_release.engine.release_table import RELEASE_TABLE
    from tradai_release.engine.state import EngineBackends
    from tradai_release.repository import bots
    from tradai_release.stores.local import LocalObjectStore
    from tradai_release.stores.sqlite import SqliteTable

    models = work / "bundle"
    names = [STRATEGY] + [f"Bench{n:02d}Strategy" for n in range(strategies - 1)]
    for name in names:
        make_models_dir(models, (name,), size=file_kb * 1024, features=features_of(STRATEGY))
    pushed = hub.push(models, tag="vbench", message="50 strategies")
    total = sum(p.stat().st_size for p in models.rglob("*") if p.is_file())

    state = work / "state"
    configs = ConfigVersionService(
        SqliteTable(state / "state.db", TABLE_NAME, PARTITION_KEY, SORT_KEY),
        ConfigRepository(LocalObjectStore(state / "configs")),
    )
    tradai = load_yaml((ROOT / "strategies" / STRATEGY / "tradai.yaml").read_bytes(), "tradai.yaml").data
    version = configs.create_version(strategy_name=STRATEGY, config_data=tradai)
    active = configs.activate(STRATEGY, version.config_id)
    registry = FakeRegistry()
    model_version = registry.add_version(STRATEGY, tags={"strategy_name": STRATEGY})
    backends = EngineBackends(
        env="dev",
        configs=configs,
        registry=registry,
        hub=hub,
        releases=SqliteTable(state / "state.db", RELEASE_TABLE, "pk", "sk"),
    )
    pins = bots.BotPins(
        env="dev",
        profile=1,
        strategy=STRATEGY,
        config_id=active.config_id,
        config_hash=active.config_hash,
        model_name=STRATEGY,
        model_version=model_version,
        hub_tag=pushed.tag,
        hub_sha256=pushed.manifest_sha256,
        image="tradai-bot:bench",
    ).variables()
    return backends, pins, total


def _measure(name: str, hub: Any, work: Path, args: argparse.Namespace) -> None:
    from tradai_release.core.settings import Settings
    from tradai_release.runtime import start_bot

    backends, pins, total = _world(work, hub, args.strategies, args.file_kb)
    settings = Settings(repo=ROOT, state_dir=work / "state")
    mb = 1024 * 1024
    print(f"{name}: tag of {args.strategies} strategies, {total / mb:.1f} MB; {args.rounds} rounds, medians")

    def start(models: Path) -> Any:
        return start_bot(settings, variables=pins, models_dir=models, backends=backends)

    t_cold, cold = _median(
        "cold start-up (one strategy, empty dir)", args.rounds, lambda n: start(work / f"cold{n}" / "models")
    )
    warm_dir = work / "cold0" / "models"
    t_warm, warm = _median("warm start-up (models already right)", args.rounds, lambda n: start(warm_dir))
    t_whole, whole = _median(
        "pull of the whole tag (empty dir)",
        args.rounds,
        lambda n: hub.pull(work / f"whole{n}" / "models", tag="vbench"),
    )
    print()
    print(f"  {'':<34}{'seconds':>9}{'bytes':>14}{'files':>7}")
    print(f"  {'warm start-up':<34}{t_warm:9.3f}{warm.downloaded_bytes:14d}{warm.downloaded_files:7d}")
    print(
        f"  {'cold start-up, 1 of ' + str(args.strategies):<34}{t_cold:9.3f}"
        f"{cold.downloaded_bytes:14d}{cold.downloaded_files:7d}"
    )
    print(f"  {'whole-tag pull':<34}{t_whole:9.3f}{whole.downloaded_bytes:14d}{whole.downloaded_files:7d}")
    print(
        f"  cold / whole-tag: bytes {cold.downloaded_bytes / whole.downloaded_bytes:.3f}, "
        f"seconds {t_cold / t_whole:.3f}   (goal: bytes ~ 1/{args.strategies} = {1 / args.strategies:.3f})"
    )
    print(
        f"  warm / cold seconds: {t_warm / t_cold:.3f}   (goal: warm downloads 0 bytes: "
        f"{warm.downloaded_bytes})"
    )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--strategies", type=int, default=50, help="strategies in the tag (default 50)")
    parser.add_argument(
        "--file-kb", type=int, default=256, help="size of each model binary in KB (default 256)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, medians reported (default 3)")
    parser.add_argument("--moto", action="store_true", help="also on an S3 hub at a loopback moto_server")
    args = parser.parse_args()

    from tradai_release.hub import ModelHub
    from tradai_release.stores.local import LocalObjectStore

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    work = Path(tempfile.mkdtemp(prefix="bot-bench-"))
    server = None
    try:
        _measure("local hub", ModelHub(LocalObjectStore(work / "local" / "hub")), work / "local", args)
        if args.moto:
            import servers
            from tradai_release.core.endpoints import AwsOptions
            from tradai_release.stores.aws import client
            from tradai_release.stores.s3 import S3ObjectStore

            (work / "moto-server").mkdir()
            server = servers.start_moto(work / "moto-server")
            aws = AwsOptions(
                endpoint_url=server.url,
                region="us-east-1",
                access_key_id="testing",
                secret_access_key="testing",
            )
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            client(aws, "s3").create_bucket(Bucket=bucket)
            _measure(
                f"S3 hub at moto {server.url}", ModelHub(S3ObjectStore(bucket, aws=aws)), work / "moto", args
            )
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
