"""`sefa space`: a self-contained Space folder that runs on its own copy of the package, and its push."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub.errors import HfHubHTTPError

from sefa_plugin.cli import main
from sefa_plugin.space import push_space, space_requirements, write_space

gr = pytest.importorskip("gradio")

# Runs inside the Space folder with PYTHONPATH=<folder> only: the app must import the folder's package,
# build the editor, serve its page and render with the copied embedded model and card templates.
START_APP = r"""
import socket, sys, urllib.request
from pathlib import Path

import app
import sefa_plugin
from sefa_plugin.cards import load_template
from sefa_plugin.editor import EditorSession
from sefa_plugin.embedded import DEFAULT_MODEL, DEFAULT_PREDICTOR

here = Path.cwd().resolve()
outside = [name for name, m in sys.modules.items() if name.split(".")[0] == "sefa_plugin"
           and getattr(m, "__file__", None) and here not in Path(m.__file__).resolve().parents]
assert not outside, outside
for path in (app.__file__, DEFAULT_MODEL, DEFAULT_PREDICTOR):
    assert here in Path(path).resolve().parents, path
assert "{{" in load_template("directions_card.md")
image = EditorSession().render(seed=0, num_samples=1)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
demo = app.build_demo(space=False)
demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
try:
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).read().decode()
finally:
    demo.close()
print("package", sefa_plugin.__file__)
print("image", image.size)
print("page", len(page), "gradio" in page.lower())
"""


def _clean_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HF_", "GRADIO_"))}
    env |= {"PYTHONPATH": str(folder), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    return env


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("space") / "editor"
    assert main(["space", str(folder)]) == 0
    return folder


def test_space_folder_is_self_contained(space_dir):
    names = {p.relative_to(space_dir).as_posix() for p in space_dir.rglob("*") if p.is_file()}
    assert {"app.py", "README.md", "requirements.txt"} <= names
    for needed in (
        "sefa_plugin/__init__.py",
        "sefa_plugin/editor.py",
        "sefa_plugin/hub_cards/directions_card.md",
        "sefa_plugin/hub_cards/model_card.md",
        "sefa_plugin/assets/stylegan2-shapes64/model_index.json",
        "sefa_plugin/assets/stylegan2-shapes64/generator/diffusion_pytorch_model.safetensors",
        "sefa_plugin/assets/predictor/diffusion_pytorch_model.safetensors",
    ):
        assert needed in names, needed
    assert not any("__pycache__" in n or n.endswith(".pyc") or "/." in n for n in names)
    assert not any(p.name.startswith(".sefa-tmp-") for p in space_dir.iterdir())  # written atomically
    readme = (space_dir / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("---\n") and "sdk: gradio" in readme and "app_file: app.py" in readme
    requirements = (space_dir / "requirements.txt").read_text(encoding="utf-8")
    lines = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert "git+" not in requirements and not any(line.startswith("sefa_plugin") for line in lines)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert f"gradio[oauth]=={gr.__version__}" in lines
    import torch

    assert f"torch=={torch.__version__.split('+')[0]}" in lines
    assert any(line.startswith("diffusers==") for line in lines)


def test_app_starts_from_the_folder_alone(space_dir):
    result = subprocess.run(
        [sys.executable, "-c", START_APP],
        cwd=space_dir,
        env=_clean_env(space_dir),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert Path(out["package"]).resolve() == (space_dir / "sefa_plugin" / "__init__.py").resolve()
    assert out["image"] == "(64, 64)"
    assert out["page"].endswith("True")


def test_write_space_needs_the_editor(tmp_path):
    (tmp_path / "app_folder").mkdir()
    with pytest.raises(FileNotFoundError, match=r"app\.py"):
        write_space(tmp_path / "out", app_folder=tmp_path / "app_folder")
    (tmp_path / "app_folder" / "app.py").write_text("print()\n")
    (tmp_path / "app_folder" / "README.md").write_text("---\nsdk: docker\n---\n")
    with pytest.raises(ValueError, match="sdk: gradio"):
        write_space(tmp_path / "out", app_folder=tmp_path / "app_folder")
    assert not (tmp_path / "out").exists()


def test_requirements_list_no_extras():
    text = space_requirements(None)
    assert "pytest" not in text and "playwright" not in text and "gradio" not in text


def test_push_creates_a_gradio_space_in_one_commit(space_dir, tmp_path, hub_env, capsys):
    folder = tmp_path / "editor"
    assert main(["space", str(folder), "--push", "tester/sefa-editor", "--token", hub_env.token]) == 0
    assert "pushed" in capsys.readouterr().out
    server = hub_env.server
    assert hub_env.api.space_info("tester/sefa-editor").sdk == "gradio"
    files = server.repo_files("tester/sefa-editor", repo_type="space")
    local = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert {k: v for k, v in files.items() if k != ".gitattributes"} == local
    assert len(server.commits("tester/sefa-editor", repo_type="space")) == 2  # creation + one commit

    # A second push mirrors the folder: a file it no longer has goes, in the same single commit.
    (folder / "sefa_plugin" / "stale.py").write_text("X = 1\n")
    push_space(folder, "tester/sefa-editor")
    assert "sefa_plugin/stale.py" in server.repo_files("tester/sefa-editor", repo_type="space")
    (folder / "sefa_plugin" / "stale.py").unlink()
    (folder / "sefa_plugin" / "__pycache__").mkdir(exist_ok=True)
    (folder / "sefa_plugin" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    push_space(folder, "tester/sefa-editor")
    files = server.repo_files("tester/sefa-editor", repo_type="space")
    assert "sefa_plugin/stale.py" not in files and not any("__pycache__" in k for k in files)
    assert len(server.commits("tester/sefa-editor", repo_type="space")) == 4


def test_failed_push_leaves_the_space_as_it_was(space_dir, tmp_path, hub_env):
    server = hub_env.server
    server.fail_next_commit(422)
    with pytest.raises(HfHubHTTPError, match="422"):
        push_space(space_dir, "tester/new-space")
    assert not server.has_repo("tester/new-space", repo_type="space")  # the Space created for it is gone

    push_space(space_dir, "tester/old-space")
    before = server.repo_files("tester/old-space", repo_type="space")
    commits = len(server.commits("tester/old-space", repo_type="space"))
    changed = shutil.copytree(space_dir, tmp_path / "changed")
    (changed / "app.py").write_text("# changed\n")
    (changed / "sefa_plugin" / "demo.py").unlink()
    server.fail_next_commit(422)
    with pytest.raises(HfHubHTTPError, match="422"):
        push_space(changed, "tester/old-space")
    assert server.repo_files("tester/old-space", repo_type="space") == before
    assert len(server.commits("tester/old-space", repo_type="space")) == commits


def test_push_refuses_a_folder_that_is_not_a_space(tmp_path, hub_env, capsys):
    (tmp_path / "x").mkdir()
    with pytest.raises(FileNotFoundError, match="not a Space folder"):
        push_space(tmp_path / "x", "tester/s")
    assert not hub_env.server.has_repo("tester/s", repo_type="space")
