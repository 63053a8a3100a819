"""Hub names (tags, manifest paths, environments) checked before they become object keys or file paths."""

from __future__ import annotations

import re

from tradai_release.core.errors import InputError
from tradai_release.core.settings import ENVIRONMENT_NAME

TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX64 = re.compile(r"[0-9a-f]{64}")

LATEST_KEY = "pointers/latest.json"


def blob_key(sha256: str) -> str:
    """``blobs/sha256/<hex>``: the one object holding a file content."""
    return f"blobs/sha256/{check_sha256(sha256, where='blob')}"


def tag_key(tag: str) -> str:
    """``tags/<tag>.json``: the immutable manifest of a tag."""
    return f"tags/{check_tag(tag)}.json"


def profile_pointer_key(env: str, profile: int) -> str:
    """``pointers/<env>/profile-<N>.json``: the revision apply approved for one profile.

    Which environments and profiles exist is the repository's to declare and the commands'
    to check; here an environment only has to be a safe key segment and a profile a positive number.
    """
    if not isinstance(env, str) or not ENVIRONMENT_NAME.fullmatch(env):
        raise InputError(
            "--env", "env", f"unknown environment {env!r} (lowercase letters, digits, '-'; at most 32)"
        )
    if not isinstance(profile, int) or isinstance(profile, bool) or profile < 1:
        raise InputError("--profile", "profile", f"unknown profile {profile!r} (expected a positive number)")
    return f"pointers/{env}/profile-{profile}.json"


def check_tag(name: str, *, where: str = "tag") -> str:
    """Return ``name`` if it is a valid tag name; otherwise raise InputError naming ``where``.

    Tags become object keys (``tags/<tag>.json``), so a tag may not contain ``/``,
    ``..`` or anything outside ``[A-Za-z0-9._-]``.
    """
    if not isinstance(name, str) or not TAG_PATTERN.fullmatch(name) or ".." in name:
        raise InputError(where, "tag", f"invalid tag name {name!r} (letters, digits, '.', '_', '-'; no '..')")
    return name


def check_relpath(path: str, *, where: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path of a bundle file; else raise InputError.

    Refused: empty, absolute, ``..`` or ``.`` segments, empty segments, backslashes, control characters.
    """
    reason = _relpath_problem(path)
    if reason:
        raise InputError(where, "files", f"{path!r}: {reason}")
    return path


def _relpath_problem(path: object) -> str | None:
    if not isinstance(path, str) or not path:
        return "empty path"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return "control character in path"
    if "\\" in path:
        return "backslash in path"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "absolute path"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "'..', '.' or empty segment in path"
    return None


def check_strategy_dir(name: str, *, where: str) -> str:
    """Return ``name`` if it can be a strategy's directory of a models dir (one safe path segment that
    does not start with ``.``, which pulls use for their staging); else raise InputError."""
    reason = _relpath_problem(name)
    if reason is None and ("/" in name or name.startswith(".")):
        reason = "not a single directory name"
    if reason:
        raise InputError(where, "strategy", f"{name!r}: {reason}")
    return name


def check_sha256(value: object, *, where: str, field: str = "sha256") -> str:
    """Return ``value`` if it is a lowercase hex SHA-256 digest; else raise InputError."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InputError(where, field, f"not a sha256 hex digest: {value!r}")
    return value
