"""Deep verification of hub blobs: the store's SHA-256 checksum read back, or the blob streamed and hashed;
a same-size tampered blob refused by verify, validate --deep, apply and r2_hub.py --verify."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT
from engine_helpers import (
    STRATEGIES,
    TAG,
    commit_all,
    local_backends,
    make_repo,
    push_tag,
    register_versions,
)
from fake_registry import FakeRegistry
from helpers import invoke
from hub_helpers import CountingStore, make_models_dir
from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import ArtifactsRefused
from tradai_release.core.settings import Settings
from tradai_release.engine.apply import apply_env
from tradai_release.engine.checks import check_artifacts
from tradai_release.engine.context import ReleaseContext
from tradai_release.engine.release_table import ReleaseTable
from tradai_release.hub.hub import ModelHub
from tradai_release.hub.names import blob_key
from tradai_release.repository.manifest_edit import edit_manifest
from tradai_release.repository.tree import WorkTree, load_release_repo
from tradai_release.stores.local import LocalObjectStore
from tradai_release.stores.s3 import S3ObjectStore, _full_object_sha256

SCRIPT = REPO_ROOT / "tools" / "r2_hub.py"
TAMPERED_PATH = "PascalStrategy/signal/ensemble_rf.pkl"


# ---------------------------------------------------------------- S3 helpers


class RequestLog:
    """Every request an S3 client sends (botocore ``before-send`` hook): method and object key."""

    def __init__(self, store: S3ObjectStore) -> None:
        self.store = store
        self.requests: list[tuple[str, str]] = []
        store.client.meta.events.register("before-send.s3", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        path = request.url.split("?", 1)[0].split(f"/{self.store.bucket}/", 1)[-1]
        self.requests.append((request.method, path))

    def clear(self) -> None:
        self.requests.clear()

    def blob_gets(self) -> list[str]:
        """Keys of blob bodies read (GET of ``blobs/...``)."""
        return [key for method, key in self.requests if method == "GET" and "/blobs/sha256/" in f"/{key}"]

    def methods(self) -> Counter[str]:
        return Counter(method for method, _ in self.requests)


def s3_store(moto_server: str, prefix: str = "models-hub") -> S3ObjectStore:
    from tradai_release.stores.aws import client

    bucket = f"verify-{uuid.uuid4().hex[:8]}"
    aws = AwsOptions(endpoint_url=moto_server, region="us-east-1")
    client(aws, "s3").create_bucket(Bucket=bucket)
    return S3ObjectStore(bucket, prefix=prefix, aws=aws)


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def store_checksums(store: S3ObjectStore) -> int:
    """Rewrite every blob with a stored SHA-256 checksum (what a push does once it sends one)."""
    count = 0
    for info in list(store.list("blobs/")):
        data = store.get(info.key)
        store.client.put_object(
            Bucket=store.bucket, Key=store._key(info.key), Body=data, ChecksumSHA256=b64_sha256(data),
            ChecksumAlgorithm="SHA256",  # moto keeps a checksum only when the algorithm is named too
        )
        count += 1
    return count


def tamper(store: S3ObjectStore | LocalObjectStore, hub: ModelHub, tag: str, how: str) -> str:
    """Flip one byte of ``TAMPERED_PATH``'s blob of ``tag`` (same size); returns the blob's sha256.

    ``how``: ``plain`` re-uploads it without a SHA-256 checksum; ``checksum`` with the checksum of its
    new content (what a careless hand upload through an SDK that adds checksums would do).
    """
    sha = hub.read_tag(tag).files[TAMPERED_PATH].sha256
    key = blob_key(sha)
    data = bytearray(store.get(key))
    data[len(data) // 2] ^= 0x01
    if isinstance(store, LocalObjectStore):
        store.put(key, bytes(data))
    elif how == "checksum":
        store.client.put_object(
            Bucket=store.bucket, Key=store._key(key), Body=bytes(data),
            ChecksumSHA256=b64_sha256(bytes(data)), ChecksumAlgorithm="SHA256",
        )
    else:
        store.client.put_object(Bucket=store.bucket, Key=store._key(key), Body=bytes(data))
    head = store.head(key)
    assert head is not None and head.size == len(data)
    if how == "checksum":
        assert head.sha256 == hashlib.sha256(bytes(data)).hexdigest()
    else:
        assert head.sha256 is None
    return sha


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bundle(root: Path) -> Path:
    return make_models_dir(root, ("AlphaStrategy", "PascalStrategy"), size=3000)


# ---------------------------------------------------------------- the stores' checksum read-back


def test_s3_head_reads_a_full_object_checksum_and_nothing_else() -> None:
    from moto import mock_aws

    from tradai_release.stores.aws import client

    data = os.urandom(5000)
    with mock_aws():
        aws = AwsOptions(region="us-east-1")
        raw = client(aws, "s3")
        raw.create_bucket(Bucket="checksums")
        store = S3ObjectStore("checksums", prefix="p", aws=aws)
        raw.put_object(Bucket="checksums", Key="p/with", Body=data, ChecksumAlgorithm="SHA256")
        raw.put_object(Bucket="checksums", Key="p/without", Body=data)
        upload = raw.create_multipart_upload(
            Bucket="checksums", Key="p/multi", ChecksumAlgorithm="SHA256", ChecksumType="COMPOSITE"
        )
        part = raw.upload_part(
            Bucket="checksums", Key="p/multi", UploadId=upload["UploadId"], PartNumber=1, Body=data,
            ChecksumAlgorithm="SHA256",
        )
        raw.complete_multipart_upload(
            Bucket="checksums", Key="p/multi", UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [
                {"PartNumber": 1, "ETag": part["ETag"], "ChecksumSHA256": part["ChecksumSHA256"]}
            ]},
        )
        with_checksum = store.head("with")
        assert with_checksum is not None and with_checksum.sha256 == hashlib.sha256(data).hexdigest()
        without = store.head("without")
        assert without is not None and without.size == 5000 and without.sha256 is None
        multi = store.head("multi")  # a checksum of part checksums says nothing about the content
        assert multi is not None and multi.sha256 is None
        assert store.head("absent") is None
        assert all(info.sha256 is None for info in store.list())  # a listing carries no checksum
    full = b64_sha256(data)
    assert _full_object_sha256({"ChecksumSHA256": full}) == hashlib.sha256(data).hexdigest()
    assert _full_object_sha256({"ChecksumSHA256": f"{full}-3"}) is None
    assert _full_object_sha256({"ChecksumSHA256": full, "ChecksumType": "COMPOSITE"}) is None
    assert _full_object_sha256({"ChecksumSHA256": "not base64!"}) is None
    assert _full_object_sha256({"ChecksumSHA256": base64.b64encode(b"short").decode()}) is None
    assert _full_object_sha256({}) is None


def test_local_head_keeps_no_checksum(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    store.put("a/b", b"bytes")
    head = store.head("a/b")
    assert head is not None and head.size == 5 and head.sha256 is None


# ---------------------------------------------------------------- ModelHub.verify


@pytest.mark.e2e
def test_verify_of_a_tag_with_stored_checksums_reads_no_blob_body(moto_server: str, tmp_path: Path) -> None:
    store = s3_store(moto_server)
    hub = ModelHub(store, workers=4)
    pushed = hub.push(bundle(tmp_path / "models"), tag="v1")
    assert store_checksums(store) == 26
    log = RequestLog(store)
    result = hub.verify("v1", pushed.manifest_sha256, deep=True)
    assert result.problems == ()
    assert (result.blobs, result.by_checksum, result.hashed, result.hashed_bytes) == (26, 26, 0, 0)
    assert log.blob_gets() == []
    # one GET (the tag manifest) and one HEAD per distinct blob: what a shallow check costs
    assert log.methods() == Counter({"GET": 1, "HEAD": 26})


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["plain", "checksum"])
def test_a_same_size_one_byte_change_passes_the_size_check_and_fails_deep_verify(
    moto_server: str, tmp_path: Path, how: str
) -> None:
    store = s3_store(moto_server)
    hub = ModelHub(store, workers=4)
    pushed = hub.push(bundle(tmp_path / "models"), tag="v1")
    store_checksums(store)
    sha = tamper(store, hub, "v1", how)
    assert hub.verify_tag("v1", pushed.manifest_sha256) == []  # existence and size only: not noticed
    log = RequestLog(store)
    result = hub.verify("v1", pushed.manifest_sha256, deep=True)
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.startswith(f"tag v1: {TAMPERED_PATH}: blob {sha[:12]} in {store.name} holds other content")
    if how == "checksum":  # the stored checksum is not the name: found without reading a byte
        assert "the store's SHA-256 checksum is" in problem
        assert log.blob_gets() == []
        assert (result.by_checksum, result.hashed) == (26, 0)
    else:  # no checksum: that one blob is streamed and hashed, the others answer by checksum
        assert "3000 bytes hashing to" in problem
        assert log.blob_gets() == [f"models-hub/{blob_key(sha)}"]
        assert (result.by_checksum, result.hashed, result.hashed_bytes) == (25, 1, 3000)


def test_deep_verify_of_a_local_hub_hashes_each_distinct_blob_once(tmp_path: Path) -> None:
    store = CountingStore(LocalObjectStore(tmp_path / "hub"))
    hub = ModelHub(store, workers=2)
    models = bundle(tmp_path / "models")
    (models / "AlphaStrategy" / "copy.pkl").write_bytes((models / TAMPERED_PATH).read_bytes())
    (models / "AlphaStrategy" / "empty.txt").write_bytes(b"")
    pushed = hub.push(models, tag="v1")
    store.calls.clear()
    result = hub.verify("v1", pushed.manifest_sha256, deep=True)
    assert result.problems == () and (result.blobs, result.hashed) == (27, 27)  # 28 files, 27 contents
    assert store.calls["get_stream"] == 27 and store.calls["head"] == 27
    distinct = {entry.sha256: entry.size for entry in hub.read_tag("v1").files.values()}
    assert result.hashed_bytes == sum(distinct.values())
    sha = tamper(store.inner, hub, "v1", "plain")
    problems = hub.verify_tag("v1", pushed.manifest_sha256, deep=True)
    # a content shared by two files is checked once, under the first path that uses it
    assert problems == [
        f"tag v1: AlphaStrategy/copy.pkl: blob {sha[:12]} in {store.name} holds other content "
        f"(3000 bytes hashing to {file_sha(tmp_path / 'hub' / blob_key(sha))[:12]})"
    ]
    store.inner.delete(blob_key(sha))
    assert hub.verify_tag("v1", pushed.manifest_sha256, deep=True) == [
        f"tag v1: AlphaStrategy/copy.pkl: blob {sha[:12]} missing from {store.name}"
    ]
    assert "no such tag" in hub.verify_tag("v9", None, deep=True)[0]
    assert hub.verify("v1", "f" * 64, deep=True).problems[0].endswith(f"expected {'f' * 64}")


# ---------------------------------------------------------------- validate --deep


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["plain", "checksum"])
def test_live_validation_deep_refuses_the_tampered_blob(moto_server: str, tmp_path: Path, how: str) -> None:
    store = s3_store(moto_server)
    hub = ModelHub(store, workers=4)
    repo = make_repo(tmp_path, TAG, push_tag(hub, tmp_path))
    store_checksums(store)
    sha = tamper(store, hub, TAG, how)
    release_repo = load_release_repo(WorkTree(repo))
    manifests = release_repo.manifests_of("dev")
    assert check_artifacts(hub, release_repo, manifests) == []  # the size check passes it
    log = RequestLog(store)
    problems = check_artifacts(hub, release_repo, manifests, deep=True)
    assert [(p.file, p.field) for p in problems] == [("releases/dev/profile-1.yaml", "artifacts.tag")]
    assert f"tag {TAG}: {TAMPERED_PATH}: blob {sha[:12]}" in problems[0].reason
    # model_compat.json is read whole for the feature check; no other blob body is read
    bodies = [key for key in log.blob_gets() if not key.endswith(blob_key(sha))]
    compat = {hub.read_tag(TAG).files[f"{s}/model_compat.json"].sha256 for s in STRATEGIES}
    assert {key.rsplit("/", 1)[-1] for key in bodies} <= compat
    assert (blob_key(sha) in "".join(log.blob_gets())) == (how == "plain")


def test_validate_task_deep_flag(tmp_path: Path) -> None:
    hub = ModelHub.from_settings(Settings())  # the embedded default hub under TRADAI_STATE_DIR
    repo = make_repo(tmp_path, TAG, push_tag(hub, tmp_path))
    assert isinstance(hub.store, LocalObjectStore)
    sha = tamper(hub.store, hub, TAG, "plain")

    def hub_problems(*flags: str) -> list[dict[str, str]]:
        done = invoke(repo, "validate", "--json", *flags)
        assert done.returncode == 1, done.stderr  # the empty embedded registries fail it anyway
        report = json.loads(done.stdout)
        assert report["deep"] == ("--deep" in flags)
        return [p for p in report["problems"] if p["field"] == "artifacts.tag"]

    assert hub_problems() == []
    found = hub_problems("--deep")
    assert [p["file"] for p in found] == ["releases/dev/profile-1.yaml"]
    assert found[0]["reason"].startswith(f"tag {TAG}: {TAMPERED_PATH}: blob {sha[:12]}")

    done = invoke(repo, "validate", "--offline", "--deep")
    assert done.returncode == 1
    assert done.stderr == (
        "error: validate: --deep: checks the hub, so it cannot be combined with --offline\n"
    )


# ---------------------------------------------------------------- apply


@dataclass
class ApplyWorld:
    repo: Path
    store: S3ObjectStore
    hub: ModelHub
    registry: FakeRegistry
    backends: Any
    counted: Any

    def apply(self) -> Any:
        return apply_env(
            ReleaseContext.open(Settings(repo=self.repo), "dev", repo=self.repo, backends=self.backends),
            actor="tester",
        )

    def pointers(self) -> dict[int, tuple[str, str] | None]:
        found = {p: self.hub.get_profile_pointer("dev", p) for p in range(1, 6)}
        return {p: (x.tag, x.sha256) if x else None for p, x in found.items()}


@pytest.fixture
def apply_world(moto_server: str, tmp_path: Path, isolated_environment: Path) -> Iterator[ApplyWorld]:
    store = s3_store(moto_server)
    hub = ModelHub(store, workers=4)
    repo = make_repo(tmp_path, TAG, push_tag(hub, tmp_path))
    store_checksums(store)
    registry = FakeRegistry()
    register_versions(registry, 2)
    counted = local_backends(isolated_environment, "dev", registry, tmp_path / "unused-hub")
    backends = replace(counted.backends, hub=hub)
    yield ApplyWorld(repo, store, hub, registry, backends, counted)


def pin_everywhere(repo: Path, tag: str, sha: str) -> None:
    for path in sorted((repo / "releases" / "dev").glob("profile-*.yaml")):
        with edit_manifest(path) as editor:
            editor.set_artifacts(tag, sha)


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["plain", "checksum"])
def test_apply_refuses_a_newly_pinned_tampered_tag_before_anything_is_written(
    apply_world: ApplyWorld, tmp_path: Path, how: str
) -> None:
    world = apply_world
    log = RequestLog(world.store)
    assert world.apply().outcome == "succeeded"
    assert log.blob_gets() == []  # the first apply verified every blob by its stored checksum
    before = world.pointers()
    assert set(before.values()) == {(TAG, world.hub.tag_sha256(TAG))}

    new_tag = "v20261102"
    new_sha = push_tag(world.hub, tmp_path, new_tag, seed=1)
    store_checksums(world.store)
    blob = tamper(world.store, world.hub, new_tag, how)
    pin_everywhere(world.repo, new_tag, new_sha)
    commit_all(world.repo, f"pin {new_tag}")
    world.counted.reset()
    world.registry.writes.clear()
    log.clear()

    deployments = ReleaseTable(world.backends.releases, "dev").deployments()
    with pytest.raises(ArtifactsRefused) as caught:
        world.apply()
    assert str(caught.value).startswith("apply dev: refused before any write: ")
    assert f"tag {new_tag}: {TAMPERED_PATH}: blob {blob[:12]}" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert world.pointers() == before  # no pointer written
    assert world.registry.writes == []  # no alias, tag or stage moved
    config_table = world.counted.tables[0]
    assert sum(config_table.writes.values()) == 0
    assert all(sum(store.writes.values()) == 0 for store in world.counted.stores)
    releases = world.backends.releases
    # A refusal writes nothing, as a stale commit's or a policy block's: no record, no journal.
    assert ReleaseTable(releases, "dev").deployments() == deployments
    assert ReleaseTable(releases, "dev").journals().keys() == {str(d.deployment_id) for d in deployments}
    assert ReleaseTable(releases, "dev").lease() is None  # the lease it took is released
    assert log.methods()["PUT"] == 0  # nothing written to the hub
    if how == "checksum":
        assert log.blob_gets() == []  # refused on the stored checksum alone

    # The blob is put back as pushed: the same commit now applies.
    original = (tmp_path / f"models-{new_tag}" / TAMPERED_PATH).read_bytes()
    world.store.client.put_object(
        Bucket=world.store.bucket, Key=world.store._key(blob_key(blob)), Body=original,
        ChecksumSHA256=b64_sha256(original), ChecksumAlgorithm="SHA256",
    )
    assert world.apply().outcome == "succeeded"
    assert set(world.pointers().values()) == {(new_tag, new_sha)}


# ---------------------------------------------------------------- r2_hub.py --verify


def _main(args: list[str]) -> int:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import r2_hub
    finally:
        sys.path.remove(str(SCRIPT.parent))
    try:
        return r2_hub.main(args)
    except SystemExit as exit_:  # a project error: one `error:` line, exit 1
        return int(exit_.code or 0)


def test_cli_verify_checks_latest_and_every_profile_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADAI_HUB_URI", f"file://{tmp_path / 'hub'}")
    monkeypatch.setenv("TRADAI_REPO", str(tmp_path))
    assert _main(["--verify"]) == 1
    assert capsys.readouterr().err == (
        f"error: model hub file://{tmp_path / 'hub'}: latest: nothing pushed yet (no latest pointer)\n"
    )

    hub = ModelHub(LocalObjectStore(tmp_path / "hub"))
    old = hub.push(bundle(tmp_path / "old"), tag="v1")
    new = hub.push(bundle(tmp_path / "new"), tag="v2")
    hub.set_profile_pointer("prod", 3, "v1", old.manifest_sha256)
    hub.set_profile_pointer("dev", 1, "v2", new.manifest_sha256)
    assert _main(["--verify"]) == 0
    out = capsys.readouterr().out
    assert "verified tag v1 (prod profile 3)" in out and "verified tag v2 (latest, dev profile 1)" in out
    assert "26 blobs, 0 by the store's SHA-256 checksum, 26 read and hashed" in out

    sha = tamper(hub.store, hub, "v1", "plain")  # type: ignore[arg-type]
    assert _main(["--verify"]) == 1
    captured = capsys.readouterr()
    assert "verified tag v2" in captured.out and "verified tag v1" not in captured.out
    assert captured.err.splitlines() == [
        f"error: tag v1: {TAMPERED_PATH}: blob {sha[:12]} in file://{tmp_path / 'hub'} holds other content "
        f"(3000 bytes hashing to {file_sha(tmp_path / 'hub' / blob_key(sha))[:12]})"
    ]
    assert _main(["--verify", "--revision", "v2"]) == 0
    assert "verified tag v2 in" in capsys.readouterr().out
    assert _main(["--verify", "--revision", "v9"]) == 1
    assert "tag v9: no such tag" in capsys.readouterr().err
    assert _main(["--verify", "--revision", "../x"]) == 1
    assert capsys.readouterr().err.startswith("error: --revision: tag: invalid tag name")
    assert _main(["--verify", "--profile", "3"]) == 2  # a usage error
    assert "--profile does not apply" in capsys.readouterr().err


# ---------------------------------------------------------------- the hub region


def test_hub_region_is_auto_with_an_endpoint_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADAI_HUB_URI", "s3://hub/models")
    monkeypatch.setenv("CF_R2_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("CF_R2_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("TRADAI_AWS_REGION", "eu-west-1")
    assert Settings().hub_aws().region == "eu-west-1"  # plain S3: the AWS region
    monkeypatch.setenv("TRADAI_HUB_ENDPOINT_URL", "https://account.r2.cloudflarestorage.com")
    assert Settings().hub_aws().region == "auto"  # R2's region
    monkeypatch.setenv("TRADAI_HUB_REGION", "us-east-1")
    options = Settings().hub_aws()
    assert (options.region, options.endpoint_url) == ("us-east-1", "https://account.r2.cloudflarestorage.com")


@pytest.mark.e2e
def test_ensure_bucket_names_the_region_behind_an_endpoint(moto_server: str) -> None:
    from tradai_release.stores.aws import client
    from tradai_release.stores.s3 import ensure_bucket

    bucket = f"region-{uuid.uuid4().hex[:8]}"
    aws = AwsOptions(endpoint_url=moto_server, region="eu-west-1")
    assert ensure_bucket(aws, bucket) is True
    assert ensure_bucket(aws, bucket) is False
    location = client(aws, "s3").get_bucket_location(Bucket=bucket)["LocationConstraint"]
    assert location == "eu-west-1"


def _r2(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.e2e
def test_r2_style_settings_provision_push_verify_pull_against_moto_server(
    moto_server: str, tmp_path: Path
) -> None:
    bucket = f"r2-{uuid.uuid4().hex[:8]}"
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        "TRADAI_HUB_URI": f"s3://{bucket}/models-hub",
        "TRADAI_HUB_ENDPOINT_URL": moto_server,
        "CF_R2_ACCESS_KEY_ID": "testing",
        "CF_R2_SECRET_ACCESS_KEY": "testing",
        "TRADAI_HUB_REGION": "us-east-1",
        "TRADAI_REPO": str(repo),
    }
    provisioned = invoke(repo, "provision", "--env", "dev", "--json", env=env)
    assert provisioned.returncode == 0, provisioned.stderr
    assert json.loads(provisioned.stdout)["created"] == [f"s3://{bucket}"]

    models = bundle(repo / "models")
    pushed = _r2(["--push", "--tag", "v1"], env, repo)
    assert pushed.returncode == 0, pushed.stderr
    verified = _r2(["--verify"], env, repo)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"verified tag v1 (latest) in s3://{bucket}/models-hub: 26 blobs")

    dest = tmp_path / "bot" / "models"
    pulled = _r2(["--pull", "--models-dir", str(dest)], env, repo)
    assert pulled.returncode == 0, pulled.stderr
    assert sorted(p.relative_to(dest) for p in dest.rglob("*") if p.is_file()) == sorted(
        p.relative_to(models) for p in models.rglob("*") if p.is_file()
    )

    store = S3ObjectStore(bucket, prefix="models-hub", aws=AwsOptions(endpoint_url=moto_server))
    sha = tamper(store, ModelHub(store), "v1", "checksum")
    refused = _r2(["--verify", "--revision", "v1"], env, repo)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith(f"error: tag v1: {TAMPERED_PATH}: blob {sha[:12]} in s3://{bucket}")
    assert refused.stderr.count("\n") == 1
