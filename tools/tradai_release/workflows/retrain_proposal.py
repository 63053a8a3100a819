"""What a retrain concluded and the pull request it proposes, as values and text (no backend, no git).

Per profile the gate's verdict (or unchanged), the outcome of the whole retrain, the manifests' new
texts and the commit message that is the pull-request body; ``retrain`` trains, reads and writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradai_release.domain.gate import Verdict
    from tradai_release.registry.comparator import Comparison
    from tradai_release.repository.manifest import ReleaseManifest

# The decision of a profile whose champion already holds the retrained files (beside the comparator's
# promote / keep / manual-review).
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ProfileVerdict:
    """The outcome for one profile: unchanged (``verdict`` None: the champion's pinned hub tag ``tag``
    already holds the retrained files), or the gate's verdict on the challenger against the champion."""

    profile: int
    champion: int
    verdict: Verdict | None
    manifest: str
    tag: str = ""

    @property
    def comparison(self) -> Comparison | None:
        return self.verdict.comparison if self.verdict is not None else None

    @property
    def decision(self) -> str:
        return UNCHANGED if self.verdict is None else self.verdict.decision

    @property
    def reasons(self) -> tuple[str, ...]:
        if self.verdict is None:
            return (f"the retrained files are the champion's (hub tag {self.tag}): nothing new",)
        return self.verdict.reasons

    def to_dict(self) -> dict[str, Any]:
        comparison = self.comparison
        return {
            "profile": self.profile,
            "manifest": self.manifest,
            "champion": self.champion,
            "tag": self.tag,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "score_challenger": comparison.score_challenger if comparison else None,
            "score_champion": comparison.score_champion if comparison else None,
            "metrics": self.verdict.metric_rows() if self.verdict is not None else [],
        }


@dataclass(frozen=True)
class RetrainResult:
    """What ``retrain`` did: the challenger, each profile's verdict, and the branch it wrote (if any).

    ``challenger`` is None when every profile is unchanged (nothing registered, ``tags`` empty);
    ``duplicate`` when the registry already had a version with the challenger's files (it is that one);
    ``already_proposed`` when that version's retrain branch already existed (it was left as it is).
    """

    env: str
    strategy: str
    model: str
    challenger: int | None
    tags: Mapping[str, tuple[str, str]]  # source tag -> (new tag, its manifest sha256)
    metrics: Mapping[str, float]
    trace_id: str
    base_commit: str
    verdicts: tuple[ProfileVerdict, ...]
    duplicate: bool = False
    branch: str | None = None
    already_proposed: bool = False  # ``branch`` existed: an earlier retrain proposed the same version
    commit: str | None = None
    message: str = ""
    notified: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def proposed(self) -> bool:
        return self.branch is not None

    @property
    def promoted_profiles(self) -> list[int]:
        from tradai_release.registry.comparator import PROMOTE

        return [v.profile for v in self.verdicts if v.decision == PROMOTE]

    @property
    def unchanged_profiles(self) -> list[int]:
        return [v.profile for v in self.verdicts if v.decision == UNCHANGED]

    @property
    def decision(self) -> str:
        """promote when any profile is proposed; unchanged when every profile is; else manual-review
        when any profile needs it, else keep."""
        from tradai_release.registry.comparator import KEEP, MANUAL_REVIEW, PROMOTE

        decisions = {v.decision for v in self.verdicts}
        if PROMOTE in decisions:
            return PROMOTE
        if decisions == {UNCHANGED}:
            return UNCHANGED
        return MANUAL_REVIEW if MANUAL_REVIEW in decisions else KEEP

    @property
    def event(self) -> str:
        """The notification this outcome sends."""
        from tradai_release.registry.comparator import PROMOTE

        if self.decision == PROMOTE:
            return "retraining_proposed"
        return "retraining_unchanged" if self.decision == UNCHANGED else "retraining_kept"

    def groups(self) -> list[tuple[tuple[int, ...], ProfileVerdict]]:
        """Verdicts of profiles that share a champion (and so a comparison), merged: (profiles, verdict)."""
        merged: dict[tuple[int, str, str], list[ProfileVerdict]] = {}
        for verdict in self.verdicts:
            key = (verdict.champion, verdict.decision, verdict.tag if verdict.verdict is None else "")
            merged.setdefault(key, []).append(verdict)
        return [(tuple(v.profile for v in group), group[0]) for group in merged.values()]

    @property
    def reasons(self) -> list[str]:
        """Why nothing (or only part) was proposed: the reasons of every verdict that is not promote."""
        from tradai_release.registry.comparator import PROMOTE

        return [
            f"{_profiles_label(profiles)} (champion v{verdict.champion}): {verdict.decision}: {reason}"
            for profiles, verdict in self.groups()
            if verdict.decision != PROMOTE
            for reason in verdict.reasons
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "strategy": self.strategy,
            "model": self.model,
            "challenger": self.challenger,
            "duplicate": self.duplicate,
            "decision": self.decision,
            "tags": {source: {"tag": tag, "sha256": sha} for source, (tag, sha) in self.tags.items()},
            "metrics": dict(self.metrics),
            "trace_id": self.trace_id,
            "base_commit": self.base_commit,
            "proposed": self.proposed,
            "promoted_profiles": self.promoted_profiles,
            "unchanged_profiles": self.unchanged_profiles,
            "branch": self.branch,
            "commit": self.commit,
            "already_proposed": self.already_proposed,
            "reasons": self.reasons,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "notified": self.notified,
        }


def _profiles_label(profiles: Sequence[int]) -> str:
    return ("profile " if len(profiles) == 1 else "profiles ") + ", ".join(str(p) for p in profiles)


def proposed_pins(
    manifests: Sequence[ReleaseManifest],
    texts: Mapping[str, str],
    promoted: Sequence[ProfileVerdict],
    strategy: str,
    version: int,
    tags: Mapping[str, tuple[str, str]],
    digest: str,
) -> dict[str, str]:
    """Path -> new text of the manifests the proposal changes: the promoted profiles' production pin
    moved with promote's rules and their hub tag pointed at the challenger's, and the strategy's
    config pin refreshed in every manifest of the environment."""
    from tradai_release.domain.pins import PinEdit

    edit = PinEdit({m.path: m for m in manifests}, texts)
    by_profile = {m.profile: m for m in manifests}
    for verdict in promoted:
        manifest = by_profile[verdict.profile]
        edit.promote(manifest.path, strategy, version)
        edit.set_artifacts(manifest.path, *tags[manifest.artifacts.tag])
    edit.refresh_config(strategy, digest)
    return edit.texts()


def proposal_message(outcome: RetrainResult) -> str:
    """The commit message and pull-request body: title, challenger facts, the comparison table per profile."""
    from tradai_release.domain.messages import comparison_table

    profiles = _profiles_label(outcome.promoted_profiles)
    lines = [
        f"retrain: promote {outcome.strategy} v{outcome.challenger} in {outcome.env} ({profiles})",
        "",
        f"Challenger **{outcome.model} v{outcome.challenger}** for `{outcome.env}`, trained at "
        f"`{outcome.base_commit[:12]}` (trace `{outcome.trace_id}`).",
        "",
    ]
    for source, (tag, sha) in outcome.tags.items():
        lines.append(f"- hub tag `{tag}` (sha256 `{sha[:16]}…`): `{source}` with {outcome.strategy} replaced")
    lines.append("")
    for group, verdict in outcome.groups():
        label = ("Profile " if len(group) == 1 else "Profiles ") + ", ".join(str(p) for p in group)
        lines += [f"### {label}: champion v{verdict.champion} -> **{verdict.decision}**", ""]
        if verdict.comparison is None:
            lines += [f"- {reason}" for reason in verdict.reasons]
        else:
            lines += comparison_table(verdict.comparison)
        lines.append("")
    lines.append(
        "Proposed by `invoke retrain`; merging applies it (plan on the pull request, apply on merge)."
    )
    return "\n".join(lines).rstrip() + "\n"
