"""Model hub: content-addressed push/pull, immutable tags, pointers, and every refused bad input."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_helpers import CountingStore, MemoryStore, make_models_dir, snapshot
from tradai_release.core.confighash import canonical_json
from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import (
    HubError,
    HubIntegrityError,
    InputError,
    MissingCredentials,
    ModelCompatError,
    TagExists,
    TagNotFound,
)
from tradai_release.domain.bundles import ensure_models_present
from tradai_release.hub import ModelHub, local_differences
from tradai_release.hub.names import check_relpath, check_tag
from tradai_release.stores import ObjectStore
from tradai_release.stores.aws import client
from tradai_release.stores.local import LocalObjectStore
from tradai_release.stores.s3 import S3ObjectStore

CREATED = "2026-04-15T10:00:00Z"


def _local_store(tmp_path: Path) -> Iterator[ObjectStore]:
    yield LocalObjectStore(tmp_path / "hubstore")


def _s3_store(tmp_path: Path) -> Iterator[ObjectStore]:
    from moto import mock_aws

    with mock_aws():
        bucket = f"hub-{uuid.uuid4().hex[:8]}"
        client(AwsOptions(region="us-east-1"), "s3").create_bucket(Bucket=bucket)
        yield S3ObjectStore(bucket, prefix="models-hub", aws=AwsOptions(region="us-east-1"))


@pytest.fixture(params=["memory", "local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CountingStore]:
    if request.param == "memory":
        yield CountingStore(MemoryStore())
    elif request.param == "local":
        for inner in _local_store(tmp_path):
            yield CountingStore(inner)
    else:
        for inner in _s3_store(tmp_path):
            yield CountingStore(inner)


@pytest.fixture
def hub(store: CountingStore) -> ModelHub:
    return ModelHub(store)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_models_dir(tmp_path / "src" / "models", ("AlphaStrategy", "BetaStrategy"))


def test_push_pull_round_trip(hub: ModelHub, store: CountingStore, bundle: Path, tmp_path: Path) -> None:
    result = hub.push(bundle, message="phase 15", git_commit="a" * 40, created_at=CREATED)
    assert result.tag == "v20260415"
    assert result.uploaded_files == 26 and result.skipped_files == 0
    assert result.manifest_sha256 == hashlib.sha256(store.get("tags/v20260415.json")).hexdigest()

    manifest = hub.read_tag("v20260415", expected_sha256=result.manifest_sha256)
    assert manifest.message == "phase 15" and manifest.git_commit == "a" * 40
    assert manifest.metadata["AlphaStrategy"]["signal"] == {
        "accuracy": 0.61,
        "metrics": {"sharpe_ratio": 1.2, "total_trades": 40},
    }
    assert manifest.metadata["AlphaStrategy"]["feature_count"] == 4
    assert hub.get_latest() is not None and hub.get_latest().tag == "v20260415"  # type: ignore[union-attr]

    dest = tmp_path / "bot" / "models"
    pulled = hub.pull(dest)
    assert pulled.tag == "v20260415" and pulled.downloaded_files == 26 and pulled.reused_files == 0
    assert snapshot(dest) == snapshot(bundle)
    assert [p.name for p in dest.parent.iterdir()] == ["models"]  # no staging or backup dirs left


def test_manifest_is_deterministic(hub: ModelHub, store: CountingStore, bundle: Path) -> None:
    first = hub.push(bundle, tag="one", created_at=CREATED, git_commit="c" * 40)
    other = ModelHub(CountingStore(MemoryStore()))
    again = other.push(bundle, tag="one", created_at=CREATED, git_commit="c" * 40)
    assert first.manifest_sha256 == again.manifest_sha256
    assert store.get("tags/one.json") == canonical_json(json.loads(store.get("tags/one.json")))


def test_second_push_of_same_bundle_uploads_nothing(
    hub: ModelHub, store: CountingStore, bundle: Path
) -> None:
    hub.push(bundle, created_at=CREATED)
    store.calls.clear()
    store.written.clear()
    again = hub.push(bundle, created_at=CREATED)
    assert again.uploaded_bytes == 0 and again.uploaded_files == 0 and again.skipped_files == 26
    assert store.calls["put_file"] == 0
    assert not [key for key in store.written if key.startswith("blobs/")]
    assert again.tag == "v20260415-2"


def test_changed_file_uploads_only_that_blob(hub: ModelHub, store: CountingStore, bundle: Path) -> None:
    hub.push(bundle, created_at=CREATED)
    (bundle / "AlphaStrategy" / "signal" / "ensemble_rf.onnx").write_bytes(b"new model")
    store.calls.clear()
    result = hub.push(bundle, created_at=CREATED)
    assert result.uploaded_files == 1 and result.uploaded_bytes == len(b"new model")
    assert store.calls["put_file"] == 1


def test_identical_files_are_stored_once(hub: ModelHub, store: CountingStore, tmp_path: Path) -> None:
    models = make_models_dir(tmp_path / "m", ("AlphaStrategy",))
    (models / "Copy").mkdir()
    for name in ("a.bin", "b.bin"):
        (models / "Copy" / name).write_bytes(b"same bytes")
    result = hub.push(models, created_at=CREATED)
    assert result.uploaded_files == 14 and result.skipped_files == 1
    pulled = hub.pull(tmp_path / "out")
    assert (tmp_path / "out" / "Copy" / "b.bin").read_bytes() == b"same bytes"
    assert pulled.downloaded_files == 15


def test_auto_tag_suffixes_when_taken(hub: ModelHub, bundle: Path) -> None:
    tags = [hub.push(bundle, created_at=CREATED).tag for _ in range(3)]
    assert tags == ["v20260415", "v20260415-2", "v20260415-3"]
    assert [info.tag for info in hub.list_tags()] == tags
    assert [info.latest for info in hub.list_tags()] == [False, False, True]


def test_explicit_existing_tag_is_refused(hub: ModelHub, store: CountingStore, bundle: Path) -> None:
    hub.push(bundle, tag="v20260415-p3", created_at=CREATED)
    before = store.get("tags/v20260415-p3.json")
    with pytest.raises(TagExists, match="v20260415-p3: already exists"):
        hub.push(bundle, tag="v20260415-p3", message="again")
    assert store.get("tags/v20260415-p3.json") == before


def test_tag_only_reuses_files_without_upload(hub: ModelHub, store: CountingStore, bundle: Path) -> None:
    pushed = hub.push(bundle, created_at=CREATED, git_commit="b" * 40)
    store.calls.clear()
    sha = hub.tag_only("v15-production", message="Phase 15 validated")
    assert store.calls["put_file"] == 0
    manifest = hub.read_tag("v15-production", expected_sha256=sha)
    origin = hub.read_tag(pushed.tag)
    assert manifest.files == origin.files and manifest.source_tag == pushed.tag
    assert manifest.message == "Phase 15 validated" and manifest.git_commit == "b" * 40
    assert hub.get_latest().tag == pushed.tag  # type: ignore[union-attr]
    hub.tag_only("copy-of-p15", source="v15-production")
    assert hub.read_tag("copy-of-p15").source_tag == "v15-production"
    with pytest.raises(TagExists):
        hub.tag_only("v15-production", message="again")
    with pytest.raises(TagNotFound):
        hub.tag_only("x", source="nope")


def test_tag_only_without_any_push(hub: ModelHub) -> None:
    with pytest.raises(TagNotFound, match="nothing pushed yet"):
        hub.tag_only("x")


def test_profile_pointers(hub: ModelHub, bundle: Path, tmp_path: Path) -> None:
    first = hub.push(bundle, tag="v20260415-p3", created_at=CREATED)
    (bundle / "AlphaStrategy" / "signal" / "ensemble_rf.pkl").write_bytes(b"retrained")
    hub.push(bundle, created_at=CREATED)
    assert hub.get_profile_pointer("prod", 3) is None
    hub.set_profile_pointer("prod", 3, first.tag, first.manifest_sha256, deployment_id="dep-1")
    pointer = hub.get_profile_pointer("prod", 3)
    assert pointer is not None and (pointer.tag, pointer.deployment_id) == ("v20260415-p3", "dep-1")
    pulled = hub.pull(tmp_path / "bot", env="prod", profile=3)
    assert pulled.tag == "v20260415-p3"
    assert (tmp_path / "bot" / "AlphaStrategy" / "signal" / "ensemble_rf.pkl").read_bytes() != b"retrained"
    with pytest.raises(TagNotFound, match="prod profile 2"):
        hub.pull(tmp_path / "bot", env="prod", profile=2)
    with pytest.raises(HubIntegrityError):
        hub.set_profile_pointer("prod", 1, first.tag, "0" * 64)
    with pytest.raises(InputError, match="unknown environment"):
        hub.get_profile_pointer("../qa", 1)
    with pytest.raises(InputError, match="unknown profile"):
        hub.get_profile_pointer("prod", 0)


def test_pull_skips_files_already_present(
    hub: ModelHub, store: CountingStore, bundle: Path, tmp_path: Path
) -> None:
    hub.push(bundle, created_at=CREATED)
    dest = tmp_path / "bot" / "models"
    hub.pull(dest)
    (dest / "AlphaStrategy" / "position" / "position_rf.pkl").write_bytes(b"local edit")
    (dest / "stray.txt").write_text("not in the tag")
    store.calls.clear()
    result = hub.pull(dest)
    assert result.downloaded_files == 1 and result.reused_files == 25
    assert store.calls["get_stream"] == 1
    assert snapshot(dest) == snapshot(bundle)


def _identity(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root`` with its inode, mtime and bytes (to prove a directory was not rewritten)."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_partial_pull_replaces_one_strategy_by_content(
    hub: ModelHub, store: CountingStore, bundle: Path, tmp_path: Path
) -> None:
    hub.push(bundle, tag="t1", created_at=CREATED)
    dest = tmp_path / "bot" / "models"
    hub.pull(dest, tag="t1")
    changed = bundle / "BetaStrategy" / "signal" / "ensemble_rf.onnx"
    changed.write_bytes(b"retrained" * 100)
    t2 = hub.push(bundle, tag="t2", created_at=CREATED)
    alpha = _identity(dest / "AlphaStrategy")
    stale = dest / "BetaStrategy" / "position" / "position_rf.pkl"
    stale.write_bytes(b"x" * stale.stat().st_size)  # same size, other content: found by hash
    (dest / "BetaStrategy" / "leftover.pkl").write_bytes(b"not in the tag")
    manifest = hub.read_tag("t2")
    assert local_differences(dest, manifest.files, ["BetaStrategy"]) == [
        "BetaStrategy/leftover.pkl",
        "BetaStrategy/position/position_rf.pkl",
        "BetaStrategy/signal/ensemble_rf.onnx",
    ]
    assert local_differences(dest, manifest.files, ["AlphaStrategy"]) == []
    store.calls.clear()

    result = hub.pull(dest, tag="t2", expected_sha256=t2.manifest_sha256, strategies=["BetaStrategy"])
    assert (result.downloaded_files, result.reused_files) == (2, 11)
    assert result.downloaded_bytes == 900 + 2048 and result.strategies == ("BetaStrategy",)
    assert store.calls["get_stream"] == 2
    assert snapshot(dest / "BetaStrategy") == snapshot(bundle / "BetaStrategy")
    assert _identity(dest / "AlphaStrategy") == alpha
    assert sorted(p.name for p in dest.iterdir()) == ["AlphaStrategy", "BetaStrategy"]
    assert local_differences(dest, manifest.files, ["AlphaStrategy", "BetaStrategy"]) == []


def test_partial_pull_failure_leaves_the_strategy_as_it_was(
    hub: ModelHub, store: CountingStore, bundle: Path, tmp_path: Path
) -> None:
    hub.push(bundle, tag="old", created_at=CREATED)
    dest = tmp_path / "models"
    hub.pull(dest, tag="old")
    before = _identity(dest)
    newer = make_models_dir(tmp_path / "new", ("AlphaStrategy", "BetaStrategy"))
    hub.push(newer, tag="new", created_at=CREATED)
    _corrupt_one_blob(store, hub, "new", b"tampered")
    with pytest.raises(HubIntegrityError, match=r"BetaStrategy/signal/ensemble_rf\.pkl"):
        hub.pull(dest, tag="new", strategies=["BetaStrategy"])
    features = {"AlphaStrategy": ["rsi_14"], "BetaStrategy": ["rsi_14"]}
    with pytest.raises(ModelCompatError, match="feature_count 4 != 1"):
        hub.pull(dest, tag="new", strategies=["AlphaStrategy"], features=features)
    with pytest.raises(HubError, match="holds no files for GammaStrategy"):
        hub.pull(dest, tag="new", strategies=["GammaStrategy"])
    with pytest.raises(InputError, match="not a single directory name"):
        hub.pull(dest, tag="new", strategies=["Alpha/x"])
    assert _identity(dest) == before
    assert sorted(p.name for p in dest.iterdir()) == ["AlphaStrategy", "BetaStrategy"]


def _corrupt_one_blob(store: CountingStore, hub: ModelHub, tag: str, data: bytes | None) -> None:
    manifest = hub.read_tag(tag)
    entry = manifest.files["BetaStrategy/signal/ensemble_rf.pkl"]
    key = f"blobs/sha256/{entry.sha256}"
    store.put(key, data if data is not None else store.get(key)[:-10])


@pytest.mark.parametrize("damage", [b"os.system('rm -rf ~')", None], ids=["tampered", "truncated"])
def test_damaged_blob_aborts_pull_and_keeps_previous_models(
    hub: ModelHub, store: CountingStore, bundle: Path, tmp_path: Path, damage: bytes | None
) -> None:
    old = hub.push(bundle, tag="old", created_at=CREATED)
    dest = tmp_path / "bot" / "models"
    hub.pull(dest, tag=old.tag)
    before = snapshot(dest)
    other = make_models_dir(tmp_path / "new", ("AlphaStrategy", "BetaStrategy"))
    hub.push(other, tag="new", created_at=CREATED)
    _corrupt_one_blob(store, hub, "new", damage)
    with pytest.raises(HubIntegrityError, match=r"BetaStrategy/signal/ensemble_rf\.pkl") as err:
        hub.pull(dest, tag="new")
    assert "\n" not in str(err.value)
    assert snapshot(dest) == before
    assert [p.name for p in dest.parent.iterdir()] == ["models"]
    problems = hub.verify_tag("new", hub.tag_sha256("new"))
    assert len(problems) == (0 if damage is not None and len(damage) == 2048 else 1)


def test_manifest_hash_mismatch_is_refused(
    hub: ModelHub, store: CountingStore, bundle: Path, tmp_path: Path
) -> None:
    pushed = hub.push(bundle, tag="t1", created_at=CREATED)
    dest = tmp_path / "models"
    with pytest.raises(HubIntegrityError, match="manifest sha256 is"):
        hub.pull(dest, tag="t1", expected_sha256="f" * 64)
    assert not dest.exists()
    # Someone rewrites the stored manifest behind the hub's back: the pinned hash catches it.
    raw = json.loads(store.get("tags/t1.json"))
    raw["message"] = "edited"
    store.put("tags/t1.json", canonical_json(raw))
    with pytest.raises(HubIntegrityError):
        hub.read_tag("t1", expected_sha256=pushed.manifest_sha256)
    assert hub.verify_tag("t1", pushed.manifest_sha256)[0].endswith(f"expected {pushed.manifest_sha256}")
    # ...and so does the latest pointer, which recorded the hash at push time.
    with pytest.raises(HubIntegrityError):
        hub.pull(dest)


def test_read_file_returns_only_the_content_the_manifest_records(
    hub: ModelHub, store: CountingStore, bundle: Path
) -> None:
    hub.push(bundle, tag="t1", created_at=CREATED)
    manifest = hub.read_tag("t1")
    path = "AlphaStrategy/model_compat.json"
    assert hub.read_file(manifest, path) == (bundle / path).read_bytes()
    with pytest.raises(HubError, match="no such file in the tag"):
        hub.read_file(manifest, "AlphaStrategy/nope.json")
    key = f"blobs/sha256/{manifest.files[path].sha256}"
    store.put(key, (bundle / path).read_bytes()[::-1])  # same size, other content
    with pytest.raises(HubIntegrityError, match="blob content hashes to"):
        hub.read_file(manifest, path)
    store.delete(key)
    with pytest.raises(HubIntegrityError, match="missing"):
        hub.read_file(manifest, path)


def test_verify_tag_reports_missing_blob(hub: ModelHub, store: CountingStore, bundle: Path) -> None:
    pushed = hub.push(bundle, tag="t1", created_at=CREATED)
    assert hub.verify_tag("t1", pushed.manifest_sha256) == []
    sha = hub.read_tag("t1").files["AlphaStrategy/model_compat.json"].sha256
    store.delete(f"blobs/sha256/{sha}")
    assert hub.verify_tag("t1", pushed.manifest_sha256) == [
        f"tag t1: AlphaStrategy/model_compat.json: blob {sha[:12]} missing from {store.name}"
    ]
    assert "no such tag" in hub.verify_tag("nope", None)[0]


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "v1..2", "-x", "", "a" * 129, "tag\n", "x y"])
def test_bad_tag_names_are_refused(hub: ModelHub, bundle: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="invalid tag name"):
        hub.push(bundle, tag=name)
    with pytest.raises(InputError, match="invalid tag name"):
        hub.pull(tmp_path / "m", tag=name)
    with pytest.raises(InputError, match="invalid tag name"):
        hub.tag_only(name)


@pytest.mark.parametrize(
    "path",
    [
        "../outside.pkl",
        "a/../../b",
        "/etc/passwd",
        "a\\b",
        "a//b",
        "./a",
        "a/\x00b",
        "C:/x",
        "",
        "AlphaStrategy/model_compat.json/x",
    ],
)
def test_manifest_with_bad_path_is_refused(
    hub: ModelHub, store: CountingStore, bundle: Path, tmp_path: Path, path: str
) -> None:
    pushed = hub.push(bundle, tag="good", created_at=CREATED)
    raw = json.loads(store.get("tags/good.json"))
    entry = next(iter(raw["files"].values()))
    raw["files"][path] = entry
    raw["tag"] = "evil"
    data = canonical_json(raw)
    store.put("tags/evil.json", data)
    dest = tmp_path / "bot" / "models"
    hub.pull(dest, tag="good", expected_sha256=pushed.manifest_sha256)
    before = snapshot(dest)
    with pytest.raises(InputError, match="files"):
        hub.pull(dest, tag="evil", expected_sha256=hashlib.sha256(data).hexdigest())
    assert snapshot(dest) == before
    assert not (tmp_path / "outside.pkl").exists()


def test_name_checks_directly() -> None:
    assert check_tag("v20260415-p3") == "v20260415-p3"
    assert check_relpath("Alpha/signal/ensemble_rf.pkl", where="m") == "Alpha/signal/ensemble_rf.pkl"
    with pytest.raises(InputError, match=r"^m: files: '\.\./x': "):
        check_relpath("../x", where="m")


def test_manifest_naming_another_tag_is_refused(hub: ModelHub, store: CountingStore, bundle: Path) -> None:
    hub.push(bundle, tag="a1", created_at=CREATED)
    store.put("tags/b1.json", store.get("tags/a1.json"))
    with pytest.raises(HubIntegrityError, match="names tag 'a1'"):
        hub.read_tag("b1")


def test_compat_mismatch_keeps_previous_models(hub: ModelHub, bundle: Path, tmp_path: Path) -> None:
    hub.push(bundle, tag="t1", created_at=CREATED)
    dest = tmp_path / "models"
    features = {"AlphaStrategy": ["rsi_14", "macd", "atr_14", "volume_z"]}
    hub.pull(dest, tag="t1", features=features)
    before = snapshot(dest)
    narrow = make_models_dir(tmp_path / "narrow", ("AlphaStrategy",), features=("rsi_14", "macd"))
    hub.push(narrow, tag="t2", created_at=CREATED)
    with pytest.raises(ModelCompatError, match="feature_count 2 != 4 features"):
        hub.pull(dest, tag="t2", features=features)
    assert snapshot(dest) == before
    renamed = make_models_dir(
        tmp_path / "renamed", ("AlphaStrategy",), features=("rsi_14", "macd", "atr_7", "vz")
    )
    hub.push(renamed, tag="t3", created_at=CREATED)
    with pytest.raises(ModelCompatError, match="feature 2 is 'atr_7'"):
        hub.pull(dest, tag="t3", features=features)
    with pytest.raises(ModelCompatError, match=r"GammaStrategy: no model_compat\.json"):
        hub.pull(dest, tag="t1", features={**features, "GammaStrategy": ["a"]})
    assert snapshot(dest) == before


def test_missing_tag_and_missing_latest(hub: ModelHub, tmp_path: Path) -> None:
    with pytest.raises(TagNotFound, match="nothing pushed yet"):
        hub.pull(tmp_path / "m")
    with pytest.raises(TagNotFound, match="tag v1: no such tag"):
        hub.pull(tmp_path / "m", tag="v1")
    assert hub.list_tags() == []


def test_push_refuses_empty_dir_and_symlinks(hub: ModelHub, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no model files"):
        hub.push(tmp_path / "empty")
    with pytest.raises(InputError, match="not a directory"):
        hub.push(tmp_path / "absent")
    models = make_models_dir(tmp_path / "m")
    (models / "link.pkl").symlink_to(tmp_path / "secret")
    with pytest.raises(InputError, match="symbolic links"):
        hub.push(models)


def test_ensure_models_present_pulls_only_when_missing(hub: ModelHub, bundle: Path, tmp_path: Path) -> None:
    pushed = hub.push(bundle, tag="v20260415-p2", created_at=CREATED)
    hub.push(make_models_dir(tmp_path / "newer", ("AlphaStrategy", "BetaStrategy")), created_at=CREATED)
    hub.set_profile_pointer("staging", 2, pushed.tag, pushed.manifest_sha256)
    dest = tmp_path / "bot" / "models"
    features = {
        "AlphaStrategy": list(
            json.loads((bundle / "AlphaStrategy" / "model_compat.json").read_text())["features"]
        )
    }
    result = ensure_models_present(dest, hub, env="staging", profile=2, features=features)
    assert result is not None and result.tag == "v20260415-p2"
    assert snapshot(dest) == snapshot(bundle)
    assert ensure_models_present(dest, hub, env="staging", profile=2, features=features) is None
    latest = tmp_path / "bot2"
    assert ensure_models_present(latest, hub) is not None
    assert ensure_models_present(latest, hub) is None


def test_progress_reports_every_byte(hub: ModelHub, bundle: Path, tmp_path: Path) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.total = 0
            self.done = 0

        def start(self, description: str, total_bytes: int) -> None:
            self.total += total_bytes

        def advance(self, nbytes: int) -> None:
            self.done += nbytes

    up, down = Recorder(), Recorder()
    pushed = hub.push(bundle, created_at=CREATED, progress=up)
    assert up.total == up.done == pushed.uploaded_bytes > 0
    pulled = hub.pull(tmp_path / "m", progress=down)
    assert down.total == down.done == pulled.downloaded_bytes == pushed.uploaded_bytes


def test_from_settings_needs_r2_credentials_for_s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tradai_release.core.settings import Settings

    monkeypatch.setenv("TRADAI_HUB_URI", "s3://novosky-models")
    with pytest.raises(MissingCredentials, match="CF_R2_ACCESS_KEY_ID"):
        ModelHub.from_settings(Settings())
    monkeypatch.setenv("TRADAI_HUB_URI", f"file://{tmp_path}/hub")
    assert str(tmp_path) in ModelHub.from_settings(Settings()).store.name
