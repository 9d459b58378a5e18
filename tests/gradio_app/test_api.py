"""The Gradio editor through its API: gradio_client against the app launched on loopback.

Covers what a user does (generate, move a slider, load directions, export, push to a Hub) and bad input
(unknown Hub id, a repo that is not a GAN, directions for another model, bad layers, a non-numeric seed):
each answers a readable message and the app keeps working.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import socket
from collections.abc import Iterator
from concurrent.futures import wait
from pathlib import Path
from types import ModuleType

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from sefa_plugin import Directions  # noqa: E402
from sefa_plugin.editor import EditorSession  # noqa: E402

# Gradio's queue statistics call pandas options that pandas 3 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:Warning:gradio.queueing")
ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "gradio_app"
MAX = 10  # sliders in the app
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sefa_gradio_app", APP_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(demo) -> str:
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo.local_url


@pytest.fixture(scope="module")
def app() -> ModuleType:
    return load_app()


@pytest.fixture(scope="module")
def app_url(app) -> Iterator[str]:
    demo = app.build_demo(space=False)
    url = launch(demo)
    yield url
    demo.close()


@pytest.fixture
def client(app_url, tmp_path) -> Iterator[gradio_client.Client]:
    c = gradio_client.Client(app_url, verbose=False, download_files=str(tmp_path / "downloads"))
    yield c
    c.close()


def setup(client, **kwargs) -> tuple:
    """Call /setup with the UI defaults overridden by `kwargs`; returns the outputs (state excluded)."""
    args = dict(
        model="", revision="", method="sefa", preset="all", custom_layers="", k=3, gs_samples=2000, repo="",
        token="", seed="0", psi=0.7, n=2, class_label="",
    )  # fmt: skip
    args.update(kwargs)
    return client.predict(**args, api_name="/setup")


def render(client, seed="0", psi=0.7, n=2, strengths=()) -> tuple[str | None, str]:
    values = list(strengths) + [0.0] * (MAX - len(strengths))
    return client.predict(seed, psi, n, *values, api_name="/render")


def labels_of(outputs: tuple) -> list[str]:
    return [u["value"] for u in outputs[4 + MAX : 4 + 2 * MAX] if u.get("visible")]


def test_generate_and_move_a_slider(client):
    out = setup(client, k=3, preset="coarse")
    status, image = out[0], out[1]
    assert "3 sefa directions on layers 0,1,2" in status
    assert Path(image).read_bytes().startswith(PNG_MAGIC)  # lossless
    sliders = out[4 : 4 + MAX]
    assert [s.get("visible") for s in sliders] == [True] * 3 + [False] * (MAX - 3)
    assert sliders[0]["minimum"] == -5 and sliders[0]["maximum"] == 5
    base, msg = render(client)
    moved, _ = render(client, strengths=[4.0, 0.0, -3.0])
    again, _ = render(client, strengths=[4.0, 0.0, -3.0])
    assert msg == ""
    assert Path(base).read_bytes() != Path(moved).read_bytes()
    assert Path(moved).read_bytes() == Path(again).read_bytes()  # deterministic
    seed, image, _ = client.predict(0.7, 1, *[0.0] * MAX, api_name="/random_seed")
    assert seed.isdigit() and Path(image).is_file()


def test_ganspace_when_available(app, client):
    if "ganspace" not in [value for _, value in app.METHOD_CHOICES]:
        pytest.skip("GANSpace is not available")
    out = setup(client, method="ganspace", gs_samples=2000, k=3)
    assert "3 ganspace directions" in out[0]
    assert [u["value"] for u in out[4 + MAX : 4 + MAX + 3]] == ["PC0", "PC1", "PC2"]
    lo, hi = out[4]["minimum"], out[4]["maximum"]
    assert lo == -hi and hi != 5  # the slider range comes from the directions (±3σ), not from the UI
    image, status = render(client, strengths=[hi, 0.0, lo])
    assert status == "" and Path(image).is_file()


def test_render_without_setup_uses_the_embedded_model(client):
    image, status = render(client, n=1, strengths=[2.0])
    assert status == "" and Path(image).read_bytes().startswith(PNG_MAGIC)


def test_bad_input_gives_messages_and_the_app_keeps_working(client, hub_env, tmp_path):
    setup(client)
    image, status = render(client, seed="abc")
    assert not isinstance(image, str) and "`seed` must be a whole number" in status  # image unchanged
    assert "out of range" in setup(client, preset="custom", custom_layers="0-99")[0]
    assert "`custom layers` is empty" in setup(client, preset="custom", custom_layers="")[0]
    assert "no such repository" in setup(client, model="tester/does-not-exist")[0].lower()
    api = hub_env.api
    api.create_repo("not-a-gan")
    api.upload_file(path_or_fileobj=b"# hello\n", path_in_repo="README.md", repo_id="tester/not-a-gan")
    assert "is not a GAN pipeline folder" in setup(client, model="tester/not-a-gan")[0]
    Directions(vectors=torch.eye(16)[:2], method="coordinate", latent_space="w+", layers=[0]).save_pretrained(
        tmp_path / "other"
    )
    assert "do not fit the loaded model" in setup(client, method="repo", repo=str(tmp_path / "other"))[0]
    assert "not a direction repository" in setup(client, method="repo", repo="tester/not-a-gan")[0]
    assert "applies to class-conditional models only" in setup(client, class_label="3")[0]
    image, status = render(client, strengths=[1.0])
    assert status == "" and Path(image).is_file()


def test_class_conditional_model_takes_a_class_label(client, tmp_path):
    from factories import tiny_biggan

    from sefa_plugin import SefaPipeline

    SefaPipeline(generator=tiny_biggan()).save_pretrained(tmp_path / "biggan")
    model = str(tmp_path / "biggan")
    status, image = setup(client, model=model, class_label="2", psi=1.0)[:2]
    assert "class 2 of 5" in status and Path(image).is_file()
    assert "`class_label` must be an integer in [0, 4]" in setup(client, model=model, class_label="7")[0]
    assert "class 0 of 5" in setup(client, model=model)[0]


def test_load_directions_then_export(client, tmp_path):
    session = EditorSession()
    d = session.compute_directions("sefa", layers="middle", num_directions=4)
    d.labels[:2] = ["hue", "size"]
    d.save_pretrained(tmp_path / "mine")
    out = setup(client, method="repo", repo=str(tmp_path / "mine"))
    assert "4 sefa directions" in out[0]
    assert labels_of(out) == ["hue", "size", "direction 2", "direction 3"]
    # The walk's direction choice covers the loaded directions, named by their labels.
    assert [value for _, value in out[3]["choices"]] == [0, 1, 2, 3] and out[3]["choices"][0][0] == "0: hue"
    strengths = [2.0, 0.0, 0.0, -1.0]
    grid, status = client.predict("3", 0.7, *strengths, *[0.0] * (MAX - 4), api_name="/export_grid")
    assert Path(grid).read_bytes().startswith(PNG_MAGIC) and "Direction grid" in status
    walk, status = client.predict(1, 6, "3", 0.7, 2, *strengths, *[0.0] * (MAX - 4), api_name="/export_walk")
    assert Path(walk).read_bytes()[:6] == b"GIF89a" and "6 frames" in status
    labels = ["hue", "scale", "", "light"] + [""] * (MAX - 4)
    files, status = client.predict(*labels, api_name="/export_directions")
    names = sorted(Path(f).name for f in files)
    assert names == ["README.md", "directions.safetensors", "preview.png"]
    back = Directions.from_pretrained(next(f for f in files if f.endswith(".safetensors")))
    assert back.labels == ["hue", "scale", "direction 2", "light"] and back.layers == d.layers


def push(client, repo_id, token, labels=("pose",)) -> str:
    values = list(labels) + [""] * (MAX - len(labels))
    return client.predict(repo_id, token, False, *values, api_name="/push")


def test_push_to_the_hub(client, hub_env, caplog):
    caplog.set_level(logging.DEBUG)
    setup(client, k=2)
    status = push(client, "tester/editor-api", hub_env.token, labels=["pose", "colour"])
    assert status.startswith("✅") and "tester/editor-api" in status
    files = hub_env.server.repo_files("tester/editor-api")
    assert {"directions.safetensors", "README.md", "preview.png"} <= set(files)
    card = files["README.md"].decode()
    assert "pose" in card and "colour" in card and "weights" in card.lower()
    assert files["preview.png"].startswith(PNG_MAGIC)
    assert hub_env.token not in caplog.text


def test_push_failures_say_why_and_change_nothing(client, hub_env, caplog):
    caplog.set_level(logging.DEBUG)
    setup(client, k=2)
    status = push(client, "tester/denied", "hf_not_a_valid_token")
    assert status.startswith("⚠️ Not authorised") and "hf_not_a_valid_token" not in status
    assert "hf_not_a_valid_token" not in caplog.text
    hub_env.server.fail_next_commit(422)
    status = push(client, "tester/failing", hub_env.token)
    assert status.startswith("⚠️ The Hub answered with an error (422)")
    assert not hub_env.api.repo_exists("tester/failing")
    assert "must look like" in push(client, "a/b/c", hub_env.token)
    hub_env.set_offline(True)
    assert "offline mode is on" in push(client, "tester/offline", hub_env.token)


def test_overload_answers_busy_and_the_app_recovers(app):
    demo = app.build_demo(space=False, concurrency=1, queue_max_size=1)
    url = launch(demo)
    try:
        c = gradio_client.Client(url, verbose=False, download_files=False)
        jobs = [c.submit("0", 0.7, 8, float(i % 5), *[0.0] * (MAX - 1), api_name="/render") for i in range(8)]
        wait(jobs, timeout=60)
        errors = [j.exception() for j in jobs if j.exception() is not None]
        assert errors and all("queue is full" in str(e).lower() for e in errors)
        assert len(errors) < len(jobs)
        assert c.predict("0", 0.7, 1, *[0.0] * MAX, api_name="/render")[1] == ""
        c.close()
    finally:
        demo.close()


def test_space_build_uses_oauth_and_local_build_does_not(app, monkeypatch):
    local = app.build_demo()
    assert not local.expects_oauth
    assert any(getattr(b, "type", None) == "password" for b in local.blocks.values())  # the token field
    # What a Space with `hf_oauth: true` sets (Gradio reads the OAuth variables at import).
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("SPACE_ID", "tester/sefa-editor")
    for name, value in {
        "OAUTH_CLIENT_ID": "client",
        "OAUTH_CLIENT_SECRET": "secret",
        "OAUTH_SCOPES": "openid profile write-repos",
        "OPENID_PROVIDER_URL": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setattr(gr.oauth, name, value)
    space = app.build_demo()
    assert space.expects_oauth
    assert not any(getattr(b, "type", None) == "password" for b in space.blocks.values())
    routes = {getattr(r, "path", "") for r in space.app.routes}
    assert "/login/huggingface" in routes


def test_space_folder_is_valid():
    text = (APP_DIR / "README.md").read_text(encoding="utf-8")
    front = re.match(r"^---\n(.*?)\n---\n", text, flags=re.S)
    assert front, "README.md must start with YAML front matter"
    meta = dict(line.split(":", 1) for line in front.group(1).splitlines() if ":" in line and not line.startswith(" "))
    meta = {k.strip(): v.strip().strip('"') for k, v in meta.items()}
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == gr.__version__
    assert (APP_DIR / meta["app_file"]).is_file()
    assert json.dumps(meta)  # plain strings only


# ------------------------------------------------------------------ rough edges a new user hits (issue 24)
def test_one_direction_works(client, tmp_path):
    out = setup(client, k=1)
    assert "1 sefa directions" in out[0] and Path(out[1]).is_file()
    assert [value for _, value in out[3]["choices"]] == [0]  # the walk's choice holds the one direction
    walk, status = client.predict(0, 4, "0", 0.7, 1, *[1.0] + [0.0] * (MAX - 1), api_name="/export_walk")
    assert Path(walk).is_file() and "ready" in status
    session = EditorSession()
    one = session.compute_directions("sefa", num_directions=3)[0:1]
    one.save_pretrained(tmp_path / "one")
    out = setup(client, method="repo", repo=str(tmp_path / "one"))
    assert "1 sefa directions" in out[0] and [value for _, value in out[3]["choices"]] == [0]


@pytest.mark.parametrize("k", [0, 11, 2.5, 10_000])
def test_k_out_of_range_is_refused_not_clamped(client, k):
    status = setup(client, k=k)[0]
    assert "`K` must be a whole number in [1, 10]" in status


def test_setup_warning_survives_the_suggestion_step(client, tmp_path):
    from sefa_plugin import DEFAULT_MODEL, SefaPipeline

    pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
    d = pipe.factorize(num_directions=2)
    d.base_model["weights_sha256"] = "0" * 64  # computed on other weights
    d.labels[0] = "<img src=http://127.0.0.1:9/x.png>"
    d.save_pretrained(tmp_path / "foreign")
    out = setup(client, method="repo", repo=str(tmp_path / "foreign"))
    assert "weights sha256" in out[0]
    status = client.predict(api_name="/suggest")[0]
    assert "weights sha256" in status and "suggested" in status.lower()
    # Labels from a file are text: the status never holds their markup, the slider title names them.
    assert "<img" not in out[0] and "<img" not in status
    sliders = out[4 : 4 + MAX]
    assert sliders[0]["label"].startswith("0: <img src=")  # a component label is plain text
    suggested = client.predict(api_name="/suggest")[1 + MAX : 1 + 2 * MAX]
    assert "suggested" in suggested[1]["label"]


def test_slider_ends_are_rounded(client, app):
    if "ganspace" not in [value for _, value in app.METHOD_CHOICES]:
        pytest.skip("GANSpace is not available")
    out = setup(client, method="ganspace", gs_samples=2000, k=2)
    lo, hi, step = out[4]["minimum"], out[4]["maximum"], out[4]["step"]
    assert lo == -hi and len(repr(hi)) <= 5 and len(repr(step)) <= 6  # e.g. 6.9 and 0.1, not 6.890731573104858


def test_walk_exports_as_mp4(client):
    setup(client, k=2)
    walk, status = client.predict(
        1, 4, "0", 0.7, 1, *[0.0] * MAX, "mp4", api_name="/export_walk"
    )  # fmt: skip
    data = Path(walk).read_bytes()
    assert walk.endswith(".mp4") and data[4:8] == b"ftyp" and "MP4" in status


def test_the_page_opens_on_the_given_model(app, tmp_path):
    demo = app.build_demo(space=False, model="someone/model")
    values = [c.get("props", {}).get("value") for c in demo.config["components"]]
    assert "someone/model" in values


def test_upload_an_image_then_slide(client, tmp_path):
    from sefa_plugin.data import render_scenes
    from sefa_plugin.utils.images import to_pil

    setup(client, k=3)
    to_pil(render_scenes([0], seed=3).images)[0].save(tmp_path / "scene.png")
    image, reconstruction, message = client.predict(
        gradio_client.handle_file(str(tmp_path / "scene.png")), "0", 0.7, 2, *[0.0] * MAX, api_name="/upload"
    )
    assert "PSNR" in message and Path(image).is_file() and Path(reconstruction).is_file()
    from PIL import Image

    assert Image.open(image).size == (64, 64)  # one picture, not a row of samples
    moved, status = render(client, n=2, strengths=[4.0])
    assert status == "" and Image.open(moved).size == (64, 64)
    assert Path(moved).read_bytes() != Path(image).read_bytes()
