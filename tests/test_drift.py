"""Drift monitor on the embedded default: PSI of features and predictions of live bundles, task, bad input."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from retrain_helpers import SOURCE, TAG, invoke, make_live_repo, write_window
from tradai_release.core.errors import InputError, SettingsError
from tradai_release.core.settings import Settings
from tradai_release.domain.monitor.options import parse_data_options
from tradai_release.domain.monitor.predict import predict
from tradai_release.domain.monitor.reference import model_references
from tradai_release.domain.monitor.scores import (
    FEATURE,
    MODERATE,
    PREDICTION,
    SIGNIFICANT,
    STABLE,
    Thresholds,
)
from tradai_release.engine.release_table import ReleaseTable
from tradai_release.repository.environments import environment
from tradai_release.training.result import TrainingResult
from tradai_release.workflows.drift import check_drift, monitor
from webhook_server import serve

STRATEGIES = ("KeplerStrategy", "MyStrategy", "PascalStrategy")


@pytest.fixture(scope="module")
def trained(trained_models: tuple[Path, list[TrainingResult]]) -> tuple[Path, list[TrainingResult]]:
    """Every strategy trained once per run (conftest's trained_models; read-only)."""
    return trained_models


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, trained: tuple[Path, list[TrainingResult]]
) -> Iterator[tuple[Path, Settings]]:
    """dev live on the embedded default (shared read-only by the tests of this module)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AUTHOR", "COMMITTER"):
            patch.setenv(f"GIT_{name}_NAME", "tradai-test")
            patch.setenv(f"GIT_{name}_EMAIL", "test@example.invalid")
        yield make_live_repo(tmp_path_factory.mktemp("live"), *trained)


def test_threshold_levels() -> None:
    limits = Thresholds(0.1, 0.25)
    assert [limits.level(v) for v in (0.0, 0.0999, 0.1, 0.25, 0.2501, 8.0)] == [
        STABLE,
        STABLE,
        MODERATE,
        MODERATE,
        SIGNIFICANT,
        SIGNIFICANT,
    ]
    assert Thresholds.from_settings(Settings(drift_moderate=0.2, drift_significant=0.5)) == Thresholds(
        0.2, 0.5
    )
    with pytest.raises(SettingsError, match="drift_significant"):
        Thresholds.from_settings(Settings(drift_moderate=0.3, drift_significant=0.2))


@pytest.mark.slow
def test_default_window_report(live: tuple[Path, Settings]) -> None:
    repo, settings = live
    report = check_drift(settings, environment(settings, "dev"), state=False)
    assert [item.strategy for item in report.strategies] == list(STRATEGIES)
    for item in report.strategies:
        features = [row.name for row in item.rows if row.kind == FEATURE]
        predictions = [row.name for row in item.rows if row.kind == PREDICTION]
        assert len(features) == len(
            json.loads((repo / "strategies" / item.strategy / "ml_config.json").read_text())["features"]
        )
        assert predictions == ["position", "signal"]
        assert all(math.isfinite(row.psi) and row.psi >= 0 for row in item.rows)
        assert all(row.level == report.thresholds.level(row.psi) for row in item.rows)
        assert item.window.rows == settings.drift_window_rows
        assert item.reference == f"hub tag {TAG}"
        assert item.live.version == 1
    # The hour of day is uniform in any window: its PSI must be ~0 (it was ~0.9 while PSI edges sat
    # on the feature's discrete values and moved when rounded into metadata.json).
    hours = [row.psi for item in report.strategies for row in item.rows if row.name.startswith("hour_")]
    assert max(hours) < 0.01
    data = report.to_dict()
    assert data["env"] == "dev" and data["state_drift"] == [] and data["pending_actions"] is None
    assert {entry["strategy"] for entry in data["strategies"]} == set(STRATEGIES)


@pytest.mark.slow
def test_shifted_window_is_significant_and_notified(live: tuple[Path, Settings], tmp_path: Path) -> None:
    _, settings = live
    window = write_window(tmp_path / "recent.csv", rows=400, vol=0.03)
    with serve() as hook:
        hooked = settings.model_copy(
            update={"webhook_url": SecretStr(hook.url), "notify_backoff_seconds": 0.01}
        )
        report = monitor(hooked, environment(hooked, "dev"), data={"PascalStrategy": window}, state=False)
        assert [item.strategy for item in report.strategies] == ["PascalStrategy"]
        item = report.strategies[0]
        assert item.level == SIGNIFICANT and report.significant == (item,)
        significant = {row.name for row in item.significant}
        assert {"vol_12", "vol_24", "atr_14", "hl_range"} <= significant
        assert item.window.source == str(window) and item.window.rows == 400 - 60
        assert report.notified is True
        assert len(hook.bodies) == 1
        body = hook.bodies[0]
        assert body["text"].startswith("Drift found: dev: PascalStrategy v1: max PSI ")
        assert "vol_24" in json.dumps(body)


@pytest.mark.slow
def test_stable_window_sends_nothing(live: tuple[Path, Settings]) -> None:
    _, settings = live
    with serve() as hook:
        hooked = settings.model_copy(update={"webhook_url": SecretStr(hook.url)})
        report = monitor(hooked, environment(hooked, "dev"), strategies=["KeplerStrategy"], state=False)
        assert report.level != SIGNIFICANT
        assert report.notified is False and hook.bodies == []


@pytest.mark.slow
def test_models_dir_gives_the_same_psi_as_the_hub(
    live: tuple[Path, Settings], trained: tuple[Path, list[TrainingResult]]
) -> None:
    _, settings = live
    from_hub = check_drift(settings, environment(settings, "dev"), strategies=["MyStrategy"], state=False)
    local = check_drift(
        settings, environment(settings, "dev"), strategies=["MyStrategy"], models_dir=trained[0], state=False
    )
    assert [r.psi for r in from_hub.strategies[0].rows] == [r.psi for r in local.strategies[0].rows]
    assert local.strategies[0].reference == str(trained[0])


@pytest.mark.slow
def test_onnx_predictions_reproduce_the_recorded_reference(
    trained: tuple[Path, list[TrainingResult]],
) -> None:
    """The prediction reference was recorded on the held-out rows: scoring those rows gives PSI ~0."""
    from tradai_release.core.psi import psi
    from tradai_release.training.features import build_dataset, load_candles
    from tradai_release.training.train import data_file, load_strategy

    spec = load_strategy(SOURCE, "PascalStrategy")
    path, display = data_file(SOURCE, "PascalStrategy")
    dataset = build_dataset(load_candles(path, display), spec.ml_config)
    references = model_references(trained[0] / "PascalStrategy", "PascalStrategy")
    for reference in references:
        assert reference.prediction_ref is not None
        probability = predict(reference, dataset.x_test)
        assert len(probability) == dataset.test_rows
        assert psi(dict(reference.prediction_ref), probability.tolist()) < 1e-3


@pytest.mark.slow
def test_state_drift_comes_from_the_plan(live: tuple[Path, Settings]) -> None:
    _, settings = live
    report = check_drift(settings, environment(settings, "dev"), strategies=["KeplerStrategy"])
    # Nothing was applied in this repo: the plan has work to do, and no hand-made changes yet.
    assert report.state_error is None
    assert isinstance(report.pending_actions, int) and report.pending_actions > 0
    assert report.state_drift == ()


@pytest.mark.slow
def test_bundle_without_references_is_one_clear_error(
    tmp_path: Path, live: tuple[Path, Settings], trained: tuple[Path, list[TrainingResult]]
) -> None:
    import shutil

    _, settings = live
    models = tmp_path / "models"
    shutil.copytree(trained[0], models)
    metadata = models / "KeplerStrategy" / "signal" / "ensemble_metadata.json"
    data = json.loads(metadata.read_text())
    del data["drift_reference"]
    metadata.write_text(json.dumps(data))
    with pytest.raises(InputError, match="drift_reference: missing"):
        check_drift(
            settings,
            environment(settings, "dev"),
            strategies=["KeplerStrategy"],
            models_dir=models,
            state=False,
        )


def test_data_options() -> None:
    assert parse_data_options(["A=a.csv", "B=b.csv"], None) == {"A": Path("a.csv"), "B": Path("b.csv")}
    assert parse_data_options(["recent.csv"], "A") == {"A": Path("recent.csv")}
    with pytest.raises(InputError, match="--data"):
        parse_data_options(["recent.csv"], None)


@pytest.mark.slow
def test_drift_task(live: tuple[Path, Settings], tmp_path: Path) -> None:
    repo, settings = live
    window = write_window(tmp_path / "recent.csv", rows=300)
    done = invoke(
        repo,
        settings,
        "drift",
        "--env",
        "dev",
        "--strategy",
        "PascalStrategy",
        "--data",
        str(window),
        "--psi-only",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["significant"] == ["PascalStrategy"] and data["notified"] is False
    text = invoke(repo, settings, "drift", "--env", "dev", "--strategy", "KeplerStrategy", "--psi-only")
    assert text.returncode == 0, text.stderr
    assert "KeplerStrategy" in text.stdout and "hour_sin" in text.stdout and "prediction" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: drift: --env: required"),
        (("--env", "qa"), "error: settings: env: unknown environment 'qa'"),
        (("--env", "dev", "--strategy", "NoSuch"), "error: --strategy: strategy: NoSuch is not pinned"),
        (("--env", "dev", "--data", "recent.csv"), "error: --data: data: 'recent.csv': give STRATEGY=PATH"),
        (
            ("--env", "dev", "--data", "PascalStrategy=missing.csv"),
            "error: missing.csv: --data: file not found",
        ),
    ],
)
@pytest.mark.slow
def test_drift_task_bad_input(live: tuple[Path, Settings], args: tuple[str, ...], message: str) -> None:
    repo, settings = live
    done = invoke(repo, settings, "drift", "--psi-only", *args)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip().splitlines()[0]]
    assert done.stderr.startswith(message), done.stderr


@pytest.mark.slow
def test_short_window_is_refused(live: tuple[Path, Settings], tmp_path: Path) -> None:
    _, settings = live
    window = write_window(tmp_path / "short.csv", rows=80)
    with pytest.raises(InputError, match="need at least 50"):
        check_drift(settings, environment(settings, "dev"), data={"PascalStrategy": window}, state=False)


@pytest.mark.slow
def test_record_keeps_each_check_per_strategy_for_the_report(
    live: tuple[Path, Settings], tmp_path: Path
) -> None:
    from tradai_release.engine.state import EngineBackends

    repo, settings = live
    window = write_window(tmp_path / "recent.csv", rows=300, vol=0.03)
    releases = EngineBackends.from_settings(settings, environment(settings, "dev")).releases
    before = ReleaseTable(releases, "dev").recorded_checks()
    first = monitor(
        settings, environment(settings, "dev"), strategies=["KeplerStrategy"], state=False, record=True
    )
    second = monitor(
        settings, environment(settings, "dev"), data={"PascalStrategy": window}, state=False, record=True
    )
    unrecorded = monitor(settings, environment(settings, "dev"), strategies=["MyStrategy"], state=False)
    assert unrecorded.strategies  # checked, but not kept

    after = ReleaseTable(releases, "dev").recorded_checks()
    assert set(after) - set(before) <= {"KeplerStrategy", "PascalStrategy"}
    assert len(after["KeplerStrategy"]) == len(before.get("KeplerStrategy", [])) + 1
    assert "MyStrategy" not in after or len(after["MyStrategy"]) == len(before["MyStrategy"])
    pascal = after["PascalStrategy"][0]  # newest first
    checked = second.strategies[0]
    assert (pascal.version, pascal.level) == (checked.live.version, SIGNIFICANT)
    assert pascal.max_psi == pytest.approx(checked.max_psi, abs=1e-6)
    assert [(row.name, row.level) for row in pascal.psi] == [(row.name, row.level) for row in checked.rows]
    assert pascal.thresholds == second.thresholds
    assert str(window) in pascal.window and pascal.checked_at.endswith("+00:00")
    kepler = after["KeplerStrategy"][0]
    assert kepler.max_psi == pytest.approx(first.strategies[0].max_psi, abs=1e-6)

    done = invoke(repo, settings, "drift", "--env", "dev", "--strategy", "KeplerStrategy", "--psi-only",
                  "--record", "--json")
    assert done.returncode == 0, done.stderr
    recorded = ReleaseTable(releases, "dev").recorded_checks()
    assert len(recorded["KeplerStrategy"]) == len(after["KeplerStrategy"]) + 1
