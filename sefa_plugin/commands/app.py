"""``sefa app``: serve the Gradio editor (``gradio_app/app.py`` of the repository checkout)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "app"
HELP = "open the editor (Gradio) in the browser, on MODEL or the embedded model"
FLAGS = {"host": "--host", "port": "--port", "threads": "--threads"}


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        nargs="?",
        default=None,
        help="the model to open: a pipeline folder, a Hub id or a checkpoint (default: the embedded model)",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all)")
    p.add_argument("--port", type=int, default=None, help="port (by default 7860 or the next free one)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs network)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per render (0: torch's default)")


def run(args: argparse.Namespace) -> int:
    import importlib.util

    app_file = Path(__file__).resolve().parents[2] / "gradio_app" / "app.py"
    if importlib.util.find_spec("gradio") is None:
        raise OSError("the editor needs Gradio: pip install 'sefa_plugin[app]'")
    if not app_file.is_file():
        raise OSError(f"the editor is gradio_app/app.py of the repository checkout; it is not at {app_file}")
    spec = importlib.util.spec_from_file_location("sefa_gradio_app", app_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.launch(host=args.host, port=args.port, share=args.share, threads=args.threads, model=args.model)
    return 0
