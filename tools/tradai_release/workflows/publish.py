"""`invoke train`: train a strategy, then (optionally) push it to the model hub and register it in MLflow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings
    from tradai_release.hub import PushResult, TransferProgress
    from tradai_release.registry.registrar import RegisteredVersion
    from tradai_release.training.result import TrainingResult



@dataclass(frozen=True)
class TrainOutcome:
    """What `invoke train` did: the training result, the hub push and the registered versions (if any)."""

    result: TrainingResult
    push: PushResult | None = None
    versions: dict[str, RegisteredVersion] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        result = self.result
        return {
            "strategy": result.strategy_name,
            "model_dir": str(result.model_dir),
            "features": list(result.features),
            "feature_count": result.feature_count,
            "metrics": dict(result.metrics),
            "data_rows": result.data_rows,
            "git_commit": result.git_commit,
            "trace_id": result.trace_id,
            "onnx_parity_max_abs_diff": result.extra.get("onnx_parity_max_abs_diff"),
            "seconds": result.extra.get("seconds"),
            "tag": self.push.tag if self.push else None,
            "manifest_sha256": self.push.manifest_sha256 if self.push else None,
            "uploaded_bytes": self.push.uploaded_bytes if self.push else None,
            "versions": {env: version.version for env, version in sorted(self.versions.items())},
            "duplicates": sorted(env for env, version in self.versions.items() if version.duplicate),
        }


def train_and_publish(
    settings: Settings,
    strategy: str,
    *,
    push_to_hub: bool = False,
    register_envs: Sequence[str] = (),
    tag: str | None = None,
    message: str = "",
    progress: TransferProgress | None = None,
) -> TrainOutcome:
    """Train ``strategy`` into ``settings.models_path()``; with ``push_to_hub`` push and register it.

    The push uploads the whole models dir as one tag (a pull replaces the whole models dir with a
    tag's content, so a tag is always a complete bundle of every strategy in it). The new model
    version is then registered in each of ``register_envs`` (default: the first environment of the
    promotion order) with ``r2_tag`` set to
    the pushed tag. Flags and credentials are checked before training starts.
    """
    from tradai_release.repository.environments import environments
    from tradai_release.repository.gitrepo import head_commit
    from tradai_release.training.train import load_strategy, train_strategy

    if not strategy:
        raise InputError("train", "--strategy", "required (the strategy to train)")
    # Default: the first environment of the promotion order, where every change starts.
    targets = environments(settings, register_envs) if register_envs else environments(settings)[:1]
    if register_envs and not push_to_hub:
        raise InputError(
            "train", "--register-env", "needs --push-to-hub (a registered version carries its r2_tag)"
        )
    if tag is not None and not push_to_hub:
        raise InputError("train", "--tag", "needs --push-to-hub")
    if tag is not None:
        from tradai_release.hub.names import check_tag

        check_tag(tag, where="--tag")  # a bad name is one line even without --push-to-hub's hub
    repo = settings.repo
    spec = load_strategy(repo, strategy)
    hub = None
    if push_to_hub:
        from tradai_release.hub import ModelHub

        hub = ModelHub.from_settings(settings)  # missing CF_R2_* credentials fail here, before training
        if tag is not None:
            hub.require_new_tag(tag)
    commit = head_commit(repo)
    models_dir = settings.models_path()
    result = train_strategy(repo, strategy, models_dir, git_commit=commit)
    if hub is None:
        return TrainOutcome(result)

    pushed = hub.push(
        models_dir,
        tag=tag,
        message=message or f"train {strategy}",
        git_commit=commit,
        progress=progress,
    )
    from tradai_release.registry.registrar import register_training

    versions = register_training(
        settings,
        result,
        r2_tag=pushed.tag,
        envs=targets,
        config=spec.tradai,
    )
    return TrainOutcome(result, pushed, versions)
