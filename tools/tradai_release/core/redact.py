"""One scrubber for everything a person or a page sees: URL userinfo and every known secret value.

Error lines, deployment records, notifications, the release board and reprs all pass through
:func:`scrub_text` (or :func:`scrub` for structured details). The secrets it knows are the values of
the credential variables of the process (``SECRET_VARIABLES``, and any variable whose name says it is a
secret), plus, where settings are at hand, their ``SecretStr`` values (:func:`secret_values`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

REDACTED = "***"
SECRET_NAME = re.compile(r"secret|token|key|passw|credential|authorization", re.IGNORECASE)
"""A detail or variable whose name matches holds a secret."""
SECRET_VARIABLES: tuple[str, ...] = (
    "CF_R2_ACCESS_KEY_ID",
    "CF_R2_SECRET_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "TRADAI_WEBHOOK_URL",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)
"""Credentials a CI job typically has in its environment: their values are scrubbed from any text."""
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_MIN_SECRET_LENGTH = 4  # a shorter listed value would scrub ordinary words
_MIN_NAMED_LENGTH = 8  # a variable only named like a secret (TOKENIZERS_PARALLELISM=false) must look like one


def environment_secrets(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The secret values of the process environment: listed credential variables, and variables named
    like a secret whose value is long enough to be one."""
    environ = os.environ if environ is None else environ
    found = {environ.get(name, "") for name in SECRET_VARIABLES}
    found = {value for value in found if len(value) >= _MIN_SECRET_LENGTH}
    named = {value for name, value in environ.items() if SECRET_NAME.search(name)}
    found |= {value for value in named if len(value) >= _MIN_NAMED_LENGTH}
    return frozenset(found)


def secret_values(settings: BaseModel) -> frozenset[str]:
    """Every secret of ``settings`` (its ``SecretStr`` values) and of the process environment."""
    from pydantic import SecretStr

    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
    return frozenset(v for v in found if len(v) >= _MIN_SECRET_LENGTH) | environment_secrets()


def scrub_text(text: str, secrets: frozenset[str] | None = None) -> str:
    """``text`` with every known secret (default: the environment's) and any URL userinfo replaced."""
    for secret in sorted(environment_secrets() if secrets is None else secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _URL_USERINFO.sub(REDACTED + "@", text)


def scrub(value: Any, secrets: frozenset[str] | None = None) -> Any:
    """``value`` as plain JSON with secrets replaced: SecretStr, secret-named keys, known secret text."""
    from pydantic import SecretStr

    secrets = environment_secrets() if secrets is None else secrets
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, Mapping):
        return {
            scrub_text(str(key), secrets): REDACTED if SECRET_NAME.search(str(key)) else scrub(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(item, secrets) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub_text(str(value), secrets)
