"""Drift monitor: PSI of recent data and predictions against the live model's training reference.

For each model an environment runs (the production pin of each profile, grouped when profiles
share the hub tag and version), the bundle is pulled from the hub with every file's SHA-256
verified, its metadata gives the PSI reference recorded at training (quantile bin edges and
shares of each feature on the training rows, and of the predicted probability on the held-out
rows), and the recent window is scored against it: the features directly, the predictions by
running the bundle's ONNX files with onnxruntime (the pickles are never loaded). The engine's
plan of the environment is added, so hand-made changes to live state show up in the same report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.engine.release_table import RecordedCheck
from tradai_release.errors import InputError, SettingsError, TradaiError
from tradai_release.monitor.scores import (
    FEATURE,
    LEVELS,
    PREDICTION,
    SIGNIFICANT,
    STABLE,
    PsiRow,
    Thresholds,
)

if TYPE_CHECKING:
    from tradai_release.environments import Environment
    from tradai_release.hub.hub import ModelHub
    from tradai_release.settings import Settings
    from tradai_release.stores import KeyValueTable

# A window shorter than this says nothing about a 10-bin distribution.
MIN_WINDOW_ROWS = 50
METADATA_GLOB = "*/*metadata.json"


@dataclass(frozen=True)
class LiveModel:
    """One model an environment runs: the strategy's production pin in the listed profiles."""

    strategy: str
    model: str
    version: int
    tag: str
    sha256: str
    profiles: tuple[int, ...]


@dataclass(frozen=True)
class Window:
    """The recent data scored against the reference."""

    source: str
    rows: int
    start: str
    end: str


@dataclass(frozen=True)
class StrategyDrift:
    """PSI of one live model's features and predictions over the recent window."""

    live: LiveModel
    window: Window
    rows: tuple[PsiRow, ...]
    reference: str  # where the reference came from (hub tag or models dir)

    @property
    def strategy(self) -> str:
        return self.live.strategy

    @property
    def max_psi(self) -> float:
        return max((row.psi for row in self.rows), default=0.0)

    @property
    def level(self) -> str:
        return max((row.level for row in self.rows), key=LEVELS.index, default=STABLE)

    @property
    def significant(self) -> tuple[PsiRow, ...]:
        return tuple(row for row in self.rows if row.level == SIGNIFICANT)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.live.strategy,
            "model": self.live.model,
            "version": self.live.version,
            "profiles": list(self.live.profiles),
            "tag": self.live.tag,
            "reference": self.reference,
            "window": {
                "source": self.window.source,
                "rows": self.window.rows,
                "start": self.window.start,
                "end": self.window.end,
            },
            "level": self.level,
            "max_psi": round(self.max_psi, 6),
            "psi": [row.to_dict() for row in self.rows],
        }


@dataclass(frozen=True)
class DriftReport:
    """The drift of one environment: PSI per live model, and the live-state drift of its plan."""

    env: str
    thresholds: Thresholds
    strategies: tuple[StrategyDrift, ...]
    state_drift: tuple[Mapping[str, Any], ...] = ()
    pending_actions: int | None = None  # actions the plan of the env would take (None: not planned)
    state_error: str | None = None
    notified: bool = False

    @property
    def level(self) -> str:
        return max((s.level for s in self.strategies), key=LEVELS.index, default=STABLE)

    @property
    def significant(self) -> tuple[StrategyDrift, ...]:
        return tuple(s for s in self.strategies if s.level == SIGNIFICANT)

    @property
    def alarming(self) -> bool:
        """True when someone should look: significant PSI drift, or live state changed by hand."""
        return bool(self.significant or self.state_drift)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "thresholds": {"moderate": self.thresholds.moderate, "significant": self.thresholds.significant},
            "level": self.level,
            "significant": [s.strategy for s in self.significant],
            "strategies": [s.to_dict() for s in self.strategies],
            "state_drift": [dict(entry) for entry in self.state_drift],
            "pending_actions": self.pending_actions,
            "state_error": self.state_error,
            "notified": self.notified,
        }


# --- what is live --------------------------------------------------------------------------------------


def live_models(
    repo: Path, env: str, strategies: Iterable[str] | None = None, commit: str = "HEAD"
) -> list[LiveModel]:
    """The production pins of ``env``'s manifests at ``commit``, one entry per (strategy, version, tag)."""
    from tradai_release.repo import ReleaseTree

    with ReleaseTree.at(repo, commit) as tree:
        release = tree.load()
    release.require_valid()
    wanted = set(strategies) if strategies is not None else None
    groups: dict[tuple[str, str, int, str, str], list[int]] = {}
    for manifest in release.manifests_of(env):
        for name, pin in manifest.strategies.items():
            if wanted is not None and name not in wanted:
                continue
            key = (
                name,
                pin.model.name,
                pin.model.production,
                manifest.artifacts.tag,
                manifest.artifacts.sha256,
            )
            groups.setdefault(key, []).append(manifest.profile)
    if wanted is not None:
        unknown = sorted(wanted - {key[0] for key in groups})
        if unknown:
            raise InputError(
                "--strategy", "strategy", f"{', '.join(unknown)} is not pinned in any {env} manifest"
            )
    return [
        LiveModel(strategy=s, model=m, version=v, tag=t, sha256=h, profiles=tuple(sorted(p)))
        for (s, m, v, t, h), p in sorted(groups.items())
    ]


def bundle_dir(
    settings: Settings, hub: ModelHub, live: LiveModel, features: Mapping[str, Sequence[str]]
) -> Path:
    """The live bundle in a local cache, pulled (and verified) from the hub when not already there."""
    dest = settings.state_dir / "cache" / "bundles" / live.tag
    hub.pull(dest, tag=live.tag, expected_sha256=live.sha256, features=features)
    return dest


# --- references and windows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelReference:
    """One model of a bundle (signal or position): its PSI references and how to run its ONNX files."""

    role: str
    directory: Path
    features: tuple[str, ...]
    feature_refs: Mapping[str, Mapping[str, Any]]
    prediction_ref: Mapping[str, Any] | None
    onnx_files: Mapping[str, str]  # part -> file name in ``directory``; "scaler" plus the members
    onnx_input: str = "input"
    where: str = ""


def model_references(strategy_dir: Path, where: str) -> list[ModelReference]:
    """The PSI references of each model of a strategy's bundle (from its ``*metadata.json``)."""
    found = sorted(strategy_dir.glob(METADATA_GLOB))
    if not found:
        raise InputError(f"{where}", "metadata", "no *metadata.json in the bundle")
    references = []
    for path in found:
        label = f"{where}/{path.relative_to(strategy_dir).as_posix()}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(label, "(json)", f"unreadable: {err}") from None
        reference = data.get("drift_reference") if isinstance(data, dict) else None
        if not isinstance(reference, dict) or not isinstance(reference.get("features"), dict):
            raise InputError(
                label, "drift_reference", "missing: the model predates PSI references; retrain it"
            )
        features = tuple(str(name) for name in data.get("features") or reference["features"])
        for name in features:
            _check_reference(reference["features"].get(name), label, f"drift_reference.features.{name}")
        prediction = reference.get("prediction")
        if prediction is not None:
            _check_reference(prediction, label, "drift_reference.prediction")
        files = data.get("files") if isinstance(data.get("files"), dict) else {}
        onnx = {
            part: str(spec["onnx"])
            for part, spec in files.items()
            if isinstance(spec, dict) and "onnx" in spec
        }
        references.append(
            ModelReference(
                role=str(data.get("model") or path.parent.name),
                directory=path.parent,
                features=features,
                feature_refs=reference["features"],
                prediction_ref=prediction,
                onnx_files=onnx,
                onnx_input=str(data.get("onnx_input") or "input"),
                where=label,
            )
        )
    return references


def _check_reference(ref: Any, where: str, field_name: str) -> None:
    if not isinstance(ref, dict):
        raise InputError(where, field_name, "missing")
    edges, proportions = ref.get("edges"), ref.get("proportions")
    if not isinstance(edges, list) or not isinstance(proportions, list) or len(proportions) != len(edges) + 1:
        raise InputError(where, field_name, "needs edges and proportions (one more proportion than edges)")


def window_features(csv: Path, display: str, features: Sequence[str], last: int | None) -> tuple[Any, Window]:
    """Feature rows of a candles CSV (after the warm-up), the last ``last`` of them when given."""
    import numpy as np

    from tradai_release.training.features import WARMUP_ROWS, compute_features, load_candles

    candles = load_candles(csv, display)
    table = compute_features(candles.frame, features, where=display).iloc[WARMUP_ROWS:]
    stamps = candles.frame["timestamp"].iloc[WARMUP_ROWS:]
    x = table.to_numpy(dtype=np.float64)
    keep = np.isfinite(x).all(axis=1)
    x, stamps = x[keep], stamps[keep]
    if last is not None:
        x, stamps = x[-last:], stamps.iloc[-last:]
    if len(x) < MIN_WINDOW_ROWS:
        raise InputError(
            display,
            "rows",
            f"{len(x)} candles after the {WARMUP_ROWS}-candle warm-up; need at least {MIN_WINDOW_ROWS}",
        )
    iso = "%Y-%m-%dT%H:%M:%SZ"
    return x, Window(display, len(x), stamps.iloc[0].strftime(iso), stamps.iloc[-1].strftime(iso))


def predict(reference: ModelReference, x: Any) -> Any:
    """The model's soft vote, P(class 1) per row: the ONNX scaler, then the mean of the ONNX members."""
    import numpy as np
    import onnxruntime

    if "scaler" not in reference.onnx_files or len(reference.onnx_files) < 2:
        raise InputError(reference.where, "files", "no ONNX scaler and members listed")

    def run(part: str, rows: Any) -> list[Any]:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        path = reference.directory / reference.onnx_files[part]
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            return list(session.run(None, {name: np.asarray(rows, dtype=np.float32)}))
        except Exception as err:  # onnxruntime raises its own untyped errors for bad files
            raise InputError(f"{reference.where}", f"files.{part}", f"ONNX run failed: {err}") from None

    scaled = np.asarray(run("scaler", x)[0], dtype=np.float32)
    members = []
    for part in sorted(p for p in reference.onnx_files if p != "scaler"):
        outputs = run(part, scaled)
        probabilities = next((o for o in outputs if getattr(o, "ndim", 0) == 2 and o.shape[1] == 2), None)
        if probabilities is None:
            raise InputError(reference.where, f"files.{part}", "no [n, 2] probability output")
        members.append(np.asarray(probabilities[:, 1], dtype=np.float64))
    return np.mean(members, axis=0)


def score(
    references: Sequence[ModelReference], x: Any, thresholds: Thresholds, features: Sequence[str]
) -> tuple[PsiRow, ...]:
    """PSI of each feature (from the first model's references) and of each model's predictions."""
    from tradai_release.psi import psi

    rows: list[PsiRow] = []
    first = references[0]
    if list(first.features) != list(features):
        raise InputError(
            first.where, "features", "the bundle's features differ from the strategy's ml_config.json"
        )
    for index, name in enumerate(features):
        value = psi(dict(first.feature_refs[name]), x[:, index].tolist())
        rows.append(PsiRow(FEATURE, name, value, thresholds.level(value)))
    for reference in references:
        if reference.prediction_ref is None:
            continue
        value = psi(dict(reference.prediction_ref), predict(reference, x).tolist())
        rows.append(PsiRow(PREDICTION, reference.role, value, thresholds.level(value)))
    return tuple(rows)


# --- the monitor ----------------------------------------------------------------------------------------


def check_drift(
    settings: Settings,
    env: str | Environment,
    *,
    data: Mapping[str, Path] | None = None,
    strategies: Iterable[str] | None = None,
    models_dir: Path | None = None,
    commit: str = "HEAD",
    state: bool = True,
    hub: ModelHub | None = None,
) -> DriftReport:
    """PSI drift of every live model of ``env`` (or of ``strategies``), plus the plan's state drift.

    ``data`` maps a strategy to a candles CSV holding its recent window (default: the last
    ``settings.drift_window_rows`` candles of its data set). ``models_dir`` reads the bundles from a
    local directory instead of pulling the pinned hub tag.
    """
    from tradai_release.environments import environment
    from tradai_release.hub.hub import ModelHub
    from tradai_release.repo import ReleaseTree

    target = environment(settings, env)
    thresholds = Thresholds.from_settings(settings)
    if settings.drift_window_rows < MIN_WINDOW_ROWS:
        raise SettingsError("drift_window_rows", f"must be at least {MIN_WINDOW_ROWS}")
    data = dict(data or {})
    selected = list(strategies) if strategies is not None else None
    if selected is not None or data:
        selected = sorted(set(selected or []) | set(data))
    lives = live_models(settings.repo, target.name, selected, commit)
    features = ReleaseTree.work(settings.repo).features(sorted({live.strategy for live in lives}))
    if models_dir is None and lives:
        hub = hub or ModelHub.from_settings(settings)
    results: list[StrategyDrift] = []
    for live in lives:
        if models_dir is not None:
            root, reference = models_dir, str(models_dir)
        else:
            assert hub is not None
            root, reference = bundle_dir(settings, hub, live, features), f"hub tag {live.tag}"
        refs = model_references(root / live.strategy, f"{reference}: {live.strategy}")
        x, window = _window(settings, live.strategy, data.get(live.strategy), features[live.strategy])
        results.append(
            StrategyDrift(live, window, score(refs, x, thresholds, features[live.strategy]), reference)
        )
    state_drift, pending, error = _state(settings, target, commit) if state else ((), None, None)
    return DriftReport(target.name, thresholds, tuple(results), state_drift, pending, error)


def _window(
    settings: Settings, strategy: str, csv: Path | None, features: Sequence[str]
) -> tuple[Any, Window]:
    if csv is not None:
        path = Path(csv)
        if not path.is_file():
            raise InputError(str(csv), "--data", "file not found")
        return window_features(path, str(csv), features, None)
    from tradai_release.training.train import data_file

    path, display = data_file(settings.repo, strategy)
    x, window = window_features(path, display, features, settings.drift_window_rows)
    return x, Window(f"{display} (last {window.rows} candles)", window.rows, window.start, window.end)


def _state(
    settings: Settings, env: Environment, commit: str
) -> tuple[tuple[Mapping[str, Any], ...], int | None, str | None]:
    """The plan's drift (live values changed by hand) and how many actions an apply would take."""
    from tradai_release.engine.plan import plan_env

    try:
        plan = plan_env(settings, env, commit=commit)
    except TradaiError as err:
        return (), None, str(err)
    return tuple(entry.to_dict() for entry in plan.drift), len(plan.actions), None


# --- recorded checks (``invoke drift --record``) -----------------------------------------------------------

def record_checks(settings: Settings, report: DriftReport) -> int:
    """Store each strategy's PSI of ``report`` in the env's release-state table (one item each).

    One item per strategy and check keeps every item small whatever the number of strategies
    (DynamoDB caps an item at 400 KB); returns how many were written.
    """
    from tradai_release.clock import stamp, utc_now
    from tradai_release.engine.release_table import ReleaseTable
    from tradai_release.engine.state import EngineBackends

    releases = ReleaseTable(EngineBackends.from_settings(settings, report.env).releases, report.env)
    moment = utc_now()
    for item in report.strategies:
        check = RecordedCheck(
            strategy=item.strategy,
            version=item.live.version,
            checked_at=stamp(moment),
            level=item.level,
            max_psi=item.max_psi,
            psi=item.rows,
            thresholds=report.thresholds,
            window=f"{item.window.source}: {item.window.start} to {item.window.end}",
            model=item.live.model,
            profiles=item.live.profiles,
        )
        releases.record_check(check, moment)
    return len(report.strategies)


def recorded_checks(releases: KeyValueTable, env: str) -> dict[str, list[RecordedCheck]]:
    """Every recorded check of ``env`` (one query), per strategy, newest first."""
    from tradai_release.engine.release_table import ReleaseTable

    return ReleaseTable(releases, env).recorded_checks()


def monitor(
    settings: Settings, env: str | Environment, *, record: bool = False, **options: Any
) -> DriftReport:
    """``check_drift``, then a ``drift_found`` notification when PSI drift is significant or state drifted.

    ``record`` stores each strategy's PSI in the release state first (for the report's history).
    """
    from dataclasses import replace

    from tradai_release.notify import notify

    report = check_drift(settings, env, **options)
    if record:
        record_checks(settings, report)
    if not report.alarming:
        return report
    parts = [f"{s.strategy} v{s.live.version}: max PSI {s.max_psi:.3f}" for s in report.significant]
    if report.state_drift:
        parts.append(f"{len(report.state_drift)} live value(s) changed by hand")
    details: dict[str, Any] = {"env": report.env, "level": report.level}
    for item in report.significant:
        worst = sorted(item.significant, key=lambda row: -row.psi)[:5]
        details[item.strategy] = ", ".join(f"{row.name} {row.psi:.3f}" for row in worst)
    if report.state_drift:
        details["state drift"] = "\n".join(
            f"{d.get('target')}: {d.get('detail')}" for d in report.state_drift
        )
    sent = notify(settings, "drift_found", f"{report.env}: " + "; ".join(parts), details)
    return replace(report, notified=sent)


def parse_data_options(values: Sequence[str], strategy: str | Sequence[str] | None = None) -> dict[str, Path]:
    """``--data`` values: ``STRATEGY=PATH`` each, or one bare ``PATH`` with exactly one ``--strategy``."""
    if isinstance(strategy, str) or strategy is None:
        only = strategy
    else:
        only = strategy[0] if len(strategy) == 1 else None
    data: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name and path:
            data[name] = Path(path)
        elif only:
            data[only] = Path(value)
        else:
            raise InputError(
                "--data", "data", f"{value!r}: give STRATEGY=PATH, or PATH together with --strategy"
            )
    return data
