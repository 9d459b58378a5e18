"""The editor in a real browser: headless Chromium (Debian's) driven by Playwright.

Loads the page on the embedded model, drags a slider, sees the image change, downloads the direction grid
and saves a screenshot: to ``$SEFA_TEST_ARTIFACTS/editor.png`` when that variable is set (CI keeps it as a
test artefact), else under the test's tmp_path; with ``SEFA_UPDATE_DOCS_SCREENSHOT=1`` also to
``docs/editor.png``.

Skipped only when Playwright or ``/usr/bin/chromium`` is not installed (``.ci/run`` installs both).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

# Gradio's queue statistics call pandas options that pandas 3 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:Warning:gradio.queueing")
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SEFA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIMEOUT_MS = 60_000  # the machine may be busy

if not Path(CHROMIUM).is_file():
    pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    spec = importlib.util.spec_from_file_location("sefa_gradio_app", ROOT / "gradio_app" / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    demo = app.build_demo(space=False)
    demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, **app.launch_kwargs()
    )
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


IDLE = """() => [...document.querySelectorAll('#editor-image [data-testid=status-tracker]')]
    .every((el) => el.classList.contains('hide'))"""


def image_src(page) -> str:
    return page.locator("#editor-image img").get_attribute("src") or ""


def drag_slider(page, elem_id: str, fraction: float) -> None:
    """Drag a Gradio slider's thumb to `fraction` of its track with the mouse (release fires on pointer up)."""
    track = page.locator(f"#{elem_id} input[type=range]")
    box = track.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, y, steps=5)
    page.mouse.up()


def test_editor_in_the_browser(app_url, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url)
    # 1. The page loads the embedded model and shows its samples.
    page.wait_for_selector("#editor-image img")
    # Loading ends with the label suggestions step, whose message mentions them (found or not).
    page.wait_for_function("() => /suggest/i.test(document.querySelector('#status')?.innerText || '')")
    before = image_src(page)
    assert before
    # 2. Move a slider: the image changes when it is released.
    drag_slider(page, "strength-0", 0.9)
    page.wait_for_function(
        "(src) => { const img = document.querySelector('#editor-image img'); return img && img.src !== src; }",
        arg=before,
    )
    after = image_src(page)
    assert after != before
    assert float(page.locator("#strength-0 input[type=number]").input_value()) > 2
    response = page.request.get(after)
    assert response.ok and response.body().startswith(PNG_MAGIC)  # lossless
    # 3. Screenshot of the editor (top of the page: model, sliders, image), once the image is idle (Gradio
    #    dims an output while its event is pending, then fades it back in).
    page.wait_for_function(IDLE)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(500)
    out_dir = Path(os.environ.get("SEFA_TEST_ARTIFACTS") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "editor.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes().startswith(PNG_MAGIC)
    if os.environ.get("SEFA_UPDATE_DOCS_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "editor.png")
    # 4. Export the direction grid and download it.
    page.locator("#export-grid").click()
    link = page.locator("#grid-file a").first
    link.wait_for()
    with page.expect_download() as download_info:
        link.click()
    grid = tmp_path / "grid.png"
    download_info.value.save_as(grid)
    assert grid.read_bytes().startswith(PNG_MAGIC)
    page.close()


def wait_for_status(page, pattern: str) -> None:
    page.wait_for_function(
        "(re) => new RegExp(re).test(document.querySelector('#status')?.innerText || '')", arg=pattern
    )


def test_one_direction_and_a_one_direction_repo(app_url, browser, tmp_path):
    from sefa_plugin.editor import EditorSession

    session = EditorSession()
    session.compute_directions("sefa", num_directions=2)[0:1].save_pretrained(tmp_path / "one")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url)
    page.wait_for_selector("#editor-image img")
    wait_for_status(page, "suggest")
    # K = 1: one slider, and moving it changes the image.
    page.locator("#k input").fill("1")
    page.get_by_role("button", name="Load and compute").click()
    wait_for_status(page, "^1 sefa directions")
    wait_for_status(page, "suggest")
    assert page.locator("#strength-1").is_hidden()
    before = image_src(page)
    drag_slider(page, "strength-0", 0.95)
    page.wait_for_function(
        "(src) => { const img = document.querySelector('#editor-image img'); return img && img.src !== src; }",
        arg=before,
    )
    # A direction repo (here a folder) holding one direction.
    page.get_by_label("Load a direction repo").check()
    page.locator("#direction-repo textarea, #direction-repo input").first.fill(str(tmp_path / "one"))
    page.get_by_role("button", name="Load and compute").click()
    wait_for_status(page, "^1 sefa directions")
    assert "Error" not in page.locator("body").inner_text()
    page.close()


def test_upload_your_image_and_move_a_slider(app_url, browser, tmp_path):
    from sefa_plugin.data import render_scenes
    from sefa_plugin.utils.images import to_pil

    to_pil(render_scenes([0], seed=3).images)[0].save(tmp_path / "scene.png")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url)
    page.wait_for_selector("#editor-image img")
    wait_for_status(page, "suggest")
    page.locator("#your-image input[type=file]").set_input_files(str(tmp_path / "scene.png"))
    page.wait_for_function("() => /PSNR/.test(document.querySelector('#render-message')?.innerText || '')")
    page.wait_for_selector("#reconstruction img")
    before = image_src(page)
    drag_slider(page, "strength-0", 0.95)
    page.wait_for_function(
        "(src) => { const img = document.querySelector('#editor-image img'); return img && img.src !== src; }",
        arg=before,
    )
    assert "Error" not in page.locator("body").inner_text()
    page.close()
