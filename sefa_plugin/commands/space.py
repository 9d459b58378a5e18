"""``sefa space``: write the editor as a self-contained Hugging Face Space folder, and optionally push it."""

from __future__ import annotations

import argparse

NAME = "space"
HELP = "write the editor as a self-contained Hugging Face Space (and push it)"
FLAGS = {"folder": "DIR", "space_id": "--push", "repo_id": "--push"}


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="DIR", help="Space folder to write (app.py, README.md, requirements.txt, package)")
    p.add_argument("--push", dest="space_id", default=None, metavar="SPACE_ID", help="also push it to this Space")
    p.add_argument("--token", default=None, help="Hub token (by default the logged-in token)")
    p.add_argument("--private", action="store_true", help="create the Space as private")


def run(args: argparse.Namespace) -> int:
    from ..space import push_space, write_space
    from ._common import check_output_folder

    check_output_folder(args.folder, "DIR")
    folder = write_space(args.folder)
    files = sum(1 for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    print(f"wrote the Space to {folder} ({files} files): cd {folder} && python app.py runs it")
    if args.space_id:
        url = push_space(folder, args.space_id, token=args.token, private=args.private or None)
        print(f"pushed {folder} to the Space {args.space_id}: {url}")
    return 0
