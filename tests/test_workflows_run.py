"""The workflow files run for real: nektos/act in host mode runs release.yml, plan.yml and drift.yml (and
pages.yml, which release and drift call) on a scratch copy of this repository, against moto_server and one
mlflow server per environment on loopback. Each job installs the project in a fresh venv, so a job that
installs less than its steps import fails here as it would on GitHub (tests/act/README.md)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from act_runner import REPOSITORY, SOURCE, URL, UV_CACHE, WHEELHOUSE, Act, build_wheelhouse, warm_uv_cache
from forked_cli import run_invoke
from helpers import git
from servers import Server, start_mlflow, start_moto
from tradai_release.engine.context import ReleaseContext
from tradai_release.registry.adapter import MlflowRegistry
from tradai_release.repository.environments import environment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ENVS = ("dev", "staging", "prod")
ZERO = "0" * 40


@dataclass
class World:
    """A scratch release repository bootstrapped against loopback backends, and act over it."""

    repo: Path
    remote: Path
    act: Act
    environment: dict[str, str]  # what the workflows' variables and secrets set, for the test's own calls
    secrets: dict[str, str]
    uid: str

    def invoke(self, *args: str) -> subprocess.CompletedProcess[str]:
        """An invoke task of the scratch repository against the same backends, from the test's venv."""
        return run_invoke(list(args), self.repo, {**os.environ, **self.environment, "COLUMNS": "200"}, 600)

    def push(self, *refspecs: str) -> None:
        git(self.repo, "push", "-q", "--force", str(self.remote), *refspecs)

    def head(self) -> str:
        return git(self.repo, "rev-parse", "HEAD")

    def settings(self) -> Any:
        from tradai_release.core.settings import Settings

        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.environment.items():
                patch.setenv(name, value)
            return Settings(repo=self.repo)

    def event(self, **fields: Any) -> dict[str, Any]:
        owner, name = REPOSITORY.split("/")
        repository = {"full_name": REPOSITORY, "name": name, "owner": {"login": owner},
                      "default_branch": "main", "clone_url": URL}
        return {"repository": repository, **fields}


def copy_project(target: Path) -> None:
    """This checkout's files (tracked, and new ones git does not ignore), as the working tree has them."""
    listed = subprocess.run(["git", "-C", str(SOURCE), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    for name in sorted({item.decode() for item in listed.split(b"\0") if item}):
        origin = SOURCE / name
        if origin.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / name)


def subnet(moto_server: str) -> str:
    """A subnet on moto (it checks that a Fargate service's subnets exist)."""
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=moto_server, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_id: str = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    return subnet_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("workflows")
    uid = uuid.uuid4().hex[:8]
    with ThreadPoolExecutor(4) as pool:
        wheels = pool.submit(lambda: warm_uv_cache(UV_CACHE, build_wheelhouse(WHEELHOUSE)))
        # Its own moto_server, not the run's: ECS task-definition families (tradai-prod-<S>-p<N>) are
        # account-wide, and test_deploy_e2e counts the revisions of one.
        own_moto = pool.submit(start_moto, root)
        for env in ENVS:
            (root / f"mlflow-{env}").mkdir()
        started = pool.map(lambda env: start_mlflow(root / f"mlflow-{env}"), ENVS)
        servers: dict[str, Server] = dict(zip(ENVS, started, strict=True))
        servers["moto"] = own_moto.result()
        uv_cache, wheelhouse = wheels.result(), WHEELHOUSE
    moto_server = servers["moto"].url
    try:
        variables = {
            "TRADAI_AWS_ENDPOINT_URL": moto_server,
            "TRADAI_CONFIG_STORE_URI": f"s3://tradai-configs-{{env}}-{uid}",
            "TRADAI_CONFIG_TABLE_URI": f"dynamodb://tradai-config-versions-{{env}}-{uid}",
            "TRADAI_RELEASE_TABLE_URI": f"dynamodb://tradai-releases-{{env}}-{uid}",
            "TRADAI_HUB_URI": f"s3://tradai-hub-{uid}",
            "TRADAI_HUB_ENDPOINT_URL": moto_server,
            "TRADAI_HUB_REGION": "us-east-1",
            "TRADAI_DEPLOY_TARGET": "ecs",
            "TRADAI_ECS_CLUSTER": f"tradai-{{env}}-{uid}",
            "TRADAI_ECS_SUBNETS": json.dumps([subnet(moto_server)]),  # prod runs on Fargate
            "TRADAI_DEPLOY_WAIT_SECONDS": "0",  # moto's services never run tasks (the wait is unit-tested)
            **{f"TRADAI_ENVS__{env.upper()}__MLFLOW_TRACKING_URI": servers[env].url for env in ENVS},
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/tradai-apply",
            "AWS_PLAN_ROLE_ARN": "arn:aws:iam::123456789012:role/tradai-plan",
            "AWS_REPORT_ROLE_ARN": "arn:aws:iam::123456789012:role/tradai-report",
            "AWS_REGION": "us-east-1",
        }
        secrets = {  # no value is a part of another: a test finds each in the steps' environments
            # the write credentials (on GitHub: secrets of the dev/staging/prod environments)
            "CF_R2_ACCESS_KEY_ID": f"r2-key-{uid}",
            "CF_R2_SECRET_ACCESS_KEY": f"r2-secret-{uid}",
            "MLFLOW_TRACKING_TOKEN": f"mlflow-token-{uid}",
            "RETRAIN_PR_TOKEN": f"pr-token-{uid}",
            "BOT_API_PASSWORD": f"bot-api-{uid}",  # the bots' REST API (progress.yml's observe step)
            # the read-only ones of plan and pages (repository secrets)
            "READ_R2_ACCESS_KEY_ID": f"ro-key-{uid}",
            "READ_R2_SECRET_ACCESS_KEY": f"ro-secret-{uid}",
            "READ_MLFLOW_TRACKING_TOKEN": f"ro-mlflow-{uid}",
        }
        repo = root / "repo"
        copy_project(repo)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "remote", "add", "origin", URL)  # act names the repository after origin
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "release repository")
        remote = root / "remote.git"
        git(root, "init", "-q", "--bare", str(remote))
        git(remote, "config", "uploadpack.allowAnySHA1InWant", "true")  # checkout fetches by commit
        environment = {
            **{k: v for k, v in variables.items() if k.startswith("TRADAI_")},
            "CF_R2_ACCESS_KEY_ID": secrets["CF_R2_ACCESS_KEY_ID"],
            "CF_R2_SECRET_ACCESS_KEY": secrets["CF_R2_SECRET_ACCESS_KEY"],
            # what the credentials step gives the jobs (a module fixture runs outside the tests' own)
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        # GitHub's own job token: act asks `gh auth token` for one when it is not given
        token = {"GITHUB_TOKEN": f"github-token-{uid}"}
        act = Act(root, repo, remote, wheelhouse, uv_cache, {**secrets, **token}, variables)
        world = World(repo, remote, act, environment, secrets, uid)
        for env in ENVS:
            provisioned = world.invoke("provision", "--env", env)
            assert provisioned.returncode == 0, provisioned.stderr
        booted = world.invoke("bootstrap", "--no-apply", "--json")
        assert booted.returncode == 0, booted.stderr
        assert json.loads(booted.stdout)["changed"] == []  # the committed pins are what bootstrap made
        world.push("main")
        yield world
    finally:
        for server in servers.values():
            server.stop()


def snapshot(world: World) -> dict[str, Any]:
    """Everything the backends of the world hold: objects, table items, ECS services, registry versions."""
    import boto3
    from mlflow import MlflowClient

    moto = world.environment["TRADAI_AWS_ENDPOINT_URL"]
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
    dynamodb = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1")
    ecs = boto3.client("ecs", endpoint_url=moto, region_name="us-east-1")
    state: dict[str, Any] = {}
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"] if world.uid in b["Name"]):
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        state[f"s3://{bucket}"] = sorted((o["Key"], o["ETag"], o["LastModified"].isoformat()) for o in listed)
    for table in (t for t in dynamodb.list_tables()["TableNames"] if world.uid in t):
        items = dynamodb.scan(TableName=table)["Items"]
        state[f"dynamodb://{table}"] = sorted(json.dumps(item, sort_keys=True) for item in items)
    for env in ENVS:
        cluster = f"tradai-{env}-{world.uid}"
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        described = ecs.describe_services(cluster=cluster, services=arns)["services"] if arns else []
        state[f"ecs://{cluster}"] = sorted(
            (s["serviceName"], s["taskDefinition"], s["desiredCount"]) for s in described)
        client = MlflowClient(world.environment[f"TRADAI_ENVS__{env.upper()}__MLFLOW_TRACKING_URI"])
        state[f"mlflow:{env}"] = sorted(
            (v.name, v.version, v.current_stage, v.last_updated_timestamp, sorted(v.tags.items()),
             sorted(v.aliases))
            for v in client.search_model_versions())
    return state


def push_event(world: World, sha: str, before: str = ZERO) -> dict[str, Any]:
    return world.event(ref="refs/heads/main", before=before, after=sha)


def test_release_applies_every_environment_on_a_push_and_the_same_push_again_writes_nothing(
    world: World,
) -> None:
    from tradai_release.engine.deployments import list_deployments
    from tradai_release.engine.plan import plan_env

    sha = world.head()
    run = world.act.run("push", "release.yml", push_event(world, sha))
    assert run.ok, run.failures()
    assert {"changes", "apply", "build", "deploy"} <= run.jobs_run()

    settings = world.settings()
    for env in ENVS:  # checked in the backends, not in act's log
        deployments = list_deployments(settings, environment(settings, env))
        assert [(d.commit, d.outcome) for d in deployments] == [(sha, "succeeded")], env
        assert plan_env(ReleaseContext.open(settings, env)).empty, env
    assert [role for job, role in run.assumed_roles() if job == "apply"] == [
        "arn:aws:iam::123456789012:role/tradai-apply"] * len(ENVS)
    assert [role for job, role in run.assumed_roles() if job == "build"] == [
        "arn:aws:iam::123456789012:role/tradai-report"]  # the board's read-only role, not the apply role
    site = run.record / "pages"
    assert (site / "index.html").is_file() and (site / ".nojekyll").is_file()
    assert sha[:12] in (site / "deployments.html").read_text()
    # The write credentials reach the apply step and nothing else (no install, no other job); the
    # board's build step gets the read-only ones.
    for name in ("CF_R2_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_TOKEN"):
        assert {step for step in run.seen_by(world.secrets[name])} == {
            ("apply", 'invoke apply --env "$APPLY_ENV" --commit "$GITHUB_SHA" | tee apply.txt')}, name
    for name in ("READ_R2_SECRET_ACCESS_KEY", "READ_MLFLOW_TRACKING_TOKEN"):
        assert {step for step in run.seen_by(world.secrets[name])} == {
            ("build", "invoke report --out site | tee report.txt")}, name

    before = snapshot(world)
    again = world.act.run("push", "release.yml", push_event(world, sha))
    assert again.ok, again.failures()
    in_sync = rf"\]\s+\| (\w+) is in sync with {sha[:12]}: nothing to do \(nothing written\)$"
    said = re.findall(in_sync, again.log, flags=re.MULTILINE)
    assert sorted(said) == sorted(ENVS)
    assert snapshot(world) == before


def test_plan_comments_the_plan_on_a_same_repository_pull_request_and_gives_a_fork_no_secret(
    world: World,
) -> None:
    from tradai_release.repository.manifest_edit import edit_manifest

    base = world.head()
    git(world.repo, "checkout", "-q", "-b", "drop-kepler-p3")
    try:
        with edit_manifest(world.repo / "releases" / "prod" / "profile-3.yaml") as editor:
            editor.remove_strategy("KeplerStrategy")
        git(world.repo, "commit", "-q", "-am", "prod p3 stops running KeplerStrategy")
        head = world.head()
        world.push("drop-kepler-p3", f"{head}:refs/pull/7/head")

        def pull_request(number: int, full_name: str) -> dict[str, Any]:
            return world.event(number=number, pull_request={
                "number": number,
                "base": {"sha": base, "ref": "main", "repo": {"full_name": REPOSITORY}},
                "head": {"sha": head, "ref": "drop-kepler-p3", "repo": {"full_name": full_name}},
            })

        run = world.act.run("pull_request", "plan.yml", pull_request(7, REPOSITORY))
        assert run.ok, run.failures()
        expected = world.invoke("plan", "--env", "prod", "--commit", head, "--format", "markdown")
        assert expected.returncode == 0, expected.stderr
        assert "KeplerStrategy@p3" in expected.stdout
        comments = run.comments()
        assert [c["issue_number"] for c in comments] == [7]
        assert comments[0]["body"] == "<!-- tradai-plan:prod -->\n" + expected.stdout
        assert run.assumed_roles() == [("plan", "arn:aws:iam::123456789012:role/tradai-plan")]
        # The pull request's code gets the read-only credentials, in the two steps that read the backends;
        # the offline job and the installs get none, and no step gets a write credential.
        for name in ("READ_R2_SECRET_ACCESS_KEY", "READ_MLFLOW_TRACKING_TOKEN"):
            assert {step for step in run.seen_by(world.secrets[name])} == {
                ("plan", 'invoke validate --deep --base "$BASE_SHA"'),
                ("plan", 'invoke plan --env "$PLAN_ENV" --commit HEAD --format markdown > plan.md')}, name
        for name in ("CF_R2_ACCESS_KEY_ID", "CF_R2_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_TOKEN",
                     "RETRAIN_PR_TOKEN"):
            assert run.seen_by(world.secrets[name]) == [], name

        fork = world.act.run("pull_request", "plan.yml", pull_request(8, "someone/tradai-release"))
        assert fork.ok, fork.failures()
        assert fork.jobs_run() == {"changes"} and fork.comments() == [] and fork.assumed_roles() == []
        steps = list(fork.step_environments())
        assert steps, "the bash wrapper recorded no step"
        leaked = [(job, name) for job, env in steps for name, value in env.items()
                  for secret in world.secrets.values() if secret in value]
        assert leaked == []
    finally:
        git(world.repo, "checkout", "-q", "main")


def test_drift_dispatch_trains_once_in_the_first_environment_and_opens_one_pull_request(world: World) -> None:
    """A dispatch for prod with a manual request: prod's check, the retraining set (one strategy), one matrix
    job that trains it once and registers it in dev (the first environment), and the final job that pushes
    its branch and opens the pull request."""
    from tradai_release.demo import DEMO_STRATEGY, DEMO_TWEAK

    path = world.repo / "strategies" / DEMO_STRATEGY / "ml_config.json"
    config = json.loads(path.read_text())
    config.update(DEMO_TWEAK)
    path.write_text(json.dumps(config, indent=2) + "\n")
    git(world.repo, "commit", "-q", "-am", f"{DEMO_STRATEGY}: the demo's tweak")
    world.push("main")

    event = world.event(inputs={"env": "prod", "retrain": DEMO_STRATEGY, "propose": "true"})
    run = world.act.run("workflow_dispatch", "drift.yml", event)
    assert run.ok, run.failures()
    assert run.jobs_run() >= {"envs", "monitor", "set", "retrain", "propose"}

    branches = git(world.remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/retrain").split()
    assert branches == [f"retrain/dev-{DEMO_STRATEGY}-v2"], branches
    branch = branches[0]
    message = git(world.remote, "log", "-1", "--format=%B", branch)
    calls = run.gh_calls()
    assert calls[0] == ["auth", "setup-git"]
    title, _, body = message.partition("\n\n")
    assert title == f"retrain: promote {DEMO_STRATEGY} v2 in dev (profiles 1, 2, 3, 4, 5)"
    assert calls[1] == ["pr", "create", "--base", "main", "--head", branch, "--title", title, "--body", body]
    retraining = json.loads((run.record / "artifacts" / "check-prod" / "check-prod.json").read_text())
    assert retraining["env"] == "prod"
    outcomes = run.record / "artifacts" / f"retrain-{DEMO_STRATEGY}"
    assert (outcomes / f"retrain-{DEMO_STRATEGY}.bundle").is_file()
    assert (run.record / "pages" / "index.html").is_file()
    # Trained once: a version in dev's registry only; staging and prod hold version 1 alone.
    settings = world.settings()
    held = {env: [v.version for v in MlflowRegistry.for_env(environment(settings, env), settings)
                  .versions([DEMO_STRATEGY])[DEMO_STRATEGY]] for env in ENVS}
    assert held == {"dev": [1, 2], "staging": [1], "prod": [1]}
    # The GitHub token reaches only the final job's step that pushes and opens the pull request, which runs
    # no project code; training has the first environment's credentials and no token.
    assert run.seen_by(world.secrets["RETRAIN_PR_TOKEN"]) == [("propose", "gh auth setup-git")]
    writes = set(run.seen_by(world.secrets["MLFLOW_TRACKING_TOKEN"]))
    assert ("retrain", 'git config user.name "tradai-retrain[bot]"') in writes
    assert all(job in ("monitor", "retrain") and "pip install" not in first and "gh auth" not in first
               for job, first in writes), writes


class BotsStandIn:
    """Freqtrade's REST API of every bot of prod, on one loopback port (``/<bot>/api/v1/...``): the
    PascalStrategy bots run v2 and are having a bad day (20 % drawdown); the others run v1, quietly."""

    def __init__(self, password: str, files: str) -> None:
        import base64
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        expected = "Basic " + base64.b64encode(f"tradai:{password}".encode()).decode()
        started = int(time.time()) - 6 * 3600
        self.asked: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler) -> None:
                bot, _, call = handler.path.strip("/").partition("/api/v1/")
                self.asked.append(f"{bot} {call}")
                if handler.headers.get("Authorization") != expected:
                    handler._send(401, {"detail": "Unauthorized"})
                    return
                pascal = bot.startswith("PascalStrategy-")
                answers = {
                    "show_config": {"strategy_version": (f"PascalStrategy v2 files {files}" if pascal
                                                         else f"{bot.split('-')[0]} v1"), "dry_run": True},
                    "profit": {"profit_closed_ratio": -0.05 if pascal else 0.01, "closed_trade_count": 5,
                               "max_drawdown": 0.2 if pascal else 0.02,
                               "bot_start_timestamp": started * 1000},
                    "count": {"current": 1, "max": 1},
                    "health": {"last_process_ts": int(time.time()), "bot_start_ts": started},
                }
                handler._send(200, answers.get(call, {"detail": "Not Found"}))

            def _send(handler, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                handler.send_response(status)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data)

            def log_message(handler, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_progress_observes_the_bots_and_a_breach_becomes_a_merged_pull_request_once(world: World) -> None:
    """After the drift dispatch's retrain branch (PascalStrategy v2 in dev) is merged and v2 is promoted
    with --from to staging and prod, the hourly
    progress.yml reads every bot over its REST API (a loopback stand-in), and the breach of the v2 bots
    becomes one rollback branch, its pull request and, as the policy says, its merge; run again on the
    same evidence, it proposes nothing."""
    from tradai_release.engine.release_table import ReleaseTable
    from tradai_release.engine.state import EngineBackends

    retrain = git(world.remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/retrain").split()[0]
    git(world.repo, "fetch", "-q", str(world.remote), f"{retrain}:{retrain}")
    git(world.repo, "merge", "-q", "--no-ff", retrain, "-m", f"Merge {retrain}")
    # The challenger trained once in dev moves on as the same artifact: dev -> staging -> prod.
    for source, target in (("dev", "staging"), ("staging", "prod")):
        done = world.invoke("promote", "--from", source, "--env", target, "--profile", "all",
                            "--strategy", "PascalStrategy", "--version", "2")
        assert done.returncode == 0, done.stderr
        git(world.repo, "commit", "-q", "-am", f"promote PascalStrategy v2 {source} -> {target}")
    moved = [n for n in range(1, 6) if "production: 2" in
             (world.repo / "releases" / "prod" / f"profile-{n}.yaml").read_text().split("PascalStrategy:")[1]]
    assert moved, "the retrain branch promoted PascalStrategy v2 nowhere"
    (world.repo / "releases" / "policy.yaml").write_text(
        "waves:\n  prod: [[1], [2, 3], [4, 5]]\nverification:\n  prod:\n    soak: 24h\n    rollback: merge\n"
        "    production: {max_drawdown: 0.10}\n")
    git(world.repo, "add", "-A")
    git(world.repo, "commit", "-q", "-m", "prod: waves and live verification")
    world.push("main")

    bots = BotsStandIn(world.secrets["BOT_API_PASSWORD"], "ab" * 32)
    try:
        world.act.add_variables({"TRADAI_BOT_API_URL": bots.url + "/{bot}"})
        event = world.event(inputs={"env": "prod"})
        run = world.act.run("workflow_dispatch", "progress.yml", event)
        assert run.ok, run.failures()
        again = world.act.run("workflow_dispatch", "progress.yml", event)
        assert again.ok, again.failures()
    finally:
        bots.close()

    branch = "progress/prod-PascalStrategy-rollback-v2-to-v1-" + "-".join(f"p{n}" for n in moved)
    assert git(world.remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/progress").split() == [
        branch]
    message = git(world.remote, "log", "-1", "--format=%B", branch)
    where = ", ".join(f"p{n}" for n in moved)
    assert f"progress (rollback): v2 breached the production rules in {where}" in message
    assert f"- PascalStrategy-p{moved[0]} v2: max_drawdown 0.2000 over 6.0 h (limit 0.1000)" in message
    calls = run.gh_calls()
    title = message.split("\n", 1)[0]
    creates = [c for c in calls if c[:2] == ["pr", "create"]]
    assert len(creates) == 1 and creates[0][5] == branch and creates[0][7] == title
    assert [c for c in calls if c[:2] == ["pr", "merge"]] == [
        ["pr", "merge", "https://github.com/acme/tradai-release/pull/101", "--merge"]]
    assert not [c for c in again.gh_calls() if c[:2] in (["pr", "create"], ["pr", "merge"])]  # once
    # every bot was read with the password, none without; the readings name what each bot runs
    assert bots.asked and all(" " in entry for entry in bots.asked)
    settings = world.settings()
    table = EngineBackends.from_settings(settings, environment(settings, "prod")).releases
    readings = ReleaseTable(table, "prod").live_results("PascalStrategy")
    assert {r.model_version for r in readings if r.answered} == {2}
    assert {r.files_sha256 for r in readings} == {"ab" * 32}
    # the API password reaches the observe step only; the token only the steps that hold no project code
    assert {step for step in run.seen_by(world.secrets["BOT_API_PASSWORD"])} == {
        ("verify", 'invoke observe --env "$PROGRESS_ENV" | tee observe.txt')}
