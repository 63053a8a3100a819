"""The project's exceptions: one root, each subclass formats its own message."""

from __future__ import annotations


class TradaiError(Exception):
    """Root of every error the user can act on; the task handler prints it as one line.

    Anything that is not a ``TradaiError`` is a bug and keeps its traceback.
    """

    def __init__(self, message: str) -> None:
        from tradai_release.core.redact import scrub_text

        message = scrub_text(message)  # a URL's user:password, a credential variable's value: never shown
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(TradaiError):
    """A file the user wrote is wrong: ``<file>: <field>: <reason>``."""

    def __init__(self, file: str, field: str, reason: str) -> None:
        self.file = file
        self.field = field
        self.reason = reason
        super().__init__(f"{file}: {field}: {reason}")


class PinMismatch(InputError):
    """A bot's start-up found a live value other than the one pinned for it (by its deployment's
    variables, or by the last apply): ``<where>: <variable>: <subject> is <actual>, <pinned_by> <pinned>``."""

    def __init__(
        self,
        where: str,
        variable: str,
        subject: str,
        actual: object,
        pinned: object,
        *,
        pinned_by: str = "the deployment pins",
    ) -> None:
        self.actual = actual
        self.pinned = pinned
        super().__init__(where, variable, f"{subject} is {actual}, {pinned_by} {pinned}")


class ValidationFailed(InputError):
    """One or more validation rules failed; ``problems`` holds every InputError found, the message
    names the first (and how many more there are)."""

    def __init__(self, problems: list[InputError]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        if problems:
            first = problems[0]
            super().__init__(first.file, first.field, first.reason + more)
        else:
            TradaiError.__init__(self, "validation failed")
            self.file, self.field, self.reason = "", "", "validation failed"


class SettingsError(TradaiError):
    """A setting is missing or malformed."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        super().__init__(f"settings: {name}: {reason}")


class UnknownEnvironment(SettingsError):
    """An environment name that ``releases/policy.yaml`` does not declare (or a malformed one)."""

    def __init__(self, name: str, declared: tuple[str, ...]) -> None:
        self.environment = name
        self.declared = declared
        super().__init__("env", f"unknown environment {name!r} (expected one of {', '.join(declared)})")


class MissingCredentials(TradaiError):
    """A command needs a credential the environment does not provide."""

    def __init__(self, variable: str, purpose: str) -> None:
        self.variable = variable
        super().__init__(f"missing credentials: set {variable} ({purpose})")


class BackendError(TradaiError):
    """A live backend failed in a way the user has to look at (unreachable, denied)."""

    def __init__(self, backend: str, detail: str) -> None:
        self.backend = backend
        super().__init__(f"{backend}: {detail}")


class ObjectNotFound(TradaiError):
    """An object store has no object under the key."""

    def __init__(self, store: str, key: str) -> None:
        self.store = store
        self.key = key
        super().__init__(f"{store}: {key}: object not found")


class ObjectExists(TradaiError):
    """A create-if-absent found the key already taken."""

    def __init__(self, store: str, key: str) -> None:
        self.store = store
        self.key = key
        super().__init__(f"{store}: {key}: object already exists")


class ConditionFailed(TradaiError):
    """A conditional write or a transaction found the table not in the expected state."""

    def __init__(self, table: str, detail: str) -> None:
        self.table = table
        super().__init__(f"{table}: conditional write failed: {detail}")


class GitError(TradaiError):
    """A git reference or object could not be read."""

    def __init__(self, ref: str, detail: str) -> None:
        self.ref = ref
        super().__init__(f"git: {ref}: {detail}")


class RegistryError(TradaiError):
    """The MLflow model registry refused or failed a call; ``target`` names the model or version."""

    def __init__(self, target: str, detail: str) -> None:
        self.target = target
        super().__init__(f"mlflow: {target}: {detail}")


class ModelVersionNotFound(RegistryError):
    """A registered model has no such version (or the model itself does not exist)."""

    def __init__(self, name: str, version: int) -> None:
        self.name = name
        self.version = version
        super().__init__(f"{name} version {version}", "model version not found")


class HubError(TradaiError):
    """The model hub refused an operation; ``where`` names the hub and the tag, pointer or file."""

    def __init__(self, where: str, detail: str) -> None:
        self.where = where
        super().__init__(f"model hub {where}: {detail}")


class TagNotFound(HubError):
    """The model hub has no such tag (or no latest / profile pointer to resolve one)."""


class TagExists(HubError):
    """A push or tag-only named a tag that already exists (tags are immutable)."""


class HubIntegrityError(HubError):
    """A manifest or blob does not hash to (or is not the size) recorded for it: tampered or truncated."""


class ModelCompatError(HubError):
    """A bundle's model_compat.json disagrees with the features the strategy expects."""


class ConfigError(TradaiError):
    """The config version registry or the config bucket refused an operation; ``target`` names it."""

    def __init__(self, target: str, detail: str) -> None:
        self.target = target
        super().__init__(f"config {target}: {detail}")


class ConfigVersionNotFound(ConfigError):
    """A strategy has no such config version (never created, or deprecated and expired)."""

    def __init__(self, strategy_name: str, config_id: str) -> None:
        self.strategy_name = strategy_name
        self.config_id = config_id
        super().__init__(f"{strategy_name} {config_id}", "config version not found")


class ConfigConflict(ConfigError):
    """Concurrent writers kept changing a strategy's registry head; the operation gave up after retrying."""


class ConfigIntegrityError(ConfigError):
    """A stored config object differs from what its key's hash says (tampered, or a different body)."""


class StartupError(TradaiError):
    """The runtime config merged from its sources is invalid; names the field and the source it came from."""

    def __init__(self, field: str, source: str, reason: str, more: int = 0) -> None:
        self.field = field
        self.source = source
        self.reason = reason
        extra = f" (and {more} more)" if more else ""
        super().__init__(f"startup: {field}: {reason} (from {source}){extra}")


class TrainingError(TradaiError):
    """Training could not produce a trustworthy bundle; ``where`` names the strategy and the model."""

    def __init__(self, where: str, detail: str) -> None:
        self.where = where
        super().__init__(f"training {where}: {detail}")


class OnnxParityError(TrainingError):
    """An ONNX export does not reproduce its native model's outputs on the held-out rows."""


class ApplyRefused(TradaiError):
    """``apply`` would not start: another apply holds the env's lock, the commit is stale, or the pinned
    artifacts fail verification. A refusal writes nothing: no deployment record, no journal."""


class ArtifactsRefused(ApplyRefused):
    """A pinned hub tag, blob or registry version failed verification, before the apply's first write."""

    def __init__(self, env: str, detail: str) -> None:
        self.env = env
        super().__init__(f"apply {env}: refused before any write: {detail}")


class LockHeld(ApplyRefused):
    """Another apply holds the environment's lease lock and it has not expired."""

    def __init__(
        self, env: str, holder: str, deployment_id: str, expires_at: str, lease_id: str = ""
    ) -> None:
        self.env = env
        self.holder = holder
        self.expires_at = expires_at
        lease = f", lease {lease_id}" if lease_id else ""
        super().__init__(
            f"apply {env}: locked by {holder} (deployment {deployment_id}{lease}) until {expires_at}; "
            "retry after it finishes or the lease lapses (a dead holder's within a minute)"
        )


class StaleCommit(ApplyRefused):
    """The commit to apply does not descend from the last applied one (a late run would roll back)."""

    def __init__(self, env: str, commit: str, applied: str, detail: str = "") -> None:
        self.commit = commit
        self.applied = applied
        reason = detail or "is not a descendant of the last applied commit"
        super().__init__(f"apply {env}: commit {commit[:12]} {reason} {applied[:12]}")


class PolicyBlocked(InputError):
    """``releases/policy.yaml`` blocks applying the plan now (a freeze window, a soak not yet served):
    the first blocked rule as ``<file>: <field>: blocked: <reason> (clears at <time>)``."""

    def __init__(self, env: str, problems: list[InputError]) -> None:
        self.env = env
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more blocked)" if len(problems) > 1 else ""
        super().__init__(first.file, first.field, first.reason + more)


class ApplyFailed(TradaiError):
    """An apply started but did not converge (an action failed, or the plan afterwards was not empty)."""

    def __init__(self, env: str, deployment_id: str, detail: str) -> None:
        self.env = env
        self.deployment_id = deployment_id
        super().__init__(f"apply {env}: deployment {deployment_id} failed: {detail}")


class DeploymentFailed(TradaiError):
    """A bot's deployment did not take: the target refused it, or its rollout failed or never settled."""

    def __init__(self, bot: str, detail: str) -> None:
        self.bot = bot
        super().__init__(f"deploy {bot}: {detail}")


EXTRA_OF = {
    "freqtrade": "bot",
    "ccxt": "bot",
    "pandas": "bot",  # the bot's features need it; train includes bot
    "sklearn": "train",
    "xgboost": "train",
    "lightgbm": "train",
    "onnx": "train",
    "skl2onnx": "train",
    "onnxmltools": "train",
    "mlflow": "registry",
    "sqlalchemy": "server",
    "alembic": "server",
    "flask": "server",
    "jinja2": "report",
    "matplotlib": "report",
    "moto": "dev",
    "playwright": "dev",
}
"""The optional extra (pyproject.toml) that installs each library the base install leaves out."""


class MissingExtra(InputError):
    """A feature needs a library of an extra that is not installed:
    ``tradai-release[<extra>]: <module>: not installed (pip install 'tradai-release[<extra>]')``."""

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"tradai-release[{extra}]", module, f"not installed (pip install 'tradai-release[{extra}]')"
        )


def user_error(err: BaseException) -> TradaiError | None:
    """The one-line error ``err`` is for the user: itself when it is a TradaiError, a MissingExtra
    for a missing library an extra installs; None for anything else (a bug, keeping its traceback)."""
    if isinstance(err, TradaiError):
        return err
    if isinstance(err, ModuleNotFoundError) and err.name:
        top = err.name.split(".")[0]
        if top in EXTRA_OF:
            return MissingExtra(top, EXTRA_OF[top])
    return None
