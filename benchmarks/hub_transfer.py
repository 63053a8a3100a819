"""Model hub throughput vs raw boto3 against the same loopback moto_server, in one run.

    .venv/bin/python benchmarks/hub_transfer.py [--size-mb 500] [--workers 4]

Builds a bundle of four random files (40/30/20/10 % of --size-mb, like 200/150/100/50 MB),
then times: raw upload_file of each file, hub push (hash + head + put_file), hub re-push of
the unchanged bundle (must upload 0 bytes), raw download_file of each file, and hub pull into
an empty dir (streamed, SHA-256 verified, atomic swap). Goals: push >= 0.9x raw, re-push
0 bytes, verified pull >= 0.8x raw. Raw transfers use large part sizes too (moto serves
ranged GETs slowly), so the comparison is of the hub's overhead, not of part sizes.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import servers  # noqa: E402  (the loopback moto_server of the end-to-end tests)

SHARES = (
    ("signal/ensemble_rf.onnx", 0.4),
    ("signal/ensemble_rf.pkl", 0.3),
    ("position/position_rf.onnx", 0.2),
    ("position/position_rf.pkl", 0.1),
)
PART = 256 * 1024 * 1024


def _build_bundle(models: Path, total_mb: int) -> list[Path]:
    files = []
    for relpath, share in SHARES:
        path = models / "BenchStrategy" / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        remaining = int(total_mb * share * 1024 * 1024)
        with path.open("wb") as out:
            while remaining > 0:
                chunk = min(remaining, 16 * 1024 * 1024)
                out.write(os.urandom(chunk))
                remaining -= chunk
        files.append(path)
    (models / "BenchStrategy" / "model_compat.json").write_text(
        '{"feature_count": 2, "features": ["a", "b"]}'
    )
    return files


def _timed(label: str, body: object) -> float:
    start = time.perf_counter()
    body()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    print(f"  {label:<40} {elapsed:7.2f} s", flush=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=500, help="total bundle size in MB (default 500)")
    parser.add_argument("--workers", type=int, default=4, help="hub transfer threads (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, medians reported (default 3)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tools"))
    from boto3.s3.transfer import TransferConfig

    from tradai_release.endpoints import AwsOptions
    from tradai_release.hub import ModelHub
    from tradai_release.stores.aws import client as make_client
    from tradai_release.stores.s3 import S3ObjectStore

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    server = servers.start_moto(work)
    try:
        aws = AwsOptions(
            endpoint_url=server.url, region="us-east-1", access_key_id="testing", secret_access_key="testing"
        )
        client = make_client(aws, "s3")
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        models = work / "models"
        files = _build_bundle(models, args.size_mb)
        total = sum(p.stat().st_size for p in files)
        mb = total / 1024 / 1024
        print(f"bundle: {len(files)} files, {mb:.0f} MB; moto at {server.url}; hub workers {args.workers}")
        config = TransferConfig(
            multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=args.workers
        )

        def raw_up(n: int) -> None:
            for path in files:
                client.upload_file(str(path), bucket, f"raw{n}/{path.name}", Config=config)

        def raw_down(n: int) -> None:
            target = work / f"raw-down{n}"
            target.mkdir()
            for path in files:
                client.download_file(bucket, f"raw0/{path.name}", str(target / path.name), Config=config)

        # The same part size as the raw baseline: the comparison is of the hub's overhead.
        hubs = [
            ModelHub(
                S3ObjectStore(
                    bucket, prefix=f"hub{n}", aws=aws, multipart_threshold=PART, part_size=PART,
                    max_concurrency=args.workers,
                ),
                workers=args.workers,
            )
            for n in range(args.rounds)
        ]
        results: dict[str, object] = {}

        def push(n: int) -> None:
            results["push"] = hubs[n].push(models, tag="bench-1")

        def repush() -> None:
            results["repush"] = hubs[0].push(models, tag="bench-2")

        def pull(n: int) -> None:
            results["pull"] = hubs[0].pull(work / f"pulled{n}" / "models", tag="bench-1")

        # Rounds alternate raw and hub, each into fresh keys / directories; medians are reported,
        # because one loopback moto_server on 2 shared cores varies by 2x between runs.
        ups, pushes, downs, pulls = [], [], [], []
        for n in range(args.rounds):
            ups.append(_timed(f"raw boto3 upload_file, round {n + 1}", lambda n=n: raw_up(n)))
            pushes.append(_timed(f"hub push, round {n + 1}", lambda n=n: push(n)))
        t_repush = _timed("hub re-push (unchanged)", repush)
        for n in range(args.rounds):
            downs.append(_timed(f"raw boto3 download_file, round {n + 1}", lambda n=n: raw_down(n)))
            pulls.append(_timed(f"hub pull (verified), round {n + 1}", lambda n=n: pull(n)))
        t_raw_up, t_push = statistics.median(ups), statistics.median(pushes)
        t_raw_down, t_pull = statistics.median(downs), statistics.median(pulls)

        repushed = results["repush"].uploaded_bytes  # type: ignore[attr-defined]
        print()
        print(f"medians of {args.rounds} rounds")
        print(f"{'':<22}{'seconds':>9}{'MB/s':>9}{'vs raw':>9}   goal")
        print(f"{'raw upload':<22}{t_raw_up:9.2f}{mb / t_raw_up:9.1f}")
        print(f"{'hub push':<22}{t_push:9.2f}{mb / t_push:9.1f}{t_raw_up / t_push:8.2f}x   >= 0.9x")
        print(f"{'hub re-push':<22}{t_repush:9.2f}{'':>9}{'':>9}   0 bytes uploaded: {repushed}")
        print(f"{'raw download':<22}{t_raw_down:9.2f}{mb / t_raw_down:9.1f}")
        print(
            f"{'hub pull (verified)':<22}{t_pull:9.2f}{mb / t_pull:9.1f}{t_raw_down / t_pull:8.2f}x   >= 0.8x"
        )
        return 0
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
