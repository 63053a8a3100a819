"""ModelHub.splice: a profile's tag with one strategy's files swapped in from another tag, no upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_helpers import CountingStore, MemoryStore, make_models_dir
from tradai_release.core.errors import HubError, HubIntegrityError, TagExists
from tradai_release.hub import ModelHub
from tradai_release.repository.manifest import ReleaseManifest

CREATED = "2026-11-01T00:00:00Z"


@pytest.fixture
def hub_and_store(tmp_path: Path) -> tuple[ModelHub, CountingStore]:
    store = CountingStore(MemoryStore())
    hub = ModelHub(store)
    live = make_models_dir(tmp_path / "live", ("AlphaStrategy", "BetaStrategy"))
    hub.push(live, tag="v1", created_at=CREATED)
    challenger = make_models_dir(tmp_path / "challenger", ("AlphaStrategy", "BetaStrategy"), accuracy=0.7)
    hub.push(challenger, tag="v2", created_at=CREATED)
    return hub, store


def _files_of(hub: ModelHub, tag: str, strategy: str) -> dict[str, object]:
    return {rel: e for rel, e in hub.read_tag(tag).files.items() if rel.startswith(strategy + "/")}


def test_splice_takes_one_strategy_from_the_donor_and_uploads_nothing(
    hub_and_store: tuple[ModelHub, CountingStore],
) -> None:
    hub, store = hub_and_store
    store.written.clear()
    sha = hub.splice("v1", "v2", ["AlphaStrategy"], tag="v1_Alpha-v2", source_sha256=hub.tag_sha256("v1"))

    assert store.written == ["tags/v1_Alpha-v2.json"]  # one tag object, no blob
    assert sha == hub.tag_sha256("v1_Alpha-v2")
    assert _files_of(hub, "v1_Alpha-v2", "AlphaStrategy") == _files_of(hub, "v2", "AlphaStrategy")
    assert _files_of(hub, "v1_Alpha-v2", "BetaStrategy") == _files_of(hub, "v1", "BetaStrategy")
    spliced = hub.read_tag("v1_Alpha-v2", expected_sha256=sha)
    assert spliced.source_tag == "v1"
    assert spliced.metadata["AlphaStrategy"] == hub.read_tag("v2").metadata["AlphaStrategy"]
    assert hub.verify_tag("v1_Alpha-v2", sha) == []


def test_splice_again_with_the_same_content_reuses_the_tag(
    hub_and_store: tuple[ModelHub, CountingStore],
) -> None:
    hub, _ = hub_and_store
    first = hub.splice("v1", "v2", ["AlphaStrategy"], tag="v1_Alpha-v2")
    assert hub.splice("v1", "v2", ["AlphaStrategy"], tag="v1_Alpha-v2") == first
    with pytest.raises(TagExists):
        hub.splice("v1", "v2", ["BetaStrategy"], tag="v1_Alpha-v2")


def test_splice_refuses_a_tampered_source_and_a_donor_without_the_strategy(
    hub_and_store: tuple[ModelHub, CountingStore],
) -> None:
    hub, _ = hub_and_store
    with pytest.raises(HubIntegrityError):
        hub.splice("v1", "v2", ["AlphaStrategy"], tag="x", source_sha256="0" * 64)
    with pytest.raises(HubError, match="GammaStrategy"):
        hub.splice("v1", "v2", ["GammaStrategy"], tag="y")
    assert not hub.tag_exists("x") and not hub.tag_exists("y")


# --- promote's choice of the profile's tag ---------------------------------------------------------------


def _manifest(tag: str, sha: str) -> ReleaseManifest:
    pins = {
        name: {"config": "a" * 64, "model": {"name": name, "production": 1}}
        for name in ("AlphaStrategy", "BetaStrategy")
    }
    return ReleaseManifest.from_dict(
        {
            "profile": 3,
            "environment": "prod",
            "description": "x",
            "artifacts": {"tag": tag, "sha256": sha},
            "strategies": pins,
        },
        path="releases/prod/profile-3.yaml",
    )


def test_promote_pins_the_versions_own_tag_or_a_spliced_one(tmp_path: Path) -> None:
    from tradai_release.core.settings import Settings
    from tradai_release.engine.gitops import make_tag
    from tradai_release.registry.adapter import ModelVersionInfo
    from tradai_release.workflows.promote import tag_for_version

    settings = Settings(repo=tmp_path, state_dir=tmp_path / "state")
    hub = ModelHub.from_settings(settings)
    hub.push(
        make_models_dir(tmp_path / "live", ("AlphaStrategy", "BetaStrategy")), tag="v1", created_at=CREATED
    )
    hub.push(
        make_models_dir(tmp_path / "new", ("AlphaStrategy", "BetaStrategy")), tag="v2", created_at=CREATED
    )
    hub.splice("v1", "v2", ["AlphaStrategy"], tag="v3")  # v1 with a new Alpha, Beta unchanged
    manifest = _manifest("v1", hub.tag_sha256("v1"))

    def version(n: int, r2_tag: str | None) -> ModelVersionInfo:
        return ModelVersionInfo("AlphaStrategy", n, "READY", tags={"r2_tag": r2_tag} if r2_tag else {})

    def artifacts_for(
        settings: Settings, manifest: ReleaseManifest, strategy: str, version: ModelVersionInfo
    ) -> tuple[str, str] | None:
        """The tag the profile must pin (made in the hub when it is a splice), as promote does."""
        choice = tag_for_version(hub, manifest, strategy, version)
        return None if choice is None else make_tag(hub, choice)

    assert artifacts_for(settings, manifest, "AlphaStrategy", version(1, "v1")) is None
    assert artifacts_for(settings, manifest, "AlphaStrategy", version(1, None)) is None
    # v3 holds the profile's Beta: pin it as is
    assert artifacts_for(settings, manifest, "AlphaStrategy", version(2, "v3")) == (
        "v3",
        hub.tag_sha256("v3"),
    )
    # v2's Beta differs from the live one: splice, keeping the profile's Beta
    name, sha = artifacts_for(settings, manifest, "AlphaStrategy", version(2, "v2")) or ("", "")
    assert name == "v1_AlphaStrategy-v2" and sha == hub.tag_sha256(name)
    assert _files_of(hub, name, "BetaStrategy") == _files_of(hub, "v1", "BetaStrategy")
    assert _files_of(hub, name, "AlphaStrategy") == _files_of(hub, "v2", "AlphaStrategy")
