"""Model hub CLI with the seed's flags: pull, push, list and tag model bundles in R2 (or S3, or a directory).

    python tools/r2_hub.py --pull                          # latest
    python tools/r2_hub.py --pull --revision v20260415-p3  # a tag
    python tools/r2_hub.py --pull --profile 3 [--env prod] # the revision apply approved for a profile
    python tools/r2_hub.py --pull --strategy PascalStrategy # only that strategy's files (repeatable)
    python tools/r2_hub.py --push [--tag NAME] [--message M]
    python tools/r2_hub.py --list [--json]
    python tools/r2_hub.py --verify [--revision TAG]      # every blob's content: latest + profile pins
    python tools/r2_hub.py --tag-only v15-production "Phase 15 validated" [--from TAG]

The hub is ``TRADAI_HUB_URI`` (default ``file://<state_dir>/hub``); an ``s3://`` hub uses
``TRADAI_HUB_ENDPOINT_URL`` (signed for ``TRADAI_HUB_REGION``, default ``auto`` with an endpoint)
and needs CF_R2_ACCESS_KEY_ID / CF_R2_SECRET_ACCESS_KEY.

``--verify`` checks the tag ``latest`` names and every tag a profile pointer pins (``--revision``:
that tag only): each manifest against the hash its pointer recorded, each distinct blob's content
against its name, from the SHA-256 checksum the store keeps (no download) or else by streaming and
hashing it. Every problem is one ``error:`` line; exit 1 when there is any.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script from a checkout: make the library importable without installing it.
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from tradai_release.cli import handle_errors, print_json


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r2_hub.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--pull", action="store_true", help="download a tag into the models dir (verified)")
    action.add_argument("--push", action="store_true", help="upload the models dir as a new tag")
    action.add_argument("--list", action="store_true", help="list every tag")
    action.add_argument(
        "--verify",
        action="store_true",
        help="check the content of every blob of latest and the profile-pinned tags (or --revision)",
    )
    action.add_argument(
        "--tag-only",
        nargs="+",
        metavar=("NAME", "MESSAGE"),
        help="create tag NAME from an existing tag, no upload",
    )
    parser.add_argument("--revision", metavar="TAG", help="--pull / --verify: this tag instead of latest")
    parser.add_argument("--profile", type=int, metavar="N", help="--pull: the approved revision of profile N")
    parser.add_argument(
        "--strategy",
        action="append",
        metavar="S",
        help="--pull: only the files of strategy S; the models dir's other strategies stay as they are",
    )
    parser.add_argument("--env", default="prod", help="--pull --profile: environment (default: prod)")
    parser.add_argument(
        "--tag", metavar="NAME", help="--push: tag name (default: vYYYYMMDD, suffixed when taken)"
    )
    parser.add_argument("--message", "-m", default="", help="--push / --tag-only: tag message")
    parser.add_argument(
        "--from", dest="source", default="latest", metavar="TAG", help="--tag-only: source tag"
    )
    parser.add_argument("--models-dir", type=Path, help="models directory (default: settings models_dir)")
    parser.add_argument("--json", action="store_true", help="--list: print JSON")
    return parser


def _check_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    misplaced = {
        "--revision": args.revision is not None and not (args.pull or args.verify),
        "--profile": args.profile is not None and not args.pull,
        "--strategy": args.strategy is not None and not args.pull,
        "--tag": args.tag is not None and not args.push,
        "--from": args.source != "latest" and not args.tag_only,
        "--json": args.json and not args.list,
    }
    for flag, wrong in misplaced.items():
        if wrong:
            parser.error(f"{flag} does not apply to this command")
    if args.revision is not None and args.profile is not None:
        parser.error("give either --revision or --profile, not both")


@handle_errors
def run(args: argparse.Namespace) -> int:
    from tradai_release.core.settings import Settings
    from tradai_release.hub import ModelHub
    from tradai_release.render import hub as render

    settings = Settings()
    hub = ModelHub.from_settings(settings)
    models_dir = args.models_dir.resolve() if args.models_dir else settings.models_path()
    if args.list:
        infos = hub.list_tags()
        if args.json:
            print_json(render.tags_json(infos))
        else:
            render.render_tags(infos)
    elif args.push:
        from tradai_release.repository.gitrepo import head_commit

        with render.transfer_progress() as progress:
            pushed = hub.push(models_dir, tag=args.tag, message=args.message,
                              git_commit=head_commit(settings.repo), progress=progress)
        render.render_push(pushed)
    elif args.verify:
        from tradai_release.core.errors import TagNotFound
        from tradai_release.hub.names import check_tag

        if args.revision is not None:
            targets = [(check_tag(args.revision, where="--revision"), None, ())]
        else:
            targets = [(pin.tag, pin.sha256, pin.by) for pin in hub.pinned()]
            if not targets:
                raise TagNotFound(f"{hub.store.name}: latest", "nothing pushed yet (no latest pointer)")
        results = [(hub.verify(tag, sha, deep=True), by) for tag, sha, by in targets]
        render.render_verified(hub.store.name, results)
        return 1 if any(result.problems for result, _ in results) else 0
    elif args.tag_only:
        name, *words = args.tag_only
        sha = hub.tag_only(name, source=args.source, message=" ".join(words) or args.message)
        render.render_tag_only(name, sha, args.source)
    else:
        from tradai_release.domain.bundles import pull_models

        with render.transfer_progress() as progress:
            pulled = pull_models(settings, hub, models_dir, tag=args.revision, progress=progress,
                                 env=args.env if args.profile is not None else None, profile=args.profile,
                                 strategies=args.strategy)
        render.render_pull(pulled)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check_flags(parser, args)
    return int(run(args))


if __name__ == "__main__":
    sys.exit(main())
