"""Plans and deployments as text (terminal) and Markdown (PR comment, job summary); pure string builders."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError
from tradai_release.engine.actions import (
    ActivateConfig,
    ConfigWrite,
    CreateConfigVersion,
    DeleteAlias,
    DeployBot,
    LifecycleWrite,
    RecordDeployment,
    RetireAlias,
    RetireBot,
    RetireConfig,
    RetirePointer,
    SetAlias,
    UploadConfig,
    VerifyArtifacts,
    WaitRollout,
    WriteProfilePointer,
)

if TYPE_CHECKING:
    from tradai_release.domain.gate import ModelChange
    from tradai_release.engine.actions import Action
    from tradai_release.engine.deployments import Deployment
    from tradai_release.engine.plan import Plan
    from tradai_release.workflows.validate import ValidationReport

def _short(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text[:12] if len(text) >= 40 and all(c in "0123456789abcdef" for c in text) else text


def _summary(action: Action) -> str:
    """What the action changes, in a few words (from -> to)."""
    match action:
        case UploadConfig():
            return f"store body {_short(action.config_hash)}"
        case CreateConfigVersion():
            return f"new DRAFT version with hash {_short(action.config_hash)}"
        case ActivateConfig():
            target = action.config_id or f"hash {_short(action.config_hash)}"
            return f"ACTIVE {action.previous or 'none'} -> {target}"
        case RetireConfig():
            return f"ACTIVE {action.config_id} -> DEPRECATED (expires in 90 days)"
        case VerifyArtifacts():
            return f"tag {action.tag} sha256 {_short(action.sha256)}"
        case LifecycleWrite():
            return f"v{action.version} {action.from_} -> {action.to}"
        case SetAlias():
            previous = f"v{action.previous}" if action.previous is not None else "-"
            return f"{action.alias}: {previous} -> v{action.version}"
        case DeleteAlias() | RetireAlias():
            return f"{action.alias}: v{action.previous} -> -"
        case RetireBot():
            how = "remove" if action.deployed_on == "env-file" else "scale to zero"
            return f"{how} {action.where or action.bot}"
        case RetirePointer():
            return f"{action.tag} -> - (pointer deleted)"
        case WriteProfilePointer():
            was = action.previous
            return f"{was[0] if was else '-'} -> {action.tag} ({_short(action.sha256)})"
        case DeployBot():
            config = action.config_id or _short(action.config_hash)
            return f"{action.model} v{action.version}, tag {action.tag}, config {config}"
        case WaitRollout():
            return f"{len(action.bots)} rollout(s) stable"
        case RecordDeployment():
            return f"last applied {_short(action.previous)} -> {_short(action.commit)}"
    return ""


PLAN_FORMATS: tuple[str, ...] = ("text", "markdown", "json")


def check_format(format: str) -> str:
    """``--format``: text, markdown or json (one ``error:`` line otherwise, before anything is read)."""
    if format not in PLAN_FORMATS:
        raise InputError("plan", "--format", f"{format!r}: use text, markdown or json")
    return format


def print_plan(plan: Plan, format: str) -> None:
    """The plan on stdout in ``format`` (see :data:`PLAN_FORMATS`)."""
    if format == "json":
        from tradai_release.cli import print_json

        print_json(plan.to_dict())
        return
    print(render_markdown(plan) if format == "markdown" else render_text(plan), end="")


# --- text ------------------------------------------------------------------------------------------------


def render_text(plan: Plan) -> str:
    """The plan for a terminal: drift first, then numbered actions with what changes and why."""
    lines = [f"plan for {plan.env} at {plan.commit[:12]} (last applied: {_short(plan.applied_commit)})"]
    if plan.lease is not None:
        held = plan.lease.to_dict()
        lines.append(
            f"locked: {held['holder'] or 'an apply'} holds lease {held['lease_id']} for deployment "
            f"{held['deployment_id']} since {held['acquired_at']} (renewed {held['renewed_at'] or 'never'}, "
            f"lapses at {held['expires_at']}); a dead holder's lease lapses by itself, "
            f"`invoke unlock --env {plan.env} --lease {held['lease_id']}` breaks it"
        )
    if plan.drift:
        lines.append("")
        lines.append(f"drift: {len(plan.drift)} live value(s) changed outside git (apply restores them)")
        lines += [f"  ! {entry.kind} {entry.target}: {entry.detail}" for entry in plan.drift]
    if plan.verdicts:
        lines.append("")
        lines.append("policy (releases/policy.yaml):")
        lines += [f"  {v.rule} {v.subject}: {v.message}" for v in plan.verdicts]
    if plan.orphans:
        lines.append("")
        lines.append(f"orphans: {len(plan.orphans)} live value(s) no manifest of {plan.env} declares; "
                     "policy.yaml has no `prune: true`, so apply leaves them")
        lines += [f"  ~ {a.kind} {a.target}: {_summary(a)} ({a.reason})" for a in plan.orphans]
    lines.append("")
    if plan.empty:
        lines.append(f"{plan.env} is in sync with {plan.commit[:12]}: nothing to do")
        return "\n".join(lines) + "\n"
    width_kind = max(len(a.kind) for a in plan.actions)
    width_target = min(max(len(a.target) for a in plan.actions), 48)
    for number, action in enumerate(plan.actions, 1):
        lines.append(
            f"{number:>3}. {action.kind:<{width_kind}}  {action.target:<{width_target}}  {_summary(action)}"
        )
        lines.append(f"     {'':<{width_kind}}  because: {action.reason}")
    for change in plan.model_changes:
        lines.append("")
        lines.append(_change_title(change))
        for reason in change.comparison.reasons:
            lines.append(f"    - {reason}")
    lines.append("")
    lines.append(f"{len(plan.actions)} action(s); run `invoke apply --env {plan.env}` to apply")
    return "\n".join(lines) + "\n"


def _change_title(change: ModelChange) -> str:
    champion = f"v{change.champion}" if change.champion is not None else "none"
    verdict = "rollback to a former Production version" if change.rollback else change.comparison.decision
    return f"{change.model} {change.alias}: {champion} -> v{change.challenger} ({verdict})"


# --- markdown --------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def render_markdown(plan: Plan, validation: ValidationReport | None = None) -> str:
    """The plan as a PR comment / job summary: validation, drift, configs, a table per profile,
    lifecycle changes and the champion-vs-challenger table of every model change."""
    out = [f"## Release plan: `{plan.env}` at `{plan.commit[:12]}`", ""]
    out.append(
        f"Last applied commit: `{_short(plan.applied_commit)}`. "
        + (f"**{len(plan.actions)} action(s)**." if plan.actions else "**In sync: nothing to do.**")
    )
    out.append("")
    if validation is not None:
        out += _validation_section(validation)
    if plan.verdicts:
        out += _policy_section(plan)
    if plan.drift:
        out.append(
            f"> [!WARNING]\n> **Drift**: {len(plan.drift)} live value(s) were changed outside git; "
            "apply restores them."
        )
        out.append("")
        out += _table(["kind", "target", "what"], [(d.kind, f"`{d.target}`", d.detail) for d in plan.drift])
        out.append("")
    if plan.orphans:
        out.append(
            f"> [!WARNING]\n> **Orphans**: {len(plan.orphans)} live value(s) that no manifest of "
            f"`{plan.env}` declares any more. `releases/policy.yaml` has no `prune: true`, so apply "
            "leaves them as they are; with it, apply would retire them as listed."
        )
        out.append("")
        out += _retire_table(plan.orphans)
    configs = [a for a in plan.actions if isinstance(a, ConfigWrite) and not a.retires]
    if configs:
        out += ["### Configs", ""]
        out += _table(
            ["strategy", "action", "change", "reason"],
            [(a.strategy, a.kind, _summary(a), a.reason) for a in configs],
        )
        out.append("")
    verify = [a for a in plan.actions if isinstance(a, VerifyArtifacts)]
    if verify:
        out += ["### Model artifacts", ""]
        out += _table(
            ["tag", "sha256", "profiles", "check"],
            [
                (
                    f"`{a.tag}`",
                    f"`{_short(a.sha256)}`",
                    ", ".join(map(str, a.profiles)),
                    "sha256 + every blob's content, before any write",
                )
                for a in verify
            ],
        )
        out.append("")
    for profile in plan.profiles():
        rows = [
            a for a in plan.actions
            if isinstance(a, SetAlias | DeleteAlias | WriteProfilePointer) and a.profile == profile
        ]
        if not rows:
            continue
        out += [f"### Profile {profile}", ""]
        out += _table(
            ["change", "target", "from -> to", "reason"],
            [(a.kind, f"`{a.target}`", _summary(a), a.reason) for a in rows],
        )
        out.append("")
    deploys = [a for a in plan.actions if isinstance(a, DeployBot)]
    if deploys:
        out += [f"### Bots ({deploys[0].deployed_on})", ""]
        out += _table(
            ["bot", "runs after apply", "reason"],
            [(f"`{a.bot}`", _summary(a), a.reason) for a in deploys],
        )
        out.append("")
    retire = [a for a in plan.actions if a.retires]
    if retire:
        out += ["### Retire (prune)", ""]
        out += _retire_table(retire)
    lifecycle = [a for a in plan.actions if isinstance(a, LifecycleWrite) and not a.retires]
    if lifecycle:
        out += ["### Model lifecycle", ""]
        out += _table(
            ["model", "version", "from", "to", "reason"],
            [
                (a.model, a.version, a.from_, a.to, a.reason)
                for a in lifecycle
            ],
        )
        out.append("")
    for change in plan.model_changes:
        out += _comparison_section(change)
    return "\n".join(out).rstrip() + "\n"


def _policy_section(plan: Plan) -> list[str]:
    """Each verdict of releases/policy.yaml on applying the plan now; a blocked one first as a caution."""
    lines = []
    blocked = [v for v in plan.verdicts if v.blocked]
    if blocked:
        first = blocked[0].message
        lines += [f"> [!CAUTION]\n> **Blocked by policy**: apply refuses this plan now. {first}", ""]
    lines += ["### Policy (`releases/policy.yaml`)", ""]
    rows = []
    for verdict in plan.verdicts:
        state = "overridden" if verdict.override is not None else ("ok" if verdict.allowed else "**blocked**")
        rows.append((verdict.rule, f"`{verdict.subject}`", state, verdict.message, verdict.clears_at or "-"))
    lines += _table(["rule", "subject", "verdict", "why", "clears at"], rows)
    return [*lines, ""]


def _retire_table(actions: Sequence[Action]) -> list[str]:
    rows = [(a.kind, f"`{a.target}`", _summary(a), a.reason) for a in actions]
    return [*_table(["retire", "target", "change", "reason"], rows), ""]


def _validation_section(report: ValidationReport) -> list[str]:
    mode = "offline" if report.offline else "offline + live"
    if report.ok:
        return [
            f"**Validation** ({mode}): passed for {report.strategies} strategies and "
            f"{report.manifests} manifests.",
            "",
        ]
    lines = [f"**Validation** ({mode}): **{len(report.problems)} problem(s)**", ""]
    lines += [f"- `{p.file}`: `{p.field}`: {p.reason}" for p in report.problems]
    return [*lines, ""]


def _comparison_section(change: ModelChange) -> list[str]:
    comparison = change.comparison
    champion = f"v{change.champion}" if change.champion is not None else "none"
    title = (
        f"#### `{change.model}` profile {change.profile} (`{change.alias}`): "
        f"{champion} -> v{change.challenger}"
    )
    if change.rollback:
        verdict = "rollback to a version that was Production before: no comparison required"
    else:
        verdict = f"comparator: **{comparison.decision}**"
    lines = [title, "", verdict, ""]
    rows = []
    for row in comparison.rows:
        passed = "-" if row.passed is None else ("pass" if row.passed else "FAIL")
        need = f"{row.operator} {row.threshold:g}" + ("" if row.required else " (optional)")
        rows.append((row.metric, _metric(row.champion), _metric(row.challenger), need, passed))
    lines += _table(
        ["metric", f"champion {champion}", f"challenger v{change.challenger}", "threshold", "result"], rows
    )
    if comparison.score_challenger is not None:
        lines += [
            "",
            f"weighted score: challenger {comparison.score_challenger:g}, "
            f"champion {comparison.score_champion:g}",
        ]
    lines += [""] + [f"- {reason}" for reason in comparison.reasons]
    return [*lines, "", *_equity_chart(change)]


# Mermaid draws an xychart's lines in palette order and shows no legend: the caption names them.
EQUITY_COLOURS = (("grey", "#6b7280"), ("blue", "#2563eb"))
EQUITY_POINTS = 40  # per line: enough for the shape, small enough for a comment


def _equity_chart(change: ModelChange) -> list[str]:
    """Champion vs challenger equity on the held-out window as a Mermaid xychart (GitHub renders it)."""
    import json

    curves = [(f"challenger v{change.challenger}", change.challenger_equity)]
    if change.champion is not None:
        curves.insert(0, (f"champion v{change.champion}", change.champion_equity))
    missing = [label for label, curve in curves if curve is None]
    drawn = [(label, curve) for label, curve in curves if curve is not None]
    if not drawn:
        return [f"_No held-out equity curve recorded for {' or '.join(missing)}._", ""]
    series = [curve.resampled(EQUITY_POINTS) for _, curve in drawn]
    low = min(min(values) for values in series)
    high = max(max(values) for values in series)
    pad = max((high - low) * 0.08, 0.005)
    colours = EQUITY_COLOURS[-len(drawn):] if len(drawn) == 1 else EQUITY_COLOURS
    init = {"themeVariables": {"xyChart": {"plotColorPalette": ", ".join(c for _, c in colours)}}}
    title = f"{change.model} p{change.profile}: equity on the held-out window".replace('"', "'")
    lines = [
        "```mermaid",
        f"%%{{init: {json.dumps(init)}}}%%",
        "xychart-beta",
        f'    title "{title}"',
        '    x-axis "held-out window (%)" 0 --> 100',
        f'    y-axis "equity (start = 1)" {low - pad:.4f} --> {high + pad:.4f}',
    ]
    lines += [f"    line [{', '.join(f'{value:.4f}' for value in values)}]" for values in series]
    lines += ["```", ""]
    caption = "; ".join(
        f"{name} line: {label}, final equity {curve.final:.4f} over {curve.candles} candles"
        + (f" ({curve.start[:10]} to {curve.end[:10]})" if curve.start and curve.end else "")
        for (name, _), (label, curve) in zip(colours, drawn, strict=True)
    )
    absent = f" No curve recorded for {', '.join(missing)}." if missing else ""
    lines += [f"Equity: {caption}.{absent}", ""]
    return lines


# --- deployments -----------------------------------------------------------------------------------------


def render_deployment(deployment: Deployment) -> str:
    """The outcome of an apply for a terminal."""
    if deployment.deployment_id is None:
        return f"{deployment.env} is in sync with {deployment.commit[:12]}: nothing to do (nothing written)\n"
    lines = [
        f"deployment {deployment.deployment_id}: {deployment.outcome} "
        f"({deployment.env} at {deployment.commit[:12]}, by {deployment.actor}, trace {deployment.trace_id})"
    ]
    for number, action in enumerate(deployment.actions, 1):
        lines.append(f"{number:>3}. [{action.get('status')}] {action.get('kind')} {action.get('target')}")
    if deployment.error:
        lines.append(f"error: {deployment.error}")
    return "\n".join(lines) + "\n"
