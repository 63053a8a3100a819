"""Plan at scale: N strategies x 3 envs x 5 profiles, in sync, on a loopback moto_server + mlflow server.

First, the first apply of one environment on fresh state, sequential (apply concurrency 1) and
concurrent (``--workers``, default 8), and the ratio. Then, per environment, the wall time of an
in-sync plan and its backend calls (registry calls, table reads, object reads), and the writes of
a no-op apply (goal: 0). The baseline is the same run with N/10 strategies in the same process:
the ratio of backend calls shows they do not grow with strategies x profiles (only with the
registry's batch count).

    .venv/bin/python benchmarks/plan_scale.py [--strategies 200] [--workers 8] [--apply-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tradai_release.engine.context import ReleaseContext
from tradai_release.repository.environments import environment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import servers  # noqa: E402
from helpers import ML_CONFIG, strategy_yaml  # noqa: E402
from hub_helpers import make_models_dir  # noqa: E402

ENVS = ("dev", "staging", "prod")
PROFILES = (1, 2, 3, 4, 5)


def generate(root: Path, count: int, prefix: str, tag: str, sha: str) -> list[str]:
    from tradai_release.core.confighash import config_hash
    from tradai_release.core.yamlio import load_yaml
    from tradai_release.repository.manifest import manifest_path

    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    names = [f"S{prefix}{index:03d}" for index in range(count)]
    hashes = {}
    for name in names:
        directory = root / "strategies" / name
        directory.mkdir(parents=True)
        text = strategy_yaml(name)
        (directory / "tradai.yaml").write_text(text)
        (directory / "ml_config.json").write_text(json.dumps(ML_CONFIG, indent=2))
        hashes[name] = config_hash(load_yaml(text.encode(), name).data)
    for env in ENVS:
        for profile in PROFILES:
            lines = [
                f"profile: {profile}",
                f"environment: {env}",
                "artifacts:",
                f"  tag: {tag}",
                f'  sha256: "{sha}"',
                "strategies:",
            ]
            for name, digest in hashes.items():
                lines += [f"  {name}:", f'    config: "{digest}"', "    model:", "      production: 1"]
            path = root / manifest_path(env, profile)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n")
    git = ["git", "-C", str(root), "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "generated"], check=True)
    return names


def settings_for(root: Path, moto: str, mlflow: str, uid: str) -> Any:
    from tradai_release.core.settings import EnvOverrides, Settings

    envs = {
        env: EnvOverrides(
            config_store_uri=f"s3://configs-{env}-{uid}",
            config_table_uri=f"dynamodb://tradai-config-versions-{env}-{uid}",
            release_table_uri=f"dynamodb://tradai-releases-{env}-{uid}",
            mlflow_tracking_uri=mlflow,
        )
        for env in ENVS
    }
    return Settings(repo=root, aws_endpoint_url=moto, hub_uri=f"file://{root.parent}/hub-{uid}", envs=envs)


def build(count: int, moto: str, mlflow: str, scratch: Path, envs: tuple[str, ...] = ENVS) -> Any:
    """Fresh state: a generated repository, its tag pushed, tables and buckets, one version per model."""
    from tradai_release.hub.hub import ModelHub
    from tradai_release.registry.adapter import MlflowRegistry
    from tradai_release.workflows.provision import provision

    uid = uuid.uuid4().hex[:6]
    root = scratch / f"repo-{uid}"
    settings = settings_for(root, moto, mlflow, uid)
    settings = settings.model_copy(update={"state_dir": scratch / f"state-{uid}"})  # bots' env files
    models = make_models_dir(scratch / f"models-{uid}", ("BenchStrategy",), size=256)
    sha = ModelHub.from_settings(settings).push(models, tag="vbench").manifest_sha256
    names = generate(root, count, uid, "vbench", sha)
    started = time.perf_counter()
    for env in envs:
        provision(settings, environment(settings, env))
        registry = MlflowRegistry.for_env(environment(settings, env), settings)
        for name in names:
            registry.create_registered_model_if_missing(name)
            registry.client.create_model_version(name, "s3://bench/none", tags={"strategy_name": name})
    print(f"  {count} strategies: provisioned and registered in {time.perf_counter() - started:.1f}s")
    return settings


def first_apply_speedup(count: int, moto: str, mlflow: str, scratch: Path, workers: int) -> float:
    """The first apply of one env on fresh state, sequential (concurrency 1) then with ``workers``.

    Each run gets its own fresh state (own tables, buckets, registered models), so both do the
    same writes; returns the ratio sequential / concurrent.
    """
    from tradai_release.engine.apply import apply_env
    from tradai_release.engine.plan import plan_env

    times: dict[int, float] = {}
    for concurrency in (1, workers):
        settings = build(count, moto, mlflow, scratch, envs=("dev",))
        started = time.perf_counter()
        deployment = apply_env(ReleaseContext.open(settings, "dev"), actor="bench", concurrency=concurrency)
        times[concurrency] = time.perf_counter() - started
        assert deployment.outcome == "succeeded" and plan_env(ReleaseContext.open(settings, "dev")).empty
        print(
            f"  first apply, concurrency {concurrency}: {times[concurrency]:6.1f}s "
            f"({len(deployment.actions)} actions)"
        )
    ratio = times[1] / times[workers]
    print(f"  first apply: concurrency {workers} is {ratio:.2f}x faster than sequential")
    return ratio


def measure(count: int, moto: str, mlflow: str, scratch: Path) -> dict[str, dict[str, float]]:
    from engine_helpers import counted_from_settings
    from tradai_release.engine.apply import apply_env
    from tradai_release.engine.plan import plan_env

    settings = build(count, moto, mlflow, scratch)
    results: dict[str, dict[str, float]] = {}
    for env in ENVS:
        started = time.perf_counter()
        apply_env(ReleaseContext.open(settings, env), actor="bench")
        first = time.perf_counter() - started
        counted = counted_from_settings(settings, env)
        started = time.perf_counter()
        plan = plan_env(ReleaseContext.open(settings, env, backends=counted.backends))
        wall = time.perf_counter() - started
        assert plan.empty, plan.actions[:3]
        registry_calls = counted.backends.registry.calls
        table_reads = sum(sum(t.reads.values()) for t in counted.tables)
        object_reads = sum(sum(s.reads.values()) for s in counted.stores)
        counted.reset()
        outcome = apply_env(ReleaseContext.open(settings, env, backends=counted.backends)).outcome
        results[env] = {
            "first_apply_s": first,
            "plan_s": wall,
            "registry_calls": registry_calls,
            "table_reads": table_reads,
            "object_reads": object_reads,
            "calls": registry_calls + table_reads + object_reads,
            "noop_writes": counted.writes,
        }
        print(
            f"  {env:<8} first apply {first:6.1f}s | in-sync plan {wall:5.2f}s, "
            f"{registry_calls} registry calls, "
            f"{table_reads} table reads, {object_reads} object reads | no-op apply: {outcome}, "
            f"{counted.writes} writes"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8, help="apply concurrency compared with 1")
    parser.add_argument("--apply-only", action="store_true", help="only the first-apply comparison")
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # loopback moto only, never a real account
        os.environ[name] = "testing"
    os.environ.pop("AWS_PROFILE", None)
    with tempfile.TemporaryDirectory(prefix="tradai-plan-bench-") as temp:
        scratch = Path(temp)
        with servers.loopback_pair(scratch) as (moto, mlflow):
            print(f"first apply: {args.strategies} strategies x 5 profiles, fresh state each")
            speedup = first_apply_speedup(args.strategies, moto.url, mlflow.url, scratch, args.workers)
            if args.apply_only:
                return
            baseline_count = max(1, args.strategies // 10)
            print(f"baseline: {baseline_count} strategies x {len(ENVS)} envs x 5 profiles")
            baseline = measure(baseline_count, moto.url, mlflow.url, scratch)
            print(f"scale: {args.strategies} strategies x {len(ENVS)} envs x 5 profiles")
            scaled = measure(args.strategies, moto.url, mlflow.url, scratch)
    for env in ENVS:
        ratio_calls = scaled[env]["calls"] / baseline[env]["calls"]
        ratio_time = scaled[env]["plan_s"] / baseline[env]["plan_s"]
        print(
            f"{env}: plan {scaled[env]['plan_s']:.2f}s ({ratio_time:.1f}x baseline) with "
            f"{scaled[env]['calls']:.0f} backend calls ({ratio_calls:.2f}x baseline for "
            f"{args.strategies / baseline_count:.0f}x the strategies); no-op apply writes: "
            f"{scaled[env]['noop_writes']:.0f} (goal 0)"
        )
    print(f"first apply: {args.workers} workers {speedup:.2f}x faster than 1 (goal >= 3)")


if __name__ == "__main__":
    main()
