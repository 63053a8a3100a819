"""Settings: every backend URI and credential, from ``TRADAI_*`` variables and ``.env``."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import MissingCredentials, SettingsError

DeployTargetName = Literal["none", "env-file", "ecs"]
"""Where apply puts each bot's pins (docs/architecture.md §14): nowhere, a host env file, an ECS service."""

ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
"""What an environment may be called: safe in table and bucket names, object keys and paths.
Which environments exist is the repository's to say (``releases/policy.yaml``), not the settings'."""


class EnvOverrides(BaseModel):
    """Per-environment replacements of the URI templates (``TRADAI_ENVS__PROD__MLFLOW_TRACKING_URI``)."""

    config_store_uri: str | None = None
    config_table_uri: str | None = None
    release_table_uri: str | None = None
    mlflow_tracking_uri: str | None = None
    deploy_target: DeployTargetName | None = None
    ecs_launch_type: str | None = None
    live_trading: bool | None = None


@dataclass(frozen=True)
class Backends:
    """The resolved backend URIs of one environment."""

    env: str
    config_store_uri: str
    config_table_uri: str
    release_table_uri: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    hub_uri: str


class Settings(BaseSettings):
    """All settings of tradai-release.

    URI templates may use ``{env}`` and ``{state_dir}``. The defaults are the
    embedded backends (local directories, SQLite, MLflow on SQLite) under
    ``TRADAI_STATE_DIR``; point them at ``s3://``, ``dynamodb://`` and an
    ``http://`` MLflow server for production.
    """

    model_config = SettingsConfigDict(
        env_prefix="TRADAI_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    state_dir: Path = Path(".tradai")
    repo: Path = Path(".")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """``.env`` is a developer's convenience: with ``CI`` set (every CI runner sets it) it is not read,
        so a file in the checkout can never redirect a job's backends."""
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
            return init_settings, env_settings, file_secret_settings
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    config_store_uri: str = "file://{state_dir}/{env}/configs"
    config_table_uri: str = "sqlite:///{state_dir}/{env}/state.db"
    release_table_uri: str = "sqlite:///{state_dir}/{env}/state.db"
    mlflow_tracking_uri: str = "sqlite:///{state_dir}/{env}/mlflow.db"
    mlflow_artifact_root: str = "{state_dir}/{env}/mlartifacts"
    hub_uri: str = "file://{state_dir}/hub"
    models_dir: Path = Path("models")  # the bundle the hub pushes and pulls; relative = under repo
    envs: dict[str, EnvOverrides] = Field(default_factory=dict)

    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    hub_endpoint_url: str | None = None
    # TRADAI_HUB_REGION: the region an s3:// hub is signed for; unset = "auto" with hub_endpoint_url
    # (what Cloudflare R2 expects), else aws_region. Set it for an S3-API endpoint that wants a real
    # region (MinIO, a moto server).
    hub_region: str | None = None
    r2_access_key_id: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("CF_R2_ACCESS_KEY_ID", "TRADAI_R2_ACCESS_KEY_ID")
    )
    r2_secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CF_R2_SECRET_ACCESS_KEY", "TRADAI_R2_SECRET_ACCESS_KEY"),
    )

    webhook_url: SecretStr | None = None
    # TRADAI_TRACE_ID: a CI job sets it so the records of one run (config versions, deployments) share it.
    trace_id: str | None = None
    # Notifier (tradai_release.domain.notify): per-request timeout, attempts, first backoff delay (doubles).
    notify_timeout_seconds: float = 5.0
    notify_attempts: int = 3
    notify_backoff_seconds: float = 0.5
    # PSI monitoring (domain.monitor): PSI below drift_moderate is stable, above drift_significant
    # significant; the default recent window is the last drift_window_rows candles of a data set.
    drift_moderate: float = 0.1
    drift_significant: float = 0.25
    drift_window_rows: int = 500
    # Retraining check: a live model older than this many days needs retraining, unless the
    # strategy's tradai.yaml sets retraining.max_age_days.
    retrain_max_age_days: int = 30
    # Deployment targets (docs/architecture.md §14): where apply puts each bot's pins after the registries.
    # Templates may use {env}, {state_dir}, {strategy}, {profile}; per env: TRADAI_ENVS__PROD__DEPLOY_TARGET.
    deploy_target: DeployTargetName = "env-file"
    bot_env_dir: str = "{state_dir}/{env}/bots"  # env-file: one <strategy>-p<N>.env per bot
    ecs_cluster: str = "tradai-{env}"
    ecs_service: str = "tradai-{env}-{strategy}-p{profile}"  # also the task definition family
    # The seed: EC2 (consolidated) in dev and staging, Fargate in prod.
    ecs_launch_type: str = "EC2"
    ecs_launch_types: dict[str, str] = Field(default_factory=lambda: {"prod": "FARGATE"})
    ecs_desired_count: int = 1
    ecs_subnets: list[str] = Field(default_factory=list)  # awsvpc networking (Fargate needs subnets)
    ecs_security_groups: list[str] = Field(default_factory=list)
    ecs_execution_role_arn: str | None = None
    ecr_registry: str = ""  # e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com; empty = as pinned
    ecs_reuse_depth: int = 10  # newest revisions of a family searched for one with the same content
    # Bots (docs/architecture.md §17): a bot trades with real orders only where this is true (per env:
    # TRADAI_ENVS__PROD__LIVE_TRADING=true); everywhere else Freqtrade runs with dry_run. Its private run
    # directory (rendered config, trade database) is bot_run_dir; exchange_api_url replaces the exchange's
    # public API address (a loopback stand-in in tests and the demo; unset = the exchange itself).
    live_trading: bool = False
    bot_run_dir: str = "{state_dir}/{env}/run/{strategy}-p{profile}"
    exchange_api_url: str | None = None
    # ECS: the Secrets Manager secret (ARN template, {env}) holding a live environment's exchange keys as
    # JSON {"key": ..., "secret": ...}. The task definition names it; ECS hands the values to the container
    # as FREQTRADE__EXCHANGE__KEY/SECRET at start-up (the execution role reads it). Dry-run bots get none.
    exchange_keys_secret_arn: str | None = None
    # A bot's REST API (Freqtrade's api_server), which `invoke observe` reads (docs/architecture.md §18):
    # where it listens (port 0: a free port picked at start-up, kept in the bot's run-dir config) and the
    # user. The password is never in a file: the bot gets it as FREQTRADE__API_SERVER__PASSWORD (secrets
    # store or environment), observe as TRADAI_BOT_API_PASSWORD. bot_api_url ({env}, {strategy},
    # {profile}, {bot}, {service}) is where observe reaches a bot; unset, the port in its run dir's config
    # on this host (env-file bots).
    bot_api_listen: str = "127.0.0.1"
    bot_api_port: int = Field(default=8080, ge=0, le=65535)
    bot_api_username: str = "tradai"
    bot_api_password: SecretStr | None = None
    bot_api_url: str = ""
    # An apply's lease lock: renewed every third of it while the apply lives; a killed apply's lapses
    # this long after its last renewal, and the next run takes it over.
    lease_seconds: float = 60.0
    deploy_wait_seconds: float = 900.0  # a rollout not stable within this fails the apply; 0 = do not wait
    deploy_poll_seconds: float = 10.0
    # Apply (docs/architecture.md §7): actions of one phase on different keys (strategies, models,
    # profiles, bots) run this many at a time; 1 runs every action in plan order, one after another.
    apply_concurrency: int = Field(default=8, ge=1, le=32)
    # Every registry, table and object-store request: connect and read timeout, and retries after the
    # first attempt. A dead backend fails a call within about (retries + 1) x timeout plus the back-off
    # (MLflow: 0, 2, 4 s; botocore standard mode), about 30 s with these defaults, and a refused
    # connection within seconds; a restart or blip of a few seconds is ridden out by the retries.
    backend_timeout_seconds: float = Field(default=5.0, gt=0)
    backend_retries: int = Field(default=3, ge=0, le=10)
    # Report (``invoke report``): the release repository's web address; commits on the deployments page
    # link to <repository_url>/commit/<sha> (CI sets it to the GitHub repository). Unset: no links.
    repository_url: str | None = None
    actor: str = Field(
        default_factory=lambda: os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "unknown"
    )

    @field_validator("state_dir", "repo")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    def backends(self, env: str) -> Backends:
        """The backend URIs of ``env`` with templates filled in (``env`` is a declared environment's name)."""
        if not ENVIRONMENT_NAME.fullmatch(env):
            raise SettingsError("env", f"{env!r} is not an environment name (lowercase letters, digits, '-')")
        override = self.envs.get(env, EnvOverrides())

        def fill(template: str) -> str:
            return template.format(env=env, state_dir=self.state_dir.as_posix())

        return Backends(
            env=env,
            config_store_uri=fill(override.config_store_uri or self.config_store_uri),
            config_table_uri=fill(override.config_table_uri or self.config_table_uri),
            release_table_uri=fill(override.release_table_uri or self.release_table_uri),
            mlflow_tracking_uri=fill(override.mlflow_tracking_uri or self.mlflow_tracking_uri),
            mlflow_artifact_root=fill(self.mlflow_artifact_root),
            hub_uri=fill(self.hub_uri),
        )

    def deploy_target_of(self, env: str) -> DeployTargetName:
        """The deployment target of ``env``: its override, else ``deploy_target``."""
        override = self.envs.get(env, EnvOverrides()).deploy_target
        return override or self.deploy_target

    def live_trading_of(self, env: str) -> bool:
        """Whether ``env``'s bots trade live: its override, else ``live_trading`` (default: dry run)."""
        override = self.envs.get(env, EnvOverrides()).live_trading
        return self.live_trading if override is None else override

    def launch_type_of(self, env: str) -> str:
        """ECS launch type of ``env``: override, else ``ecs_launch_types[env]``, else ``ecs_launch_type``."""
        override = self.envs.get(env, EnvOverrides()).ecs_launch_type
        launch_type = (override or self.ecs_launch_types.get(env) or self.ecs_launch_type).upper()
        if launch_type not in ("EC2", "FARGATE", "EXTERNAL"):
            raise SettingsError("ecs_launch_type", f"{launch_type!r} is not EC2, FARGATE or EXTERNAL")
        return launch_type

    def fill(self, template: str, field: str, **values: object) -> str:
        """``template`` with ``{state_dir}`` and ``values`` filled in; a bad template is a SettingsError."""
        try:
            return template.format(state_dir=self.state_dir.as_posix(), **values)
        except (KeyError, IndexError, ValueError) as err:
            raise SettingsError(field, f"bad template {template!r}: {err}") from None

    def new_trace_id(self) -> str:
        """The trace id of this run: ``trace_id`` when set, else a fresh random one."""
        return self.trace_id or uuid.uuid4().hex

    def models_path(self) -> Path:
        """``models_dir`` resolved: a relative path is taken under ``repo``."""
        return (self.repo / self.models_dir.expanduser()).resolve()

    def aws(self) -> AwsOptions:
        """How to reach S3/DynamoDB for configs and release state (standard AWS credential chain)."""
        return AwsOptions(
            endpoint_url=self.aws_endpoint_url,
            region=self.aws_region,
            timeout_seconds=self.backend_timeout_seconds,
            retries=self.backend_retries,
        )

    def hub_aws(self) -> AwsOptions:
        """How to reach the model hub; an ``s3://`` hub needs the ``CF_R2_*`` credentials."""
        if not self.hub_uri.startswith("s3://"):
            return AwsOptions()
        if self.r2_access_key_id is None:
            raise MissingCredentials("CF_R2_ACCESS_KEY_ID", "model hub access")
        if self.r2_secret_access_key is None:
            raise MissingCredentials("CF_R2_SECRET_ACCESS_KEY", "model hub access")
        return AwsOptions(
            endpoint_url=self.hub_endpoint_url,
            region=self.hub_region or ("auto" if self.hub_endpoint_url else self.aws_region),
            access_key_id=self.r2_access_key_id.get_secret_value(),
            secret_access_key=self.r2_secret_access_key.get_secret_value(),
            timeout_seconds=self.backend_timeout_seconds,
            retries=self.backend_retries,
        )
