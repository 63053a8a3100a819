"""Terminal output of ``invoke bootstrap``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradai_release.render import console

if TYPE_CHECKING:
    from tradai_release.workflows.bootstrap import BootstrapResult


def render_bootstrap(result: BootstrapResult) -> None:
    """Tag, versions per env, pins rewritten, and each env's apply outcome."""
    out = console()
    state = "pushed" if result.pushed else "already in the hub, reused"
    out.print(f"hub tag {result.tag} ({state}) sha256 {result.sha256}")
    for strategy, metrics in sorted(result.metrics.items()):
        shown = ", ".join(f"{name} {value:.3g}" for name, value in sorted(metrics.items()))
        reused = " (unchanged: training reused)" if strategy in result.reused else ""
        out.print(f"  {strategy}{reused}: {shown}")
    for env, versions in result.versions.items():
        pins = ", ".join(f"{name} v{version}" for name, version in sorted(versions.items()))
        out.print(f"{env}: registered {pins}")
    if result.changed:
        verb = "commit them, then `invoke apply`"
        if result.committed:
            verb = f"committed as {result.committed[:12]}"
        out.print(f"pins rewritten in {len(result.changed)} manifests ({verb}):")
        for path in result.changed:
            out.print(f"  {path}")
    else:
        out.print("the committed pins already match: nothing to commit")
    for env, applied in result.applied.items():
        actions = len(applied.get("actions", []))
        deployment = applied.get("deployment_id")
        out.print(f"{env}: apply {applied.get('outcome')} ({actions} actions, deployment {deployment})")
