"""Model hub CLI vs the raw boto3 client (and DVC when installed) on one loopback moto_server.

    .venv/bin/python benchmarks/hub_transfer.py [--rounds 3] [--workload bundle|large|both]
    PYTHONPATH=/work/main/tools .venv/bin/python benchmarks/hub_transfer.py --tools /work/main/tools
    .venv/bin/python benchmarks/hub_transfer.py --dvc /tmp/dvcvenv/bin/dvc

Two workloads: ``bundle``, 63 files of mixed sizes (1 KB .. 8 MB) across three strategies,
about 62 MB; ``large``, four files of 125 MB. Every operation runs as its own process, as a
user would run it: ``tools/r2_hub.py --push`` / ``--pull`` (settings from TRADAI_HUB_URI,
TRADAI_HUB_ENDPOINT_URL and CF_R2_*), and a small raw boto3 script (``upload_file`` /
``download_file``, one thread per file up to the hub's worker count, the hub store's part size
and per-file concurrency). Rounds alternate which tool goes first, each into fresh keys and
empty directories; medians are reported. The unchanged re-push counts its requests in
moto_server's request log. ``--tools`` picks the checkout whose r2_hub.py runs (main's code
for a "before" column). Goals: pull >= 0.9x raw throughput on ``large`` and >= 0.95x on
``bundle`` (SHA-256 verification included), push <= 1.1x raw time on both.

DVC is an optional third column, never a dependency of this project: its S3 support (dvc-s3,
s3fs, aiobotocore) pins botocore versions that clash with ours, so it lives in its own venv::

    python3 -m venv /tmp/dvcvenv && /tmp/dvcvenv/bin/pip install 'dvc[s3]==3.67.0'

``--dvc PATH`` names its executable (default: ``dvc`` on PATH; when there is none the column is
skipped). Each round gives DVC a fresh ``dvc init --no-scm`` project whose default remote is
``s3://<bucket>/dvc-<uuid>`` with ``endpointurl`` set to moto_server (credentials and region
from AWS_* variables); the workload is hard-linked into it, untimed. Timed, each its own
process: ``dvc add models`` (MD5 hashing and the copy into .dvc/cache), ``dvc push`` (cold),
an unchanged ``dvc push`` (its requests counted as the hub's re-push is), and ``dvc pull``
into a second fresh project holding only ``models.dvc`` and the config (empty cache, DVC's
default ``verify = false``: no re-hash of what it downloads). Push and pull get ``-j`` equal
to the hub's worker count. The hub's push hashes and uploads in one step, so it compares with
``dvc add`` + ``dvc push``. DVC's process start is timed as ``dvc list-url`` of the empty
bucket. DVC reads no user or system config (DVC_GLOBAL_CONFIG_DIR, DVC_SYSTEM_CONFIG_DIR and
DVC_SITE_CACHE_DIR point into the work dir; analytics and update checks off).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import servers  # noqa: E402  (the loopback moto_server of the end-to-end tests)

MB = 1024 * 1024
WORKERS = 4  # the hub's DEFAULT_WORKERS: the raw script gets as many file threads
PART = 64 * MB  # the S3 store's default part size and multipart threshold
PER_FILE_CONCURRENCY = 8  # the S3 store's default max_concurrency
STRATEGY_FILE_KB = (
    # 21 files per strategy, three strategies: 63 files, ~62 MB
    8192, 5120, 3072, 2048, 1024, 512, 512, 256, 128, 64, 32, 16, 8, 4, 4, 2, 2, 1, 1, 1, 1,
)  # fmt: skip

RAW_SCRIPT = """
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig

verb, endpoint, bucket, prefix, local, workers, part, concurrency = sys.argv[1:]
client = boto3.client(
    "s3", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id="testing", aws_secret_access_key="testing",
)
config = TransferConfig(
    multipart_threshold=int(part), multipart_chunksize=int(part), max_concurrency=int(concurrency)
)
root = Path(local)
if verb == "up":
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    def one(path):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}", Config=config)
else:
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        for item in page.get("Contents", [])
    ]
    files = keys
    def one(key):
        target = root / key[len(prefix) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(target), Config=config)
with ThreadPoolExecutor(max_workers=int(workers)) as pool:
    list(pool.map(one, files))
"""


def _write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        while size > 0:
            chunk = min(size, 16 * MB)
            out.write(os.urandom(chunk))
            size -= chunk


def build_bundle(models: Path) -> None:
    """63 files of mixed sizes across three strategies (about 62 MB)."""
    for strategy in ("AlphaStrategy", "BetaStrategy", "GammaStrategy"):
        for index, kb in enumerate(STRATEGY_FILE_KB):
            sub = "signal" if index % 2 == 0 else "position"
            _write_random(models / strategy / sub / f"part_{index:02d}.bin", kb * 1024)


def build_large(models: Path) -> None:
    """Four files of 125 MB."""
    for index in range(4):
        _write_random(models / "LargeStrategy" / f"model_{index}.onnx", 125 * 1000 * 1000)


class Bench:
    def __init__(
        self, work: Path, server: servers.Server, bucket: str, tools: Path, dvc: Path | None = None
    ) -> None:
        self.work = work
        self.server = server
        self.bucket = bucket
        self.tools = tools
        self.dvc_exe = dvc
        self.dvc_home = work / "dvc-home"  # DVC's global, system and site-cache dirs
        if dvc is not None:
            (self.dvc_home / "global").mkdir(parents=True)
            (self.dvc_home / "system").mkdir()
            config = "[core]\n    analytics = false\n    check_update = false\n"
            (self.dvc_home / "global" / "config").write_text(config)
        self.raw_script = work / "raw_boto3.py"
        self.raw_script.write_text(RAW_SCRIPT)
        self.cwd = work / "cwd"  # not a git repository: the push records no commit
        self.cwd.mkdir()

    def _run(self, cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd or self.cwd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return elapsed

    def _hub_env(self, prefix: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("TRADAI_", "CF_R2_"))}
        env.update(
            PYTHONPATH=str(self.tools),
            TRADAI_HUB_URI=f"s3://{self.bucket}/{prefix}",
            TRADAI_HUB_ENDPOINT_URL=self.server.url,
            TRADAI_STATE_DIR=str(self.work / "state"),
            CF_R2_ACCESS_KEY_ID="testing",
            CF_R2_SECRET_ACCESS_KEY="testing",
            TERM="dumb",
        )
        return env

    def raw(self, verb: str, prefix: str, local: Path) -> float:
        args = [self.server.url, self.bucket, prefix, str(local), str(WORKERS), str(PART)]
        cmd = [sys.executable, str(self.raw_script), verb, *args, str(PER_FILE_CONCURRENCY)]
        return self._run(cmd, {**os.environ, "PYTHONPATH": ""})

    def hub(self, prefix: str, *flags: str) -> float:
        cmd = [sys.executable, str(self.tools / "r2_hub.py"), *flags]
        return self._run(cmd, self._hub_env(prefix))

    def dvc_env(self) -> dict[str, str]:
        """DVC's environment: test credentials only, no user or system config, no telemetry."""
        dvc_home = self.dvc_home
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "DVC_", "TRADAI_", "CF_R2_", "PYTHON"))
        }
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=str(dvc_home / "aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(dvc_home / "aws-credentials"),
            DVC_GLOBAL_CONFIG_DIR=str(dvc_home / "global"),
            DVC_SYSTEM_CONFIG_DIR=str(dvc_home / "system"),
            DVC_SITE_CACHE_DIR=str(dvc_home / "site-cache"),
            DVC_NO_ANALYTICS="1",
            TERM="dumb",
        )
        return env

    def dvc(self, project: Path, *args: str) -> float:
        assert self.dvc_exe is not None
        return self._run([str(self.dvc_exe), *args], self.dvc_env(), cwd=project)

    def dvc_project(self, path: Path, remote_prefix: str) -> None:
        """A fresh DVC project (no git) whose default remote is a prefix of the bench bucket."""
        path.mkdir(parents=True)
        self.dvc(path, "init", "--no-scm", "-q")
        self.dvc(path, "remote", "add", "-d", "bench", f"s3://{self.bucket}/{remote_prefix}")
        self.dvc(path, "remote", "modify", "bench", "endpointurl", self.server.url)
        self.dvc(path, "remote", "modify", "bench", "region", "us-east-1")

    def requests(self) -> int:
        """Requests moto_server has logged so far (one line per request)."""
        text = self.server.log.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if '] "' in line and " HTTP/1.1" in line)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def startup(bench: Bench, rounds: int) -> tuple[float, float]:
    """Median time of each tool's process doing one listing of an empty prefix: the fixed cost
    every hub CLI or raw script run pays before it moves a byte (interpreter, imports, client)."""
    empty = bench.work / "empty"
    empty.mkdir(exist_ok=True)
    hub = [bench.hub(f"empty-{uuid.uuid4().hex[:6]}", "--list", "--json") for _ in range(rounds)]
    raw = [bench.raw("down", f"empty-{uuid.uuid4().hex[:6]}", empty) for _ in range(rounds)]
    return _median(hub), _median(raw)


def dvc_startup(bench: Bench, rounds: int) -> float:
    """Median time of a DVC process listing the (still empty) bench bucket: DVC's fixed cost."""
    fs_config = f"endpointurl={bench.server.url}"
    url = f"s3://{bench.bucket}/"
    return _median([bench.dvc(bench.cwd, "list-url", url, "--fs-config", fs_config) for _ in range(rounds)])


def _count_files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def _dvc_upload(bench: Bench, models: Path, project: Path, times: dict[str, list[float]]) -> None:
    shutil.copytree(models, project / "models", copy_function=os.link)  # untimed: a workspace
    times["dvc_add"].append(bench.dvc(project, "add", "-q", "models"))
    times["dvc_push"].append(bench.dvc(project, "push", "-q", "-j", str(WORKERS)))


def _dvc_download(bench: Bench, project: Path, remote_prefix: str, dest: Path) -> float:
    """A second fresh project holding only models.dvc and the config (empty cache); dvc pull."""
    bench.dvc_project(dest, remote_prefix)
    shutil.copy2(project / "models.dvc", dest / "models.dvc")
    shutil.copy2(project / ".dvc" / "config", dest / ".dvc" / "config")
    return bench.dvc(dest, "pull", "-q", "-j", str(WORKERS))


def run_workload(bench: Bench, name: str, models: Path, rounds: int) -> dict[str, float]:
    size_mb = sum(p.stat().st_size for p in models.rglob("*") if p.is_file()) / MB
    files = sum(1 for p in models.rglob("*") if p.is_file())
    print(f"\n== {name}: {files} files, {size_mb:.0f} MB", flush=True)
    keys = ["raw_up", "push", "repush", "raw_down", "pull"]
    if bench.dvc_exe is not None:
        keys += ["dvc_add", "dvc_push", "dvc_repush", "dvc_pull"]
    times: dict[str, list[float]] = {k: [] for k in keys}
    repush_requests: list[int] = []
    dvc_repush_requests: list[int] = []
    for n in range(rounds):
        run = uuid.uuid4().hex[:6]
        raw_prefix, hub_prefix = f"raw-{name}-{run}", f"hub-{name}-{run}"
        dvc_prefix = f"dvc-{uuid.uuid4().hex}"
        dvc_project = bench.work / f"dvc-{run}"
        # raw and hub alternate which goes first; DVC, when there, takes slot n % 3 among them
        order = ["raw", "hub"] if n % 2 == 0 else ["hub", "raw"]
        if bench.dvc_exe is not None:
            order.insert(n % 3, "dvc")
            bench.dvc_project(dvc_project, dvc_prefix)
        for tool in order:
            if tool == "raw":
                times["raw_up"].append(bench.raw("up", raw_prefix, models))
            elif tool == "hub":
                times["push"].append(
                    bench.hub(hub_prefix, "--push", "--tag", "bench-1", "--models-dir", str(models))
                )
            else:
                _dvc_upload(bench, models, dvc_project, times)
        before = bench.requests()
        times["repush"].append(
            bench.hub(hub_prefix, "--push", "--tag", "bench-2", "--models-dir", str(models))
        )
        repush_requests.append(bench.requests() - before)
        if bench.dvc_exe is not None:
            before = bench.requests()
            times["dvc_repush"].append(bench.dvc(dvc_project, "push", "-q", "-j", str(WORKERS)))
            dvc_repush_requests.append(bench.requests() - before)
        raw_dest, hub_dest = bench.work / f"raw-down-{run}", bench.work / f"hub-down-{run}" / "models"
        dvc_dest = bench.work / f"dvc-down-{run}"
        raw_dest.mkdir()
        for tool in order:
            if tool == "raw":
                times["raw_down"].append(bench.raw("down", raw_prefix, raw_dest))
            elif tool == "hub":
                times["pull"].append(
                    bench.hub(hub_prefix, "--pull", "--revision", "bench-1", "--models-dir", str(hub_dest))
                )
            else:
                times["dvc_pull"].append(_dvc_download(bench, dvc_project, dvc_prefix, dvc_dest))
        pulled = _count_files(hub_dest)
        downloaded = _count_files(raw_dest)
        if pulled != files or downloaded != files:
            raise RuntimeError(f"round {n + 1}: pulled {pulled} and downloaded {downloaded} of {files} files")
        line = (
            f"  round {n + 1}: raw up {times['raw_up'][-1]:.2f}  push {times['push'][-1]:.2f}  "
            f"re-push {times['repush'][-1]:.2f} ({repush_requests[-1]} requests)  "
            f"raw down {times['raw_down'][-1]:.2f}  pull {times['pull'][-1]:.2f}"
        )
        if bench.dvc_exe is not None:
            dvc_pulled = _count_files(dvc_dest / "models")
            if dvc_pulled != files:
                raise RuntimeError(f"round {n + 1}: dvc pulled {dvc_pulled} of {files} files")
            line += (
                f"\n           dvc add {times['dvc_add'][-1]:.2f}  push {times['dvc_push'][-1]:.2f}  "
                f"re-push {times['dvc_repush'][-1]:.2f} ({dvc_repush_requests[-1]} requests)  "
                f"pull {times['dvc_pull'][-1]:.2f}"
            )
            shutil.rmtree(dvc_project)
            shutil.rmtree(dvc_dest)
        print(line, flush=True)
        shutil.rmtree(raw_dest)
        shutil.rmtree(hub_dest.parent)
    med = {key: _median(values) for key, values in times.items()}
    med["repush_requests"] = _median([float(r) for r in repush_requests])
    if dvc_repush_requests:
        med["dvc_repush_requests"] = _median([float(r) for r in dvc_repush_requests])
    med["size_mb"] = size_mb
    return med


def report(
    name: str,
    med: dict[str, float],
    pull_goal: float,
    starts: tuple[float, float],
    dvc_start: float | None = None,
) -> None:
    mb = med["size_mb"]
    hub_start, raw_start = starts
    print(f"\n{name} (medians, seconds; each operation its own process)")
    print(f"  {'':<26}{'seconds':>9}{'MB/s':>9}{'vs raw':>10}   goal")
    print(f"  {'raw upload_file':<26}{med['raw_up']:9.2f}{mb / med['raw_up']:9.1f}")
    print(
        f"  {'hub push':<26}{med['push']:9.2f}{mb / med['push']:9.1f}"
        f"{med['push'] / med['raw_up']:9.2f}x   time <= 1.1x raw"
    )
    print(
        f"  {'hub re-push (unchanged)':<26}{med['repush']:9.2f}{'':>19}"
        f"   {med['repush_requests']:.0f} requests"
    )
    print(f"  {'raw download_file':<26}{med['raw_down']:9.2f}{mb / med['raw_down']:9.1f}")
    print(
        f"  {'hub pull (verified)':<26}{med['pull']:9.2f}{mb / med['pull']:9.1f}"
        f"{med['raw_down'] / med['pull']:9.2f}x   throughput >= {pull_goal}x raw"
    )
    # The same ratios with each tool's fixed process start taken off: what the transfer itself costs.
    push = (med["push"] - hub_start) / max(med["raw_up"] - raw_start, 1e-9)
    pull = (med["raw_down"] - raw_start) / max(med["pull"] - hub_start, 1e-9)
    print(f"  without process start: push {push:.2f}x raw time, pull {pull:.2f}x raw throughput")
    if dvc_start is None or "dvc_push" not in med:
        return
    add_push = med["dvc_add"] + med["dvc_push"]
    print(f"  {'dvc add (hash + cache)':<26}{med['dvc_add']:9.2f}{mb / med['dvc_add']:9.1f}")
    print(
        f"  {'dvc push (cold)':<26}{med['dvc_push']:9.2f}{mb / med['dvc_push']:9.1f}"
        f"{med['dvc_push'] / med['raw_up']:9.2f}x   time vs raw"
    )
    print(
        f"  {'dvc add + push':<26}{add_push:9.2f}{mb / add_push:9.1f}"
        f"{add_push / med['raw_up']:9.2f}x   time vs raw"
    )
    print(
        f"  {'dvc re-push (unchanged)':<26}{med['dvc_repush']:9.2f}{'':>19}"
        f"   {med['dvc_repush_requests']:.0f} requests"
    )
    print(
        f"  {'dvc pull (empty cache)':<26}{med['dvc_pull']:9.2f}{mb / med['dvc_pull']:9.1f}"
        f"{med['raw_down'] / med['dvc_pull']:9.2f}x   throughput vs raw"
    )
    print(
        f"  hub vs dvc: push {med['push'] / add_push:.2f}x the time of add + push "
        f"({med['push'] / med['dvc_push']:.2f}x of push alone), "
        f"re-push {med['repush'] / med['dvc_repush']:.2f}x, "
        f"pull {med['dvc_pull'] / med['pull']:.2f}x the throughput"
    )
    # Each of add and push is its own DVC process: two starts to take off the pair.
    dvc_push = (add_push - 2 * dvc_start) / max(med["raw_up"] - raw_start, 1e-9)
    dvc_pull = (med["raw_down"] - raw_start) / max(med["dvc_pull"] - dvc_start, 1e-9)
    print(
        f"  dvc without process start: add + push {dvc_push:.2f}x raw time, "
        f"pull {dvc_pull:.2f}x raw throughput"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, medians reported (default 3)")
    parser.add_argument("--workload", choices=("bundle", "large", "both"), default="both")
    parser.add_argument(
        "--tools", type=Path, default=ROOT / "tools", help="checkout tools dir whose r2_hub.py runs"
    )
    parser.add_argument(
        "--dvc", type=Path, default=None, help="DVC executable to compare (default: dvc on PATH)"
    )
    args = parser.parse_args()
    dvc_exe = args.dvc or (Path(found) if (found := shutil.which("dvc")) else None)
    if dvc_exe is not None and not (dvc_exe.is_file() and os.access(dvc_exe, os.X_OK)):
        print(f"error: --dvc: {dvc_exe}: not an executable file", file=sys.stderr)
        return 1

    import boto3

    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    server = servers.start_moto(work)
    try:
        client = boto3.client(
            "s3",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        bench = Bench(work, server, bucket, args.tools.resolve(), dvc_exe)
        print(f"moto_server at {server.url}; hub code from {bench.tools}; {args.rounds} rounds")
        if dvc_exe is None:
            print("dvc: not found (--dvc PATH to compare; install dvc[s3] in its own venv)")
        else:
            version = subprocess.run(
                [str(dvc_exe), "--version"], env=bench.dvc_env(), capture_output=True, text=True
            ).stdout.strip()
            print(f"dvc: {version or 'unknown version'} at {dvc_exe}")
        hub_start, raw_start = startup(bench, args.rounds)
        print(f"process start + one listing: hub CLI {hub_start:.2f} s, raw script {raw_start:.2f} s")
        dvc_start = dvc_startup(bench, args.rounds) if dvc_exe is not None else None
        if dvc_start is not None:
            print(f"process start + one listing: dvc {dvc_start:.2f} s")
        results = {}
        if args.workload in ("bundle", "both"):
            build_bundle(work / "bundle" / "models")
            results["bundle"] = run_workload(bench, "bundle", work / "bundle" / "models", args.rounds)
        if args.workload in ("large", "both"):
            build_large(work / "large" / "models")
            results["large"] = run_workload(bench, "large", work / "large" / "models", args.rounds)
        for name, med in results.items():
            report(
                "63-file bundle" if name == "bundle" else "4 x 125 MB",
                med,
                0.95 if name == "bundle" else 0.9,
                (hub_start, raw_start),
                dvc_start,
            )
        return 0
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
