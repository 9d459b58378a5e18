"""README.md's snippets run, so the README cannot drift from the code.

Every fenced ```python / ```bash block of README.md is found here. An HTML comment on the line before a
fence says how a block is tested:

* none: the block runs. Python blocks are executed as written; the Hub ids they name (``someone/...``)
  live on the local Hub server, where the embedded model is uploaded as ``someone/stylegan2-ffhq``.
  Each ``sefa`` line of a bash block runs through :func:`sefa_plugin.cli.main`, with the placeholders
  (``MODEL``, ``DIR``, ``REPO_ID`` ...) replaced by a local Hub repo and temporary paths, optional
  ``[...]`` parts dropped, and the sizes in :data:`SMALL` made small.
* ``<!-- readme-test: slow (why) -->``: runs as above, with the slow tests only (``--runslow``).
* ``<!-- readme-test: skip (why) -->``: the block is illustrative (hours of training, a server); its ``sefa``
  lines are still parsed by the real argument parser, so a renamed flag fails here too.
* ``<!-- readme-test: make-dry-run (why) -->``: each ``make TARGET`` line must be a target (``make -n``).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from sefa_plugin.cli import main
from sefa_plugin.commands import build_parser
from sefa_plugin.embedded import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(
    r"(?:<!--\s*readme-test:\s*(?P<mode>[\w-]+)[^>]*-->\s*\n)?```(?P<lang>python|bash)\n(?P<body>.*?)```", re.S
)
#: Flags whose README values take minutes to hours on a CPU, and the value the test runs with instead.
SMALL = {"--num-samples": "500", "--steps": "2", "--rca-steps": "2", "--rca-batches": "1", "--iterations": "2"}
#: The Hub repo that README snippets load as a model (the embedded model, uploaded to the local Hub).
HUB_MODEL = "someone/stylegan2-ffhq"


@dataclass
class Block:
    lang: str
    mode: str  # "run", "slow", "skip" or "make-dry-run"
    body: str
    line: int

    @property
    def commands(self) -> list[str]:
        return [ln.strip() for ln in self.body.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        mode = m.group("mode") or "run"
        assert mode in ("run", "slow", "skip", "make-dry-run"), f"unknown readme-test mode {mode!r}"
        blocks.append(Block(m.group("lang"), mode, m.group("body"), text[: m.start("body")].count("\n") + 1))
    return blocks


BLOCKS = readme_blocks()


def _argv(command: str, places: dict[str, str], small: bool) -> list[str]:
    """A README command line as the argv of `sefa`: placeholders replaced, `[...]` dropped, sizes small."""
    tokens = shlex.split(re.sub(r"\[[^\]]*\]", "", command), comments=True)
    assert tokens[0] == "sefa", command
    argv = [places.get(t, t) for t in tokens[1:]]
    if small:
        argv = [SMALL[argv[i - 1]] if i and argv[i - 1] in SMALL else a for i, a in enumerate(argv)]
    return argv


def test_readme_has_snippets_and_few_skipped_blocks():
    langs = [(b.lang, b.mode) for b in BLOCKS]
    assert ("python", "run") in langs and ("bash", "run") in langs
    assert sum(b.mode == "skip" for b in BLOCKS) <= 2
    assert len(BLOCKS) >= 6


def test_every_sefa_line_parses(tmp_path):
    """Skipped blocks included: the flags and values the README shows are the parser's."""
    places = {"MODEL": "org/model", "DIR": "dir", "REPO_ID": "org/repo", "RUN": "run", "OUT": "out"}
    lines = [c for b in BLOCKS if b.lang == "bash" for c in b.commands if c.startswith("sefa ")]
    assert len(lines) >= 15
    for command in lines:
        try:
            args = build_parser().parse_args(_argv(command, places, small=False))
        except SystemExit as err:
            pytest.fail(f"README line does not parse ({err}): {command}")
        assert args.command == shlex.split(command)[1]


def test_make_targets_exist():
    if shutil.which("make") is None:
        pytest.skip("no make")
    targets = [c.split()[1] for b in BLOCKS if b.mode == "make-dry-run" for c in b.commands]
    assert targets == ["demo", "test"]
    for target in targets:
        result = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr


@pytest.fixture
def readme_hub(hub_env, tmp_path, monkeypatch):
    """The local Hub with the embedded model as `someone/stylegan2-ffhq`, and a fresh working folder."""
    from huggingface_hub import upload_folder

    hub_env.api.create_repo(HUB_MODEL)
    upload_folder(repo_id=HUB_MODEL, folder_path=DEFAULT_MODEL)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return hub_env


def test_python_snippets_run(readme_hub):
    blocks = [b for b in BLOCKS if b.lang == "python" and b.mode == "run"]
    assert blocks
    for block in blocks:
        namespace: dict = {"__name__": "readme"}
        exec(compile(block.body, f"README.md:{block.line}", "exec"), namespace)
    # What the Python section promises: images, a saved folder and a pushed repo that loads back.
    assert len(namespace["out"].images) == 9
    assert (Path("ffhq-sefa") / "directions.safetensors").is_file()
    assert "directions.safetensors" in readme_hub.server.repo_files("someone/ffhq-sefa-directions")


@pytest.mark.slow
def test_slow_python_snippets_run(readme_hub):
    blocks = [b for b in BLOCKS if b.lang == "python" and b.mode == "slow"]
    for block in blocks:
        namespace: dict = {"__name__": "readme"}
        exec(compile(block.body, f"README.md:{block.line}", "exec"), namespace)
        if "inv" in namespace:  # the inversion block: an edited photo and a saved inversion
            assert len(namespace["edited"].images) == 3 and (Path("my-scene") / "latents.safetensors").is_file()


RUN_BLOCKS = [
    pytest.param(b, id=f"line{b.line}", marks=[pytest.mark.slow] if b.mode == "slow" else [])
    for b in BLOCKS
    if b.lang == "bash" and b.mode in ("run", "slow")
]
#: The commands each runnable bash block holds, in order (a block that changes must change this too).
EXPECTED = [
    ["factorize", "edit", "invert", "edit", "push", "space"],
    ["ganspace", "learn", "boundary", "import", "evaluate"],
]


def test_runnable_blocks_are_the_expected_ones():
    assert [[_argv(c, {}, small=False)[0] for c in p.values[0].commands] for p in RUN_BLOCKS] == EXPECTED


@pytest.mark.parametrize("block", RUN_BLOCKS)
def test_cli_snippets_run(block, readme_hub, tmp_path, capsys):
    work = Path.cwd()
    places = {
        "MODEL": HUB_MODEL,
        "DIR": str(tmp_path / "dirs"),
        "REPO_ID": "someone/readme-directions",
        "SPACE_DIR": str(tmp_path / "space"),
        "SPACE_ID": "someone/sefa-editor",
        "REPORT": str(tmp_path / "report"),
        "INV": str(tmp_path / "inv"),
    }
    # The photo `sefa invert` reads: a rendered scene the GAN never saw.
    from sefa_plugin.data import render_scenes
    from sefa_plugin.utils.images import to_pil

    to_pil(render_scenes([0], seed=3).images)[0].save(work / "photo.png")
    # The InterFaceGAN file `sefa import` reads: one unit boundary [1, w_dim] (w_dim 128 on the embedded model).
    boundary = np.zeros([1, 128], np.float32)
    boundary[0, 3] = 1
    np.save(work / "boundary.npy", boundary)
    ran = []
    for command in block.commands:
        argv = _argv(command, places, small=True)
        code = main(argv)
        assert code == 0, f"README.md:{block.line}: `{command}` exited {code}: {capsys.readouterr().err[-2000:]}"
        ran.append(argv[0])
    server = readme_hub.server
    if "edit" in ran:
        assert (work / "grid.png").is_file() and (work / "walk.gif").is_file()
        assert (tmp_path / "inv" / "latents.safetensors").is_file() and (work / "photo-grid.png").is_file()
        assert "directions.safetensors" in server.repo_files("someone/readme-directions")
        assert "app.py" in server.repo_files("someone/sefa-editor", repo_type="space")
    if "evaluate" in ran:
        assert (tmp_path / "report" / "report.md").is_file()
