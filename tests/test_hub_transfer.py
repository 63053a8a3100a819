"""Hub transfer at scale: listing-based existence, stored SHA-256 checksums, ranged verified pulls."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub_helpers import CountingStore, MemoryStore, make_models_dir, snapshot
from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import BackendError, HubIntegrityError, ObjectNotFound
from tradai_release.hub import ModelHub, upload
from tradai_release.hub.names import blob_key
from tradai_release.stores import ObjectStore
from tradai_release.stores.aws import client as make_client
from tradai_release.stores.local import LocalObjectStore
from tradai_release.stores.s3 import S3ObjectStore

PART = 64 * 1024  # small parts, so a test blob of a few hundred KB is pulled as several ranges


def _s3(part_size: int, endpoint: str | None = None) -> S3ObjectStore:
    aws = AwsOptions(
        endpoint_url=endpoint, region="us-east-1", access_key_id="testing", secret_access_key="testing"
    )
    bucket = f"hub-{uuid.uuid4().hex[:8]}"
    make_client(aws, "s3").create_bucket(Bucket=bucket)
    return S3ObjectStore(bucket, prefix="hub", aws=aws, part_size=part_size, multipart_threshold=part_size)


@pytest.fixture(params=["local", "s3"])
def ranged_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """A store whose part size makes every blob above 64 KB a ranged, parallel pull."""
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "hubstore", part_size=PART)
        return
    from moto import mock_aws

    with mock_aws():
        yield _s3(PART)


def _large_bundle(root: Path) -> Path:
    """Two strategies with files of 0..5 parts (an odd size, so the last part is short)."""
    make_models_dir(root, ("AlphaStrategy", "BetaStrategy"), size=1024)
    (root / "AlphaStrategy" / "signal" / "big.onnx").write_bytes(os.urandom(5 * PART - 17))
    (root / "BetaStrategy" / "position" / "exact.onnx").write_bytes(os.urandom(2 * PART))
    (root / "BetaStrategy" / "empty.txt").write_bytes(b"")
    return root


def _overwrite_blob(store: ObjectStore, sha256: str, data: bytes) -> None:
    """Replace a stored blob behind the hub's back (a hand upload: no checksum)."""
    if isinstance(store, S3ObjectStore):
        store.client.put_object(Bucket=store.bucket, Key=store._key(blob_key(sha256)), Body=data)
    else:
        store.put(blob_key(sha256), data)


# ---------------------------------------------------------------- push: requests, checksums


def _request_log(store: S3ObjectStore) -> Counter[str]:
    sent: Counter[str] = Counter()

    def count(request: Any, **_: Any) -> None:
        sent[request.method] += 1

    store.client.meta.events.register("before-send.s3", count)
    return sent


def _many_files(root: Path, count: int) -> Path:
    for index in range(count):
        path = root / f"Strategy{index % 3}" / f"file_{index:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"content {index} ".encode() * 8)
    return root


@pytest.mark.e2e
def test_unchanged_repush_requests_do_not_grow_with_files(moto_server: str, tmp_path: Path) -> None:
    counts = {}
    for files in (60, 600):
        store = _s3(8 * 1024 * 1024, moto_server)
        hub = ModelHub(store)
        bundle = _many_files(tmp_path / f"bundle{files}", files)
        first = hub.push(bundle, tag="first")
        assert first.uploaded_files == files
        sent = _request_log(store)
        again = hub.push(bundle, tag="again")
        assert again.uploaded_files == 0 and again.skipped_files == files
        counts[files] = sent
    # 60 and 600 files: the same requests (a blob listing, the tag's existence, its conditional
    # create, and moving latest), no HEAD or PUT per file.
    assert counts[60] == counts[600]
    assert sum(counts[600].values()) <= 6
    assert counts[600]["PUT"] == 2  # the tag and the latest pointer


def test_push_stores_each_blob_with_its_sha256_checksum(tmp_path: Path) -> None:
    from moto import mock_aws

    with mock_aws():
        store = _s3(8 * 1024 * 1024)
        bundle = make_models_dir(tmp_path / "models")
        manifest = ModelHub(store).read_tag(ModelHub(store).push(bundle, tag="t1").tag)
        for entry in manifest.files.values():
            head = store.client.head_object(
                Bucket=store.bucket, Key=store._key(blob_key(entry.sha256)), ChecksumMode="ENABLED"
            )
            assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(entry.sha256)).decode()


def test_s3_put_file_above_the_single_put_limit_goes_multipart_without_the_checksum(tmp_path: Path) -> None:
    from moto import mock_aws

    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(6 * 1024 * 1024))
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    with mock_aws():
        store = _s3(5 * 1024 * 1024)
        store.single_put_limit = 1024 * 1024
        store.put_file("blobs/big", source, sha256=sha)
        head = store.client.head_object(
            Bucket=store.bucket, Key=store._key("blobs/big"), ChecksumMode="ENABLED"
        )
        assert "ChecksumSHA256" not in head  # a composite checksum would not be the file's digest
        assert head["ETag"].strip('"').endswith("-2")  # two parts
        assert store.get("blobs/big") == source.read_bytes()


def test_local_put_file_refuses_bytes_that_do_not_match_their_sha256(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    source = tmp_path / "model.onnx"
    source.write_bytes(b"model bytes")
    with pytest.raises(BackendError, match="refused"):
        store.put_file("blobs/x", source, sha256=hashlib.sha256(b"other bytes").hexdigest())
    assert list(store.list()) == [] and store.head("blobs/x") is None
    assert not any((tmp_path / "store" / ".staging").iterdir())
    store.put_file("blobs/x", source, sha256=hashlib.sha256(b"model bytes").hexdigest())
    assert store.get("blobs/x") == b"model bytes"


def test_a_listed_blob_of_the_wrong_size_is_uploaded_again(tmp_path: Path) -> None:
    store = CountingStore(MemoryStore())
    hub = ModelHub(store)
    bundle = make_models_dir(tmp_path / "models")
    manifest = hub.read_tag(hub.push(bundle, tag="t1").tag)
    entry = manifest.files["AlphaStrategy/signal/ensemble_rf.onnx"]
    store.inner.put(blob_key(entry.sha256), b"truncated")
    heads = store.calls["head"]
    again = hub.push(bundle, tag="t2")
    assert (
        again.uploaded_files == 1
        and store.get(blob_key(entry.sha256))
        == (bundle / "AlphaStrategy/signal/ensemble_rf.onnx").read_bytes()
    )
    assert store.calls["head"] - heads == 1  # only the tag-exists check: existence came from the listing


def test_a_huge_hub_is_listed_only_as_far_as_heads_would_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One "listing request" per key: a 2-file push lists at most 2 keys, then heads what is left.
    monkeypatch.setattr(upload, "KEYS_PER_LISTING", 1)
    store = CountingStore(MemoryStore())
    for index in range(50):
        store.inner.put(blob_key(hashlib.sha256(str(index).encode()).hexdigest()), b"other")
    bundle = tmp_path / "models" / "S"
    bundle.mkdir(parents=True)
    (bundle / "a.bin").write_bytes(b"a" * 10)
    (bundle / "b.bin").write_bytes(b"b" * 10)
    hub = ModelHub(store)
    first = hub.push(bundle.parent, tag="t1")
    assert first.uploaded_files == 2
    heads = store.calls["head"]
    again = hub.push(bundle.parent, tag="t2")
    assert again.uploaded_files == 0
    assert 1 <= store.calls["head"] - heads <= 3  # the tag check, plus a head per file past the listed keys


def test_identical_files_upload_once(tmp_path: Path) -> None:
    store = CountingStore(MemoryStore())
    bundle = tmp_path / "models"
    for name in ("A", "B", "C"):
        (bundle / name).mkdir(parents=True)
        (bundle / name / "same.bin").write_bytes(b"shared content")
    pushed = ModelHub(store, workers=3).push(bundle, tag="t1")
    assert pushed.uploaded_files == 1 and pushed.skipped_files == 2 and store.calls["put_file"] == 1


# ---------------------------------------------------------------- pull: ranged, verified


def test_a_multi_part_blob_pulls_as_parallel_ranges_with_exact_bytes(
    ranged_store: ObjectStore, tmp_path: Path
) -> None:
    store = CountingStore(ranged_store)
    bundle = _large_bundle(tmp_path / "models")
    hub = ModelHub(store, workers=4)
    hub.push(bundle, tag="t1")
    dest = tmp_path / "pulled" / "models"
    pulled = hub.pull(dest, tag="t1")
    assert snapshot(dest) == snapshot(bundle)
    assert store.calls["get_range"] == 5 + 2  # big.onnx in 5 parts, exact.onnx in 2
    assert pulled.downloaded_files == len(snapshot(bundle))


@pytest.mark.parametrize("blob", ["AlphaStrategy/signal/big.onnx", "AlphaStrategy/signal/ensemble_rf.pkl"])
def test_a_same_size_tampered_blob_is_refused_and_dest_is_unchanged(
    ranged_store: ObjectStore, tmp_path: Path, blob: str
) -> None:
    """One byte changed in a stored blob (ranged parts for big.onnx, one GET for the small file)."""
    bundle = _large_bundle(tmp_path / "models")
    hub = ModelHub(ranged_store)
    manifest = hub.read_tag(hub.push(bundle, tag="t1").tag)
    dest = tmp_path / "dest" / "models"
    make_models_dir(dest, ("OldStrategy",))
    before = snapshot(dest)
    entry = manifest.files[blob]
    data = bytearray((bundle / blob).read_bytes())
    data[len(data) // 2 + 1] ^= 0x01
    _overwrite_blob(ranged_store, entry.sha256, bytes(data))
    with pytest.raises(HubIntegrityError, match="hashes to"):
        hub.pull(dest, tag="t1")
    assert snapshot(dest) == before
    assert sorted(p.name for p in dest.parent.iterdir()) == ["models"]  # no staging left behind


@pytest.mark.parametrize("size", [3 * PART + 5, 5 * PART + 100, PART // 2])
def test_a_blob_of_another_size_is_refused_when_pulled_in_ranges(
    ranged_store: ObjectStore, tmp_path: Path, size: int
) -> None:
    bundle = _large_bundle(tmp_path / "models")
    hub = ModelHub(ranged_store)
    entry = hub.read_tag(hub.push(bundle, tag="t1").tag).files["AlphaStrategy/signal/big.onnx"]
    _overwrite_blob(ranged_store, entry.sha256, os.urandom(size))
    dest = tmp_path / "dest" / "models"
    with pytest.raises(HubIntegrityError, match=f"is {size} bytes, manifest says {entry.size}"):
        hub.pull(dest, tag="t1")
    assert not dest.exists()


def test_a_missing_blob_fails_a_ranged_pull(ranged_store: ObjectStore, tmp_path: Path) -> None:
    bundle = _large_bundle(tmp_path / "models")
    hub = ModelHub(ranged_store)
    entry = hub.read_tag(hub.push(bundle, tag="t1").tag).files["AlphaStrategy/signal/big.onnx"]
    ranged_store.delete(blob_key(entry.sha256))
    with pytest.raises(ObjectNotFound):
        hub.pull(tmp_path / "dest", tag="t1")
    assert not (tmp_path / "dest").exists()


def test_get_range_reads_parts_and_reports_the_size(ranged_store: ObjectStore) -> None:
    data = os.urandom(1000)
    ranged_store.put("blobs/x", data)
    for start, length in ((0, 10), (990, 10), (500, 500), (995, 20)):
        sink = io.BytesIO()
        assert ranged_store.get_range("blobs/x", start, length, sink) == 1000
        assert sink.getvalue() == data[start : start + length]
    past = io.BytesIO()
    assert ranged_store.get_range("blobs/x", 2000, 10, past) == 1000 and past.getvalue() == b""
    with pytest.raises(ObjectNotFound):
        ranged_store.get_range("blobs/none", 0, 10, io.BytesIO())
    with pytest.raises(ValueError):
        ranged_store.get_range("blobs/x", 0, 0, io.BytesIO())


def test_local_listing_walks_only_below_the_prefix(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    for key in ("blobs/sha256/aa", "blobs/sha256/bb", "blobs/other", "tags/v1.json", "blobsx"):
        store.put(key, b"1")
    assert [info.key for info in store.list("blobs/sha256/")] == ["blobs/sha256/aa", "blobs/sha256/bb"]
    assert [info.key for info in store.list("blobs/")] == [
        "blobs/other",
        "blobs/sha256/aa",
        "blobs/sha256/bb",
    ]
    assert [info.key for info in store.list("blobs")] == [
        "blobs/other",
        "blobs/sha256/aa",
        "blobs/sha256/bb",
        "blobsx",
    ]
    assert list(store.list("nothing/here/")) == [] and list(store.list(".staging/")) == []
