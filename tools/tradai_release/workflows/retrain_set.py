"""The retraining set across environments: each strategy that needs retraining anywhere, once.

Every environment's retraining check (``retrain-check --env E --json``, each run with that environment's
credentials) says which of its live models need retraining and why; a strategy is trained once for all of
them and registered in the first environment of the promotion order, whichever environment asked. The
set is also the GitHub Actions matrix the drift workflow fans out over (one job per strategy, or per
chunk of strategies when there are more strategies than jobs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import InputError

if TYPE_CHECKING:
    from tradai_release.workflows.retrain_check import RetrainingCheck

# GitHub Actions runs at most 256 jobs of one matrix; more strategies than that share jobs.
MATRIX_LIMIT = 256


@dataclass(frozen=True)
class NeededStrategy:
    """One strategy to retrain, and every environment's reasons for it."""

    strategy: str
    reasons: Mapping[str, tuple[str, ...]]  # environment -> reasons, in promotion order
    requested: bool = False  # named by a manual request (of the whole run, not of one environment)

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "envs": list(self.reasons),
                "reasons": {env: list(reasons) for env, reasons in self.reasons.items()},
                "requested": self.requested}


@dataclass(frozen=True)
class RetrainingSet:
    """The strategies to retrain across the checked environments, and the matrix that trains them."""

    order: tuple[str, ...]
    checked: tuple[str, ...]
    strategies: tuple[NeededStrategy, ...]
    max_jobs: int
    checks: tuple[RetrainingCheck, ...] = ()  # the environments' checks, when made in this process

    @property
    def retrain(self) -> list[str]:
        return [item.strategy for item in self.strategies]

    @property
    def register_env(self) -> str:
        """Where every challenger is registered: the first environment of the promotion order."""
        return self.order[0]

    def matrix(self) -> dict[str, list[dict[str, str]]]:
        """``{"include": [{"job": ..., "strategies": "A B"}]}``: at most ``max_jobs`` jobs, the strategies
        dealt round-robin (one per job while they fit)."""
        names = self.retrain
        jobs = min(len(names), self.max_jobs)
        return {"include": [
            {"job": names[index] if len(names) <= jobs else f"{index + 1}-of-{jobs}",
             "strategies": " ".join(names[index::jobs])}
            for index in range(jobs)
        ]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "order": list(self.order),
            "checked": list(self.checked),
            "register_env": self.register_env,
            "needed": bool(self.strategies),
            "retrain": self.retrain,
            "strategies": [item.to_dict() for item in self.strategies],
            "max_jobs": self.max_jobs,
            "matrix": self.matrix(),
            "checks": {check.env: check.to_dict() for check in self.checks},
        }


def retraining_set(
    reports: Sequence[Mapping[str, Any]], order: Sequence[str], *, max_jobs: int = MATRIX_LIMIT,
    where: Sequence[str] = (),
    checks: tuple[RetrainingCheck, ...] = (),
    manual: Sequence[str] = (),
    pinned: Sequence[str] = (),
) -> RetrainingSet:
    """Union of the environments' checks (the ``retrain-check --json`` shape), each strategy once.

    ``where`` names each report's file for the error line of a malformed one; ``checks`` are the
    environments' checks when this process made them (shown with the set). ``manual`` adds strategies
    (comma lists allowed; ``all``: every one of ``pinned``, the strategies some manifest pins).
    """
    if not 1 <= max_jobs <= MATRIX_LIMIT:
        raise InputError("retrain-set", "--max-jobs", f"{max_jobs} is not between 1 and {MATRIX_LIMIT}")
    reasons: dict[str, dict[str, tuple[str, ...]]] = {}
    checked: list[str] = []
    for index, check in enumerate(reports):
        name = where[index] if index < len(where) else f"check {index + 1}"
        env = check.get("env")
        if not isinstance(env, str) or env not in order:
            known = ", ".join(order)
            raise InputError(name, "env", f"{env!r} is not a declared environment ({known})")
        if env in checked:
            raise InputError(name, "env", f"{env} is checked twice")
        checked.append(env)
        items = check.get("strategies")
        if not isinstance(items, list):
            raise InputError(name, "strategies", "not a list (a retrain-check --json report is expected)")
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("strategy"), str):
                raise InputError(name, "strategies", f"an entry without a strategy name: {item!r}")
            if item.get("needed") or item.get("reasons"):
                per_env = reasons.setdefault(item["strategy"], {})
                found = (*per_env.get(env, ()), *(str(r) for r in item.get("reasons") or ()))
                per_env[env] = tuple(dict.fromkeys(found))  # profiles on different versions: once
    requested = {name.strip() for value in manual for name in value.split(",") if name.strip()}
    unknown = sorted(requested - {"all"} - set(pinned))
    if unknown:
        known = ", ".join(sorted(pinned)) or "none"
        reason = f"{', '.join(unknown)} is pinned in no manifest (pinned: {known})"
        raise InputError("--manual", "strategy", reason)
    requested = set(pinned) if "all" in requested else requested
    every: dict[str, dict[str, tuple[str, ...]]] = {**{name: {} for name in requested}, **reasons}
    needed = tuple(
        NeededStrategy(strategy, {env: per_env[env] for env in order if env in per_env},
                       strategy in requested)
        for strategy, per_env in sorted(every.items())
    )
    return RetrainingSet(tuple(order), tuple(e for e in order if e in checked), needed, max_jobs, checks)


def read_checks(paths: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON reports of ``retrain-check --json-file`` and their files (a directory: its ``check-*.json``);
    one ``error:`` line for a file that is not one, or a directory without any."""
    files: list[str] = []
    for path in paths:
        if Path(path).is_dir():
            found = sorted(str(item) for item in Path(path).glob("check-*.json"))
            if not found:
                raise InputError(path, "--check", "no check-*.json in the directory (no environment's check "
                                 "finished)")
            files += found
        else:
            files.append(path)
    loaded = []
    for path in files:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(path, "--check", "no such file") from None
        except (OSError, ValueError) as err:
            raise InputError(path, "--check", f"not a JSON report: {err}") from None
        if not isinstance(data, dict):
            raise InputError(path, "--check", "not a JSON object")
        loaded.append(data)
    return loaded, files
