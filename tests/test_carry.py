"""Train once, promote the artifact: a challenger trained once is carried dev -> staging -> prod with
``promote --from`` (the same hub files, metrics and lineage), and the bad inputs of ``--from``."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrain_helpers import BETTER, commit_all, git, invoke, make_live_repo, with_metrics
from tradai_release.core.errors import InputError
from tradai_release.core.settings import Settings
from tradai_release.hub import ModelHub
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.registry.registrar import LINEAGE_TAGS, PROMOTED_FROM_TAG
from tradai_release.repository.environments import Environment, environment
from tradai_release.training.result import TrainingResult
from tradai_release.workflows.promote import promote
from tradai_release.workflows.retrain import retrain

pytestmark = pytest.mark.slow

ENVS = ("dev", "staging", "prod")
STRATEGY = "PascalStrategy"


@pytest.fixture
def live(tmp_path: Path, trained_models: tuple[Path, list[TrainingResult]]) -> tuple[Path, Settings]:
    """dev, staging and prod live on one hub tag, each registry holding version 1 of every strategy."""
    return make_live_repo(tmp_path, *trained_models, "dev", also=("staging", "prod"))


def envs(settings: Settings) -> dict[str, Environment]:
    return {name: environment(settings, name) for name in ENVS}


def hub_objects(settings: Settings) -> tuple[set[str], set[str]]:
    """The hub's blob keys and tag keys."""
    store = ModelHub.from_settings(settings).store
    return {o.key for o in store.list("blobs/")}, {o.key for o in store.list("tags/")}


def versions(settings: Settings, env: str) -> list[int]:
    registry = MlflowRegistry.for_env(environment(settings, env), settings)
    return [info.version for info in registry.versions([STRATEGY])[STRATEGY]]


def trained_in_dev(repo: Path, settings: Settings) -> int:
    """Retrain once (a challenger with better metrics), registered in dev; its branch merged."""
    from tradai_release.training import train_strategy

    result = retrain(settings, STRATEGY, environment(settings, "dev"),
                     trainer=with_metrics(train_strategy, **BETTER), send=False)
    assert result.proposed and result.challenger is not None, result.reasons
    git(repo, "merge", "-q", "--no-ff", str(result.branch), "-m", f"Merge {result.branch}")
    return result.challenger


def test_a_challenger_trained_once_is_carried_dev_staging_prod(live: tuple[Path, Settings]) -> None:
    repo, settings = live
    where = envs(settings)
    blobs_before, _ = hub_objects(settings)
    challenger = trained_in_dev(repo, settings)
    blobs_trained, _ = hub_objects(settings)
    new_blobs = blobs_trained - blobs_before
    assert new_blobs  # the challenger's files, uploaded once by the retrain

    for source, target in (("dev", "staging"), ("staging", "prod")):
        promotion = promote(settings, where[target], "all", STRATEGY, challenger, source=where[source],
                            plan=False)
        commit_all(repo, f"promote {STRATEGY} v{challenger} {source} -> {target}")
        carried = promotion.carried
        assert carried is not None and carried.created and carried.version == promotion.version
        assert promotion.profiles == (1, 2, 3, 4, 5)
        assert f"carried from {source} v{challenger}: the same files" in promotion.message

    # One copy of the files in the hub: promoting uploaded no blob (a profile tag may be spliced, not a file).
    blobs_after, tags_after = hub_objects(settings)
    assert blobs_after - blobs_before == new_blobs
    infos = {env: MlflowRegistry.for_env(where[env], settings).get_version(STRATEGY, challenger)
             for env in ENVS}
    lineage = {env: {key: value for key, value in info.tags.items() if key in LINEAGE_TAGS}
               for env, info in infos.items()}
    assert lineage["dev"] == lineage["staging"] == lineage["prod"]
    assert set(lineage["dev"]) == set(LINEAGE_TAGS)  # run, data window, commit, digests, r2_tag, ...
    assert lineage["dev"]["training_run"].startswith("dev/")
    assert PROMOTED_FROM_TAG not in infos["dev"].tags
    assert infos["staging"].tags[PROMOTED_FROM_TAG] == f"dev:v{challenger}"
    assert infos["prod"].tags[PROMOTED_FROM_TAG] == f"staging:v{challenger}"
    assert {env: dict(info.metrics) for env, info in infos.items() if env != "dev"} == {
        "staging": dict(infos["dev"].metrics), "prod": dict(infos["dev"].metrics)}
    assert infos["dev"].metrics["total_profit"] == BETTER["total_profit"]
    for profile in (1, 5):
        text = (repo / "releases" / "prod" / f"profile-{profile}.yaml").read_text()
        assert f"production: {challenger}" in text.split(f"{STRATEGY}:")[1].split("\n\n")[0]

    # The same promotion again creates nothing: no registry version, no hub object, no edit.
    counts = {env: versions(settings, env) for env in ENVS}
    with pytest.raises(InputError, match=f"already pins {STRATEGY} production v{challenger}"):
        promote(settings, where["prod"], "all", STRATEGY, challenger, source=where["staging"], plan=False)
    assert {env: versions(settings, env) for env in ENVS} == counts
    assert hub_objects(settings) == (blobs_after, tags_after)
    assert git(repo, "status", "--porcelain") == ""


def test_a_version_the_target_holds_with_the_same_files_is_reused(live: tuple[Path, Settings]) -> None:
    """Version 1 is registered in every environment from the same bundle: carrying dev v1 to staging finds
    staging's v1 (the same files) and registers nothing."""
    from tradai_release.workflows.carry import carry

    _, settings = live
    where = envs(settings)
    before = versions(settings, "staging")
    carried = carry(settings, where["dev"], where["staging"], STRATEGY, STRATEGY, 1)
    assert (carried.created, carried.version) == (False, 1)
    assert versions(settings, "staging") == before


def test_bad_from_is_one_error_line_and_nothing_is_written(live: tuple[Path, Settings]) -> None:
    repo, settings = live
    challenger = trained_in_dev(repo, settings)
    where = envs(settings)
    before = ({env: versions(settings, env) for env in ENVS}, hub_objects(settings))

    def refused(source: str, target: str, version: int) -> str:
        with pytest.raises(InputError) as caught:
            promote(settings, where[target], "all", STRATEGY, version, source=where[source], plan=False)
        return str(caught.value)

    assert refused("prod", "staging", challenger) == (
        "promote: --from: prod is not before staging in the promotion order (dev -> staging -> prod)")
    assert refused("dev", "dev", challenger).startswith("promote: --from: dev is not before dev")
    assert refused("dev", "staging", 9) == (
        f"promote: --version: version 9 of registered model '{STRATEGY}' is not in the dev registry")

    # A blob of the challenger's files that no longer holds its content (same size, other bytes).
    info = MlflowRegistry.for_env(where["dev"], settings).get_version(STRATEGY, challenger)
    hub = ModelHub.from_settings(settings)
    path, entry = sorted(hub.read_tag(info.tags["r2_tag"]).files_of([STRATEGY]).items())[0]
    blob = settings.state_dir / "hub" / "blobs" / "sha256" / entry.sha256
    assert blob.is_file(), blob
    data = blob.read_bytes()
    blob.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])
    message = refused("dev", "staging", challenger)
    assert message.startswith(f"hub tag {info.tags['r2_tag']}: {path}: blob {entry.sha256[:12]} ")
    assert "holds other content" in message
    assert ({env: versions(settings, env) for env in ENVS}, hub_objects(settings)) == before
    assert git(repo, "status", "--porcelain") == ""

    # The task says it in one line and exits 1.
    run = invoke(repo, settings, "promote", "--from", "prod", "--env", "staging", "--profile", "all",
                 "--strategy", STRATEGY, "--version", str(challenger))
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "error: promote: --from: prod is not before staging in the promotion order (dev -> staging -> prod)"]
