"""The sefa_plugin editor: a thin Gradio UI over :class:`sefa_plugin.editor.EditorSession`.

Run it locally with ``sefa app`` (or ``python gradio_app/app.py``), or as a Hugging Face Space: ``sefa space
DIR`` writes this file, ``README.md`` (the Space front matter), a ``requirements.txt`` and the package itself
into a self-contained Space folder. Every action below is one call into the library; this file only lays
out components and turns errors into readable messages.

API endpoints (``gradio_client.Client(url).predict(..., api_name=...)``): ``/setup`` (load a model and
compute or load directions), ``/render`` (seed, truncation, samples, one strength per slider),
``/random_seed``, ``/suggest``, ``/export_grid``, ``/export_walk``, ``/export_directions``, ``/push``.
"""

from __future__ import annotations

import argparse
import html
import logging
import math
import os
import random
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the editor must work offline

import gradio as gr

from sefa_plugin.editor import (
    GANSPACE_AVAILABLE,
    LAYER_PRESETS,
    MAX_SEED,
    EditorSession,
    describe_error,
    layer_spec,
)

logger = logging.getLogger("sefa_plugin.app")

#: Sliders are static components: this many exist, unused ones are hidden.
MAX_DIRECTIONS = 10
#: Events run at most this many at a time (each render uses the CPU fully for a few tens of ms).
CONCURRENCY = 2
#: Requests waiting beyond this are refused with Gradio's "queue is full" (busy) message, not queued forever.
QUEUE_MAX_SIZE = 32

METHOD_CHOICES = [("SeFa (closed form)", "sefa")]
if GANSPACE_AVAILABLE:
    METHOD_CHOICES.append(("GANSpace (PCA)", "ganspace"))
METHOD_CHOICES.append(("Load a direction repo", "repo"))

# Show the small GAN images large, with sharp pixels (the PNG itself stays at native resolution).
CSS = """
.sefa-image img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
#render-message { min-height: 1.6em; }
/* The image stays in view while the sliders below it scroll past ("clip" clips like Gradio's "hidden" without
   making the container a scroll box, which would keep the sticky panel from sticking). */
.gradio-container { overflow: clip !important; }
#image-panel { position: sticky; top: 0; z-index: 1000; background: var(--background-fill-primary); }
"""
INTRO = (
    "# SeFa editor\n"
    "Pick a model and a method, then move the sliders: each one walks along a semantic direction the "
    "GAN has learned (edits combine). Label the directions, export them, and push them to the Hub."
)


def _in_space() -> bool:
    # Gradio's own test (gradio.utils.get_space): outside a Space, a LoginButton mocks OAuth with the local
    # token and whoami(), which fails offline, so the button is only built where Gradio sets up real OAuth.
    return os.environ.get("SYSTEM") == "spaces" and bool(os.environ.get("SPACE_ID"))


def _text(value: object) -> str:
    """Text from a model, a direction file or a user, made inert inside Markdown: no HTML, no images or links.

    Direction files come from anyone on the Hub: their labels and metadata must never become markup (an
    ``<img src=...>`` or ``![](...)`` would make every visitor's browser fetch a URL); ``[a](url)`` links are
    broken too. Code spans and brackets stay.

    Example:

    >>> _text('<img src=x> `seed`')
    '&lt;img src=x&gt; `seed`'
    """
    escaped = html.escape(" ".join(str(value).split()), quote=False)
    return escaped.replace("![", "!\\[").replace("](", "]\\(")


def _error(err: BaseException) -> str:
    message = describe_error(err)
    logger.warning("editor: %s", message)  # the message never holds the token
    gr.Warning(html.escape(message))
    return f"⚠️ {_text(message)}"


def _nice_range(lo: float, hi: float) -> tuple[float, float, float]:
    """Slider ends rounded outwards to two significant digits, and a step of about a hundredth of the range.

    Example:

    >>> _nice_range(-6.890731573104858, 6.890731573104858)
    (-6.9, 6.9, 0.1)
    """
    span = max(abs(lo), abs(hi))
    unit = 10 ** (math.floor(math.log10(span)) - 1) if span > 0 else 0.1
    nlo, nhi = math.floor(lo / unit) * unit, math.ceil(hi / unit) * unit
    step = float(f"{(nhi - nlo) / 100:.1g}")
    return round(nlo, 10), round(nhi, 10), step


def _session(session: EditorSession | None, allow_local: bool) -> EditorSession:
    """The user's session; a fresh one on the embedded model with SeFa directions if there is none."""
    if session is None:
        session = EditorSession(allow_local=allow_local)
        session.compute_directions("sefa", num_directions=MAX_DIRECTIONS)
    return session


def _shown(labels: Sequence[str], session: EditorSession) -> list[str]:
    """The label fields of the current directions (the hidden ones beyond them are ignored)."""
    return list(labels)[: len(session.require_directions())]


def _title(session: EditorSession, i: int, label: str | None = None) -> str:
    """A slider's title: its index, its label, and the predictor's suggestion when it differs."""
    directions = session.require_directions()
    text = " ".join((label or "").split()) or directions.labels[i]
    suggestion = session.suggestions[i] if i < len(session.suggestions) else None
    if suggestion and suggestion[0] != text:
        text += f" (suggested: {suggestion[0]})"
    return f"{i}: {text}"


def _slider_updates(session: EditorSession) -> list[dict[str, Any]]:
    directions = session.require_directions()
    lo, hi, step = _nice_range(*directions.strength_range)
    updates = []
    for i in range(MAX_DIRECTIONS):
        if i < len(directions):
            updates.append(
                gr.update(visible=True, minimum=lo, maximum=hi, step=step, value=0, label=_title(session, i))
            )
        else:
            updates.append(gr.update(visible=False, value=0))
    return updates


def _title_updates(session: EditorSession, labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """New slider titles only (values untouched), e.g. after label suggestions or an edited label."""
    directions = session.require_directions()
    labels = list(labels or [])
    return [
        gr.update(label=_title(session, i, labels[i] if i < len(labels) else None))
        if i < len(directions)
        else gr.skip()
        for i in range(MAX_DIRECTIONS)
    ]


def _walk_update(session: EditorSession) -> dict[str, Any]:
    """The walk's direction choices: one per direction, named by its label (works for K = 1 too)."""
    directions = session.require_directions()
    return gr.update(choices=[(f"{i}: {directions.labels[i]}", i) for i in range(len(directions))], value=0)


def _suggestion_text(session: EditorSession, i: int) -> str:
    s = session.suggestions[i] if i < len(session.suggestions) else None
    return f"suggested: {s[0]} ({s[1]:.0%} of the change)" if s else ""


def _label_updates(session: EditorSession) -> list[dict[str, Any]]:
    directions = session.require_directions()
    return [
        gr.update(visible=True, value=directions.labels[i], info=_suggestion_text(session, i))
        if i < len(directions)
        else gr.update(visible=False, value="")
        for i in range(MAX_DIRECTIONS)
    ]


def _summary(session: EditorSession) -> str:
    d = session.require_directions()
    model = session.model_name or "the embedded model"
    if session.class_label is not None:
        model += f", class {session.class_label} of {session.num_classes}"
    lo, hi, _ = _nice_range(*d.strength_range)
    text = (
        f"{len(d)} {_text(d.method)} directions on layers {','.join(map(str, d.layers))} of {_text(model)} "
        f"(strengths {lo:g} to {hi:g}). Move a slider and release it."
    )
    return text + "".join(f"\n\n⚠️ {_text(note)}" for note in session.notes)


def _k(value: object) -> int:
    """K from the UI: a whole number in [1, MAX_DIRECTIONS] (the editor has that many sliders), never clamped."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not math.isfinite(number) or number != int(number) or not 1 <= number <= MAX_DIRECTIONS:
        raise ValueError(
            f"`K` must be a whole number in [1, {MAX_DIRECTIONS}] (the editor has {MAX_DIRECTIONS} sliders; "
            f"use `sefa factorize -k` for more), got {value!r}."
        )
    return int(number)


# ---------------------------------------------------------------------------------------------- handlers
def build_handlers(allow_local: bool) -> dict[str, Any]:
    """The event handlers: each is one library call wrapped in readable error handling."""

    def setup(
        session,
        model,
        revision,
        method,
        preset,
        custom_layers,
        k,
        gs_samples,
        repo,
        token,
        seed,
        psi,
        n,
        class_label="",
    ) -> tuple:
        skip = [gr.skip()] * (2 * MAX_DIRECTIONS + 3)
        try:
            previous = session.pipe if session is not None else None
            if session is None:
                session = EditorSession(model, revision=revision or None, token=token or None, allow_local=allow_local)
            else:
                session.load_model(model, revision=revision or None, token=token or None)
            session.set_class_label(class_label)
            if method == "repo":
                session.load_directions(repo, token=token or None)
            else:
                session.compute_directions(
                    method, layers=layer_spec(preset, custom_layers), num_directions=_k(k), num_samples=gs_samples
                )
            new_psi = psi if session.pipe is previous else session.pipe.default_truncation_psi
            image = session.render(seed, new_psi, int(n))
        except Exception as err:
            if session is not None:
                session.failed = True  # the suggestion step that follows keeps this message on screen
            return (session, _error(err), *skip)
        session.failed = False
        return (
            session,
            _summary(session),
            image,
            new_psi,
            _walk_update(session),
            *_slider_updates(session),
            *_label_updates(session),
        )

    def suggest(session) -> tuple:
        if session is not None and getattr(session, "failed", False):
            return (gr.skip(), *[gr.skip()] * (2 * MAX_DIRECTIONS))  # keep the setup's error on screen
        try:
            session = _session(session, allow_local)
            suggestions = session.suggest_labels()
        except Exception as err:
            return (_error(err), *[gr.skip()] * (2 * MAX_DIRECTIONS))
        found = sum(s is not None for s in suggestions)
        if not session.is_embedded:
            note = "Label suggestions need the embedded model (the predictor knows its scenes only)."
        elif not found:
            note = "No label suggestions: the factor predictor is not available."
        else:
            note = f"The factor predictor suggested labels for {found} directions (in the slider titles)."
        return (f"{_summary(session)}\n\n{note}", *_label_updates(session), *_title_updates(session))

    def upload(
        session,
        picture,
        seed,
        psi,
        n,
        *strengths,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008  (Gradio's way to ask for a progress tracker)
    ) -> tuple:
        """Invert the user's picture, then render it with the current sliders."""
        if picture is None:
            return session, gr.skip(), gr.skip(), ""
        try:
            session = _session(session, allow_local)
            progress(0, desc="Inverting your image")
            reconstruction, psnr = session.invert_image(picture, progress=True)
            image = session.render(seed, psi, int(n), strengths)
        except Exception as err:
            return session, gr.skip(), gr.skip(), _error(err)
        message = (
            f"Your image is inverted (reconstruction PSNR {psnr:.1f} dB): every slider now edits it. "
            "Clear the upload to edit samples again."
        )
        return session, image, reconstruction, message

    def clear_upload(session, seed, psi, n, *strengths) -> tuple:
        if session is None:
            return session, gr.skip(), gr.skip(), ""
        session.clear_image()
        session, image, message = render(session, seed, psi, n, *strengths)
        return session, image, None, message

    def retitle(session, *labels) -> list:
        if session is None or session.directions is None:
            return [gr.skip()] * MAX_DIRECTIONS
        return _title_updates(session, labels)

    def use_suggestions(session, *labels) -> list:
        if session is None:
            return list(labels)
        return [
            (session.suggestions[i][0] if i < len(session.suggestions) and session.suggestions[i] else label)
            for i, label in enumerate(labels)
        ]

    def render(session, seed, psi, n, *strengths) -> tuple:
        try:
            session = _session(session, allow_local)
            image = session.render(seed, psi, int(n), strengths)
        except Exception as err:
            return session, gr.skip(), _error(err)
        return session, image, ""

    def random_seed(session, psi, n, *strengths) -> tuple:
        seed = random.randint(0, MAX_SEED - 64)
        session, image, status = render(session, seed, psi, n, *strengths)
        return session, str(seed), image, status

    def export_grid(session, seed, psi, *strengths) -> tuple:
        try:
            session = _session(session, allow_local)
            path = session.export_grid(seed=seed, truncation_psi=psi, strengths=strengths)
        except Exception as err:
            return session, gr.skip(), _error(err)
        return session, str(path), "Direction grid ready: one row per direction, strengths left to right."

    def export_walk(session, index, frames, seed, psi, n, *strengths_and_format) -> tuple:
        strengths = strengths_and_format[:MAX_DIRECTIONS]
        fmt = (strengths_and_format[MAX_DIRECTIONS:] or ["gif"])[0] or "gif"
        try:
            session = _session(session, allow_local)
            path = session.export_walk(
                int(index),
                format=str(fmt).lower(),
                seed=seed,
                truncation_psi=psi,
                num_samples=int(n),
                strengths=strengths,
                num_frames=int(frames),
            )
        except Exception as err:
            return session, gr.skip(), _error(err)
        kind = "MP4 video" if path.suffix == ".mp4" else "looping GIF"
        return session, str(path), f"Walk along direction {int(index)} ready ({int(frames)} frames, {kind})."

    def export_directions(session, *labels) -> tuple:
        try:
            session = _session(session, allow_local)
            folder = session.export_directions(labels=_shown(labels, session))
        except Exception as err:
            return session, gr.skip(), _error(err)
        files = [str(folder / name) for name in ("directions.safetensors", "README.md", "preview.png")]
        return session, files, f"Direction file ready ({len(session.directions)} directions, with card and preview)."

    def _push(session, repo_id, token, private, labels: Sequence[str]) -> tuple:
        try:
            session = _session(session, allow_local)
            url = session.push_to_hub(
                repo_id, token=token or None, private=bool(private) or None, labels=_shown(labels, session)
            )
        except Exception as err:
            return session, _error(err)
        return session, f"✅ Pushed {len(session.directions)} directions to `{repo_id.strip()}`: {url}"

    def push(session, repo_id, token, private, *labels) -> tuple:
        return _push(session, repo_id, token, private, labels)

    def push_oauth(oauth_token: gr.OAuthToken | None, session, repo_id, private, *labels) -> tuple:
        if oauth_token is None:
            return session, "⚠️ Sign in with Hugging Face first (the button above) to push."
        return _push(session, repo_id, oauth_token.token, private, labels)

    return {
        "setup": setup,
        "suggest": suggest,
        "use_suggestions": use_suggestions,
        "retitle": retitle,
        "upload": upload,
        "clear_upload": clear_upload,
        "render": render,
        "random_seed": random_seed,
        "export_grid": export_grid,
        "export_walk": export_walk,
        "export_directions": export_directions,
        "push": push,
        "push_oauth": push_oauth,
    }


def _walk_preview(file: Any) -> dict[str, Any]:
    """Play an exported MP4 walk in the page (GIFs play in the file's own preview)."""
    path = getattr(file, "name", file)
    if isinstance(path, str) and path.endswith(".mp4"):
        return gr.update(value=path, visible=True)
    return gr.update(value=None, visible=False)


def _method_settings(method: str) -> tuple:
    """Show the settings of the chosen method: layers and K, GANSpace samples, or the repo field."""
    return (
        gr.update(visible=method != "repo"),
        gr.update(visible=method == "ganspace"),
        gr.update(visible=method == "repo"),
    )


# ---------------------------------------------------------------------------------------------- layout
def build_demo(
    *,
    model: str | None = None,
    space: bool | None = None,
    allow_local: bool | None = None,
    concurrency: int = CONCURRENCY,
    queue_max_size: int | None = QUEUE_MAX_SIZE,
) -> gr.Blocks:
    """Build the editor.

    Args:
        model: The model loaded when the page opens (default: the embedded one); visitors can change it.
        space: Build for a Hugging Face Space: a "Sign in with Hugging Face" button instead of a token
            field (default: whether running in a Space, i.e. ``SYSTEM=spaces`` and ``SPACE_ID`` set).
            Outside a Space no OAuth is set up, so the UI builds and runs offline.
        allow_local: Accept local folders and files as models and direction sources (default: not in a
            Space, so that visitors cannot read the server's files).
        concurrency: Events running at once.
        queue_max_size: Waiting events beyond which new ones get Gradio's "queue is full" message.

    Returns:
        The ``gr.Blocks`` app, queue configured; launch it with ``demo.launch(**launch_kwargs())``.
    """
    space = _in_space() if space is None else space
    allow_local = (not space) if allow_local is None else allow_local
    h = build_handlers(allow_local)
    model_hint = "empty: the embedded 64×64 StyleGAN2 · a Hub id (org/name)"
    if allow_local:
        model_hint += " · a pipeline folder or a checkpoint (.pkl/.pt)"

    with gr.Blocks(title="SeFa editor", analytics_enabled=False) as demo:
        state = gr.State(None, time_to_live=3600, delete_callback=lambda s: s.close() if s else None)
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                with gr.Accordion("1 · Model", open=True):
                    model_box = gr.Textbox(model or "", label="Model", placeholder=model_hint)
                    revision = gr.Textbox(label="Revision", placeholder="main (Hub models only)")
                    class_label = gr.Textbox(
                        label="Class label", placeholder="class-conditional models (BigGAN): 0 … c_dim − 1; default 0"
                    )
                with gr.Accordion("2 · Directions", open=True):
                    method = gr.Radio(METHOD_CHOICES, value="sefa", label="Method")
                    with gr.Group(visible=True) as layer_group:
                        preset = gr.Dropdown(list(LAYER_PRESETS), value="all", label="Layers")
                        custom_layers = gr.Textbox(label="Custom layers", placeholder="0-3 or 0-1,4", visible=False)
                        k = gr.Number(MAX_DIRECTIONS, label=f"Directions (K, 1 to {MAX_DIRECTIONS})", elem_id="k")
                    gs_samples = gr.Number(20_000, precision=0, label="GANSpace samples", visible=False)
                    repo = gr.Textbox(
                        label="Direction repo",
                        elem_id="direction-repo",
                        placeholder="org/name" + (" or a folder / directions.safetensors" if allow_local else ""),
                        visible=False,
                    )
                    setup_btn = gr.Button("Load and compute", variant="primary")
                    # What loading did (or why it failed) shows right under the button that started it.
                    status = gr.Markdown(elem_id="status", label="status")
                with gr.Accordion("3 · Samples", open=True):
                    with gr.Row():
                        seed = gr.Textbox("0", label="Seed", scale=3, elem_id="seed")
                        random_btn = gr.Button("Random seed", scale=1, min_width=60, elem_id="random-seed")
                    psi = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Truncation ψ", elem_id="psi")
                    n = gr.Slider(1, 8, value=4, step=1, label="Samples")
                    with gr.Row():
                        picture = gr.Image(
                            label="Your image", type="pil", sources=["upload"], height=160, elem_id="your-image"
                        )
                        reconstruction = gr.Image(
                            label="As the GAN draws it", type="pil", format="png", interactive=False, height=160,
                            elem_id="reconstruction", elem_classes=["sefa-image"],
                        )  # fmt: skip
            with gr.Column(scale=2):
                with gr.Column(elem_id="image-panel"):
                    image = gr.Image(
                        label="Edited samples",
                        type="pil",
                        format="png",
                        interactive=False,
                        height=300,
                        elem_id="editor-image",
                        elem_classes=["sefa-image"],
                    )
                    # Render errors go here; it keeps its height, so the sliders never move under the pointer.
                    message = gr.Markdown(elem_id="render-message", label="message")
                sliders, labels = [], []
                for i in range(MAX_DIRECTIONS):
                    with gr.Row(equal_height=True):
                        sliders.append(
                            gr.Slider(-5, 5, value=0, step=0.1, label=f"{i}", scale=3, elem_id=f"strength-{i}")
                        )
                        labels.append(gr.Textbox(label="Label", scale=2, elem_id=f"label-{i}"))
                with gr.Row():
                    suggest_btn = gr.Button("Use suggested labels")
                    reset_btn = gr.Button("Reset sliders")
        with gr.Accordion("Export", open=True), gr.Row():
            with gr.Column():
                grid_btn = gr.Button("Direction grid (PNG)", elem_id="export-grid")
                grid_file = gr.File(label="Grid", elem_id="grid-file", height=120)
            with gr.Column():
                with gr.Row():
                    walk_index = gr.Dropdown(choices=[("0", 0)], value=0, label="Walk along direction")
                    frames = gr.Slider(4, 48, value=16, step=1, label="Frames")
                    walk_format = gr.Radio([("GIF", "gif"), ("MP4", "mp4")], value="gif", label="Format")
                walk_btn = gr.Button("Walk", elem_id="export-walk")
                walk_file = gr.File(label="Walk", height=120, elem_id="walk-file")
                walk_video = gr.Video(label="Preview", visible=False, height=200, elem_id="walk-video")
            with gr.Column():
                dir_btn = gr.Button("Direction file")
                dir_files = gr.File(label="Direction folder", file_count="multiple", height=120)
        export_status = gr.Markdown(elem_id="export-status", label="export status")
        with gr.Accordion("Push to the Hub", open=True):
            gr.Markdown("Writes `directions.safetensors` and a card with the preview grid, labels and provenance.")
            with gr.Row():
                repo_id = gr.Textbox(label="Repo id", placeholder="your-name/my-directions", scale=3)
                private = gr.Checkbox(label="Private", scale=1)
            if space:
                gr.LoginButton()
                token = gr.Textbox(visible=False, value="")
            else:
                token = gr.Textbox(
                    label="Hub token (write)", type="password", placeholder="hf_… (empty: your logged-in token)"
                )
            push_btn = gr.Button("Push to Hub", variant="primary")
            push_status = gr.Markdown(elem_id="push-status", label="push status")

        # ------------------------------------------------------------------ events
        setup_inputs = [
            state, model_box, revision, method, preset, custom_layers, k, gs_samples, repo, token, seed, psi, n,
            class_label,
        ]  # fmt: skip
        setup_outputs = [state, status, image, psi, walk_index, *sliders, *labels]
        look = [state, seed, psi, n, *sliders]
        # Suggestions take seconds (rescoring with the predictor): one at a time, apart from the renders.
        slow = {"concurrency_limit": 1, "concurrency_id": "suggest"}
        suggest_outputs = [status, *labels, *sliders]
        setup_btn.click(h["setup"], setup_inputs, setup_outputs, api_name="setup").then(
            h["suggest"], [state], suggest_outputs, api_name="suggest", **slow
        )
        demo.load(h["setup"], setup_inputs, setup_outputs, api_visibility="private").then(
            h["suggest"], [state], suggest_outputs, api_visibility="private", **slow
        )
        gr.on(
            [box.blur for box in labels] + [box.submit for box in labels],
            h["retitle"],
            [state, *labels],
            sliders,
            api_visibility="private",
        )
        gr.on(
            [s.release for s in sliders] + [psi.release, n.release, seed.submit],
            h["render"],
            look,
            [state, image, message],
            api_name="render",
            trigger_mode="always_last",
        )
        picture.upload(
            h["upload"],
            [state, picture, seed, psi, n, *sliders],
            [state, image, reconstruction, message],
            api_name="upload",
            concurrency_limit=1,
            concurrency_id="invert",
        )
        picture.clear(
            h["clear_upload"], [state, seed, psi, n, *sliders], [state, image, reconstruction, message],
            api_visibility="private",
        )  # fmt: skip
        random_btn.click(
            h["random_seed"], [state, psi, n, *sliders], [state, seed, image, message], api_name="random_seed"
        )
        reset_btn.click(lambda: [0] * MAX_DIRECTIONS, None, sliders, api_visibility="private").then(
            h["render"], look, [state, image, message], api_visibility="private"
        )
        suggest_btn.click(h["use_suggestions"], [state, *labels], labels, api_visibility="private").then(
            h["retitle"], [state, *labels], sliders, api_visibility="private"
        )
        method.change(_method_settings, method, [layer_group, gs_samples, repo], api_visibility="private")
        preset.change(lambda p: gr.update(visible=p == "custom"), preset, custom_layers, api_visibility="private")
        grid_btn.click(
            h["export_grid"], [state, seed, psi, *sliders], [state, grid_file, export_status], api_name="export_grid"
        )
        walk_btn.click(
            h["export_walk"],
            [state, walk_index, frames, seed, psi, n, *sliders, walk_format],
            [state, walk_file, export_status],
            api_name="export_walk",
        ).then(_walk_preview, [walk_file], [walk_video], api_visibility="private")
        dir_btn.click(
            h["export_directions"], [state, *labels], [state, dir_files, export_status], api_name="export_directions"
        )
        if space:
            push_btn.click(h["push_oauth"], [state, repo_id, private, *labels], [state, push_status], api_name="push")
        else:
            push_btn.click(h["push"], [state, repo_id, token, private, *labels], [state, push_status], api_name="push")

    demo.queue(default_concurrency_limit=concurrency, max_size=queue_max_size)
    return demo


def launch_kwargs() -> dict[str, Any]:
    """Arguments for ``demo.launch``: a theme with system fonts (no font download) and the page CSS."""
    theme = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return {"theme": theme, "css": CSS}


def launch(
    host: str | None = None,
    port: int | None = None,
    share: bool = False,
    threads: int | None = 1,
    model: str | None = None,
) -> None:
    """Build and serve the editor (blocking).

    Args:
        model: The model the page opens on (default: the embedded one).
        host: Interface to listen on (default: Gradio's, i.e. ``127.0.0.1`` or ``GRADIO_SERVER_NAME``).
        port: Port (default: Gradio's, 7860 or the next free one).
        share: Open a public gradio.live link (needs the network).
        threads: Torch threads per render; 1 lets the queue's parallel renders use one core each.
    """
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    build_demo(model=model).launch(server_name=host, server_port=port, share=share, **launch_kwargs())


def main(argv: Sequence[str] | None = None) -> None:
    """``python app.py [MODEL] [--host H] [--port P] [--share] [--threads T]``."""
    parser = argparse.ArgumentParser(description="The sefa_plugin editor (Gradio).")
    parser.add_argument("model", nargs="?", default=None, help="the model to open (default: the embedded one)")
    parser.add_argument("--host", default=None, help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860 or the next free one)")
    parser.add_argument("--share", action="store_true", help="open a public gradio.live link")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per render (0: torch's default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    launch(host=args.host, port=args.port, share=args.share, threads=args.threads, model=args.model)


if __name__ == "__main__":
    main()
