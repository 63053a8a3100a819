"""``python -m tradai_release.runtime``: a bot's start-up from a shell or a container's entry point.

    python -m tradai_release.runtime --env prod --profile 3 --strategy PascalStrategy
    python -m tradai_release.runtime --env-file /etc/tradai/PascalStrategy-p3.env --json
    python -m tradai_release.runtime --strategy PascalStrategy      # TRADAI_* pins from the environment
    python -m tradai_release.runtime --exec freqtrade trade         # a container's command: check, then trade

Makes the strategy's local models, its ACTIVE config and its model version the ones the
deployment pins (TRADAI_* variables, or --env-file), else the ones the last apply made live
for --profile; prints one ``ready:`` line (or, with --json, the ready record) and exits 0.
With --exec freqtrade trade it then renders Freqtrade's config into the bot's private run
directory, checks it, prints one ``exec:`` line and becomes Freqtrade.
Any problem is one ``error:`` line on stderr and exit 1, and nothing is started.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tradai_release.core.errors import TradaiError, user_error

if TYPE_CHECKING:
    from tradai_release.runtime.launch import Launch


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tradai_release.runtime",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", help="environment (default: TRADAI_ENV; must agree with it)")
    parser.add_argument("--profile", metavar="N", help="risk profile (default: TRADAI_PROFILE; must agree)")
    parser.add_argument("--strategy", metavar="S", help="strategy (default: TRADAI_STRATEGY; must agree)")
    parser.add_argument(
        "--model", metavar="NAME", help="registered model (default: TRADAI_MODEL_NAME, else the strategy)"
    )
    parser.add_argument("--models-dir", type=Path, metavar="D", help="models directory (default: settings)")
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="F",
        help="the deployment's NAME=value pins (instead of the environment)",
    )
    parser.add_argument(
        "--ml-config",
        type=Path,
        metavar="F",
        help="the strategy's ml_config.json (default: the release repository at TRADAI_REPO)",
    )
    parser.add_argument("--json", action="store_true", help="print the ready record as one JSON object")
    parser.add_argument(
        "--strategy-path",
        type=Path,
        metavar="D",
        help="with --exec: the entry point module's directory (default: under TRADAI_REPO)",
    )
    parser.add_argument(
        "--exec",
        nargs=argparse.REMAINDER,
        metavar="freqtrade trade",
        help="after the checks, become `freqtrade trade [flags]` on the rendered config (last option)",
    )
    return parser


def ready_line(record: dict[str, object]) -> str:
    """The text form of the ready record: ``ready: key=value ...`` with the values a log reader needs."""
    hub = f"{record['hub_tag']}@{str(record['hub_sha256'])[:12]}" if record["hub_tag"] else "none"
    model = f"{record['model_name']}/v{record['model_version']}" if record["model_name"] else "none"
    parts = {
        "env": record["env"],
        "profile": record["profile"],
        "strategy": record["strategy"],
        "config": record["config_id"],
        "model": model,
        "hub": hub,
        "pins_from": record["pins_from"],
        "downloaded": f"{record['downloaded_files']}files/{record['downloaded_bytes']}B",
        "reused": record["reused_files"],
        "deployment": record["deployment_id"],
        "commit": str(record["git_commit"])[:12] if record["git_commit"] else None,
    }
    return "ready: " + " ".join(f"{key}={'-' if value is None else value}" for key, value in parts.items())


def run(args: argparse.Namespace, exec_: Callable[[Launch], None] | None = None) -> int:
    """Start the bot; with ``--exec``, prepare Freqtrade and hand the process to ``exec_`` (default execv)."""
    from tradai_release.core.settings import Settings
    from tradai_release.repository.manifest import parse_profile
    from tradai_release.runtime import read_variables, start_bot
    from tradai_release.runtime.launch import _check_command, exec_freqtrade, prepare

    if args.exec is not None:
        _check_command(args.exec)  # a wrong command fails before any byte moves
    settings = Settings()

    variables, source = read_variables(args.env_file)
    ready = start_bot(
        settings,
        env=args.env,
        profile=None if args.profile is None else parse_profile(args.profile),
        strategy=args.strategy,
        model_name=args.model,
        variables=variables,
        source=source,
        models_dir=args.models_dir,
        ml_config=args.ml_config,
    )
    record = ready.to_dict()
    launch = None
    if args.exec is not None:
        launch = prepare(settings, ready, args.exec, strategy_path=args.strategy_path)
    if args.json:
        print(json.dumps({**record, "exec": launch.to_dict()} if launch else record, sort_keys=True))
    else:
        print(ready_line(record))
        if launch is not None:
            print(f"exec: {' '.join(launch.argv[1:])} (trades: {launch.db_path})")
    if launch is not None:
        (exec_ or exec_freqtrade)(launch)
    return 0


def main(argv: Sequence[str] | None = None, exec_: Callable[[Launch], None] | None = None) -> int:
    """Parse flags and start; a project error is one ``error:`` line and exit 1 (anything else is a bug).

    The runtime sits below the presentation layer (``cli``, ``render``) and keeps its import path
    light, so it has its own handler rather than ``cli.handle_errors`` (the same ``user_error``).
    """
    args = _parser().parse_args(argv)
    try:
        return run(args, exec_)
    except (TradaiError, ModuleNotFoundError) as err:
        found = user_error(err)
        if found is None:
            raise
        print(f"error: {found}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
