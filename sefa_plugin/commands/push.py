"""``sefa push``: push a direction folder to the Hub in one commit."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "push"
HELP = "push a direction folder to the Hub"
FLAGS = {"repo_id": "REPO_ID", "name_or_path": "DIRECTORY"}


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", metavar="DIRECTORY", help="folder written by `sefa factorize`")
    p.add_argument("repo_id", metavar="REPO_ID", help="target Hub repo, e.g. someone/ffhq-sefa-directions")
    p.add_argument("--token", default=None, help="Hub token (by default the logged-in token)")
    p.add_argument("--private", action="store_true", help="create the repo as private")


def run(args: argparse.Namespace) -> int:
    from ..directions import Directions

    directions = Directions.from_pretrained(args.directory)
    preview_path = Path(args.directory) / "preview.png"
    preview = None
    if preview_path.is_file():
        from PIL import Image

        preview = Image.open(preview_path).convert("RGB")
    url = directions.push_to_hub(args.repo_id, token=args.token, private=args.private or None, preview=preview)
    print(f"pushed {args.directory} to {args.repo_id}: {url}")
    return 0
