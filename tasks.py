"""invoke tasks: thin, typed wrappers that parse flags, call one library function and render.

Heavy libraries are imported inside the task bodies so ``invoke --list`` stays fast.
"""

from __future__ import annotations

from invoke import Collection, Context, Task, task

from tradai_release.cli import handle_errors

# --- foundation: validate / hash / diff -------------------------------------------------------------


@task
@handle_errors
def demo(c: Context) -> None:
    """Run the whole release loop on the embedded default, in a scratch repository."""
    from tradai_release.errors import TradaiError

    raise TradaiError("the demo arrives with the GitOps engine issue; see the README")


@task(help={"quick": "skip the end-to-end tests (marked e2e) that start moto_server and mlflow server"})
def test(c: Context, quick: bool = False) -> None:
    """Run the test suite (unit + end-to-end); --quick skips the slow end-to-end tests."""
    marker = ' -m "not e2e"' if quick else ""
    c.run(f"python -m pytest -q{marker}", pty=False)


# --- namespace ----------------------------------------------------------------------------------------

STRATEGY_TASKS: dict[str, Task] = {}

ns = Collection()
for _name, _obj in list(globals().items()):
    if isinstance(_obj, Task) and _obj not in STRATEGY_TASKS.values():
        ns.add_task(_obj)
if STRATEGY_TASKS:
    _strategy = Collection("strategy")
    for _name, _obj in STRATEGY_TASKS.items():
        _strategy.add_task(_obj, name=_name)
    ns.add_collection(_strategy)
