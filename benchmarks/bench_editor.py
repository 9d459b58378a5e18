"""Benchmark: the editor's latency from slider release to image, and its behaviour under load.

1. Server side, in process: ``EditorSession.render`` on the embedded model (SeFa, K = 10) after a slider
   move: base latents cached, edits combined, synthesis, PIL conversion; then the same plus the PNG
   encoding Gradio does before serving the image. Median and p95 of `--repeats` moves, for 1 and 4 samples.
2. End to end over loopback: the editor app in its own process (``gradio_app/app.py --threads 1``):
   * one gradio_client session calling ``/render`` (submit → result, image not downloaded);
   * in the browser (Debian's Chromium driven by Playwright): pointer up on a slider → the new image is
     decoded, timed inside the page (``pointerup`` listener, then a MutationObserver and ``img.decode()``).
3. Load: N concurrent gradio_client sessions (N = 10 and 50 by default), each calling ``/render`` with new
   slider values back to back for `--duration` seconds: requests completed, busy (Gradio's "queue is
   full" answer: the queue holds at most 32 waiting events), failed (anything else), p50/p95 latency.

Run from the repository root (the browser part needs playwright and /usr/bin/chromium)::

    nice .venv/bin/python benchmarks/bench_editor.py
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MAX = 10  # sliders in the app
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1e3 for s in seconds]
    return f"  {name:<46} median {statistics.median(ms):7.1f} ms   p95 {pct(ms, 95):7.1f} ms   (n = {len(ms)})"


def timed(fn: Callable[[], object], repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def random_strengths(k: int = MAX) -> list[float]:
    return [round(random.uniform(-5, 5), 1) for _ in range(k)]


# ---------------------------------------------------------------------------------------------- 1. server side
def bench_server_side(repeats: int) -> None:
    from sefa_plugin.editor import EditorSession

    session = EditorSession()
    session.compute_directions("sefa", layers="all", num_directions=MAX)
    print(f"1. server side, in process (torch threads = {torch.get_num_threads()}), one slider move = one render:")
    for n in (1, 4):
        session.render(seed=0, truncation_psi=0.7, num_samples=n)  # base latents cached, as after the first view
        render = timed(lambda n=n: session.render(0, 0.7, n, random_strengths()), repeats)

        def render_png(n: int = n) -> None:
            session.render(0, 0.7, n, random_strengths()).save(io.BytesIO(), format="PNG")

        print(summary(f"render, {n} sample(s) of 64²", render))
        print(summary(f"render + PNG encoding, {n} sample(s)", timed(render_png, repeats)))
    cold = timed(lambda: session.render(random.randrange(10**6), 0.7, 4, random_strengths()), max(5, repeats // 4))
    print(summary("new seed (mapping + render), 4 samples", cold))


# ---------------------------------------------------------------------------------------------- 2. server process
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(ROOT / "gradio_app" / "app.py"), "--port", str(port), "--threads", str(threads)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "config", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("the editor app did not start within 120 s")


def bench_client(url: str, repeats: int) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    seconds = timed(lambda: client.predict("0", 0.7, 4, *random_strengths(), api_name="/render"), repeats)
    print(summary("gradio_client /render round trip, 4 samples", seconds))
    client.close()


IN_PAGE_TIMER = """
() => {
  window.__lat = null;
  const root = document.querySelector('#editor-image');
  const before = root.querySelector('img')?.src;
  document.addEventListener('pointerup', () => { window.__up = performance.now(); }, {capture: true, once: true});
  const obs = new MutationObserver(async () => {
    const img = root.querySelector('img');
    if (img && img.src !== before && window.__lat === null) {
      window.__lat = -1;
      obs.disconnect();
      try { await img.decode(); } catch (e) {}
      window.__lat = performance.now() - window.__up;
    }
  });
  obs.observe(root, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}
"""


def bench_browser(url: str, repeats: int) -> None:
    if not Path(CHROMIUM).is_file():
        print(f"  browser: skipped ({CHROMIUM} not installed)")
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_selector("#editor-image img")
        page.wait_for_function("() => /suggest/i.test(document.querySelector('#status')?.innerText || '')")
        track = page.locator("#strength-0 input[type=range]")
        latencies = []
        for i in range(repeats + 2):
            box = track.bounding_box()
            y = box["y"] + box["height"] / 2
            page.evaluate(IN_PAGE_TIMER)
            page.mouse.move(box["x"] + box["width"] / 2, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * (0.1 + 0.8 * ((i * 0.37) % 1)), y, steps=3)
            page.mouse.up()
            page.wait_for_function("() => window.__lat !== null && window.__lat > 0")
            if i >= 2:  # warm-up moves
                latencies.append(page.evaluate("window.__lat") / 1e3)
        browser.close()
    print(summary("browser: slider release → new image decoded", latencies))


# ---------------------------------------------------------------------------------------------- 3. load
def bench_load(url: str, sessions: int, duration: float) -> None:
    from gradio_client import Client

    clients = [Client(url, verbose=False, download_files=False) for _ in range(sessions)]
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"completed": 0, "busy": 0, "failed": 0}
    errors: dict[str, int] = {}
    start = threading.Barrier(sessions + 1)
    stop_at = [0.0]

    def run(client: Client) -> None:
        rng = random.Random(id(client))
        start.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                strengths = [round(rng.uniform(-5, 5), 1) for _ in range(MAX)]
                client.predict(str(rng.randrange(4)), 0.7, 4, *strengths, api_name="/render")
                kind = "completed"
            except Exception as err:
                kind = "busy" if "queue is full" in str(err).lower() else "failed"
                if kind == "failed":
                    with lock:
                        errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
                time.sleep(0.5 if kind == "busy" else 0)  # a user retries after a moment
            with lock:
                counts[kind] += 1
                if kind == "completed":
                    latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + duration
    start.wait()
    for t in threads:
        t.join(timeout=duration + 120)
    for c in clients:
        c.close()
    ms = [s * 1e3 for s in latencies] or [float("nan")]
    rate = counts["completed"] / duration
    print(
        f"  N = {sessions:3d}: completed {counts['completed']:5d} ({rate:5.1f}/s), busy {counts['busy']:5d}, "
        f"failed {counts['failed']:3d}{f' {errors}' if errors else ''}, "
        f"p50 {statistics.median(ms):7.1f} ms, p95 {pct(ms, 95):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="slider moves per measurement (default: %(default)s)")
    parser.add_argument("--browser-repeats", type=int, default=20, help="slider moves in the browser")
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 50], help="load test session counts")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load test (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, here and in the app (default: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    random.seed(0)
    print(f"torch {torch.__version__}, python {platform.python_version()}, os.cpu_count() = {os.cpu_count()}")
    print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    bench_server_side(args.repeats)
    proc, url = start_app(args.threads)
    try:
        print(f"2. end to end, app in its own process (torch threads = {args.threads}, queue concurrency 2):")
        bench_client(url, args.repeats)
        bench_browser(url, args.browser_repeats)
        print(f"3. load: concurrent gradio_client sessions calling /render for {args.duration:.0f} s each:")
        for n in args.sessions:
            bench_load(url, n, args.duration)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
