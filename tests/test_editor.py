"""EditorSession and helpers: the library side of the Gradio editor (no UI involved)."""

from __future__ import annotations

import json
import logging

import numpy as np
import PIL.Image
import pytest
import torch

import sefa_plugin.editor as editor
from sefa_plugin import DEFAULT_MODEL, Directions, DirectionsMismatchError
from sefa_plugin.data.shapes import FACTOR_NAMES
from sefa_plugin.editor import EditorSession, describe_error, layer_spec, load_pipeline, parse_seed


@pytest.fixture
def session() -> EditorSession:
    s = EditorSession()
    s.compute_directions("sefa", layers="all", num_directions=4)
    yield s
    s.close()


# ------------------------------------------------------------------ helpers
@pytest.mark.parametrize("value,expected", [("0", 0), (" 42 ", 42), (7, 7), (3.0, 3), ("4294967295", 2**32 - 1)])
def test_parse_seed_accepts_whole_numbers(value, expected):
    assert parse_seed(value) == expected


@pytest.mark.parametrize("value", ["abc", "", None, "-1", "1.5", "4294967296", "nan", "inf"])
def test_parse_seed_rejects_with_a_message_naming_seed(value):
    with pytest.raises(ValueError, match="`seed` must be a whole number"):
        parse_seed(value)


def test_layer_spec_presets_and_custom():
    assert [layer_spec(p) for p in ("all", "coarse", "middle", "fine")] == ["all", "coarse", "middle", "fine"]
    assert layer_spec("custom", " 0-3 ") == "0-3"
    with pytest.raises(ValueError, match="`custom layers` is empty"):
        layer_spec("custom", "  ")
    with pytest.raises(ValueError, match="preset must be one of"):
        layer_spec("everything")


def test_edit_many_is_the_sum_of_strength_times_direction_on_the_layers():
    torch.manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    d = Directions(vectors=vectors, method="coordinate", latent_space="w+", layers=[1, 3])
    base = torch.randn(2, 5, 8)
    out = d.edit_many(base, [1.5, 0.0, -2.0])
    expected = base.clone()
    expected[:, [1, 3]] += 1.5 * vectors[0] - 2.0 * vectors[2]
    torch.testing.assert_close(out, expected)
    assert torch.equal(d.edit_many(base, [0, 0]), base)
    with pytest.raises(ValueError, match="`strengths` has 4 entries for 3 directions"):
        d.edit_many(base, [1, 1, 1, 1])


def test_describe_error_tells_hub_failures_apart():
    from huggingface_hub.errors import OfflineModeIsEnabled

    class ConnectError(Exception):  # named like httpx's, which the Hub client raises
        pass

    assert "offline mode" in describe_error(OfflineModeIsEnabled("x"))
    assert "not reachable" in describe_error(ConnectError("dns"))
    assert describe_error(ValueError("`seed` bad")) == "`seed` bad"
    assert "do not fit" in describe_error(DirectionsMismatchError("other model"))
    assert describe_error(RuntimeError("boom")).startswith("Unexpected error (RuntimeError)")


# ------------------------------------------------------------------ models
def test_load_pipeline_is_cached_and_embedded_by_default():
    assert load_pipeline() is load_pipeline("") is load_pipeline(DEFAULT_MODEL)
    assert editor.is_embedded_model(None) and editor.is_embedded_model(DEFAULT_MODEL)
    assert not editor.is_embedded_model("someone/model")


def test_load_pipeline_bad_sources(tmp_path):
    with pytest.raises(ValueError, match="local paths are disabled"):
        load_pipeline(str(tmp_path), allow_local=False)
    with pytest.raises(ValueError, match=r"no model_index\.json"):
        load_pipeline(str(tmp_path))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="is a file"):
        load_pipeline(str(text))


def test_failed_model_load_keeps_the_session(session, tmp_path):
    before = session.pipe, session.directions
    with pytest.raises(ValueError):
        session.load_model(str(tmp_path))
    assert (session.pipe, session.directions) == before


# ------------------------------------------------------------------ rendering
def test_render_matches_the_pipeline_and_combines_directions(session):
    d = session.directions
    image = session.render(seed=5, truncation_psi=0.7, num_samples=1, strengths=[2.0])
    expected = session.pipe(seeds=[5], directions=d, index=0, strengths=[2.0], truncation_psi=0.7).images[0]
    assert np.array_equal(np.asarray(image), np.asarray(expected))
    # Two directions at once: the latents of the combined edit.
    latents = session.edited_latents(5, 0.7, 1, [2.0, -1.0])
    step = d.edit(d.edit(session.base_latents(5, 0.7, 1), 0, 2.0), 1, -1.0)
    torch.testing.assert_close(latents, step)
    # A row of samples with 2-pixel gaps.
    assert session.render(seed=0, truncation_psi=0.7, num_samples=3).size == (3 * 64 + 4 * 2, 64 + 2 * 2)


def test_slider_moves_reuse_the_cached_base_latents(session, monkeypatch):
    calls = []
    original = session.pipe.generator.sample_latents
    monkeypatch.setattr(session.pipe.generator, "sample_latents", lambda *a, **k: calls.append(1) or original(*a, **k))
    first = session.render(seed=11, truncation_psi=0.5, num_samples=2, strengths=[0.0])
    for s in (1.0, 2.0, 3.0):
        moved = session.render(seed=11, truncation_psi=0.5, num_samples=2, strengths=[s, -s])
    assert len(calls) == 1
    assert not np.array_equal(np.asarray(first), np.asarray(moved))
    session.render(seed=12, truncation_psi=0.5, num_samples=2)
    assert len(calls) == 2


def test_render_bad_input(session):
    with pytest.raises(ValueError, match="`seed`"):
        session.render(seed="x")
    with pytest.raises(ValueError, match="`num_samples`"):
        session.render(num_samples=0)
    with pytest.raises(ValueError, match="`truncation_psi`"):
        session.render(truncation_psi=float("nan"))
    with pytest.raises(ValueError, match="`strengths` must be finite"):
        session.render(strengths=[float("inf")])
    fresh = EditorSession()
    fresh.directions = None
    assert fresh.render(num_samples=1).size == (64, 64)  # no edit needs no directions
    with pytest.raises(ValueError, match="No directions yet"):
        fresh.render(strengths=[1.0])


# ------------------------------------------------------------------ directions
def test_compute_directions_layers_and_errors(session):
    d = session.compute_directions("sefa", layers="coarse", num_directions=3)
    assert d.layers == session.pipe.generator.layer_groups()["coarse"] and len(d) == 3
    with pytest.raises(ValueError, match="out of range"):
        session.compute_directions("sefa", layers="0-99")
    with pytest.raises(ValueError, match="`num_directions`"):
        session.compute_directions("sefa", num_directions=0)
    with pytest.raises(ValueError, match="`num_directions`"):  # GANSpace's own name is `num_components`
        session.compute_directions("ganspace", num_directions=0, num_samples=100)
    with pytest.raises(ValueError, match="`method`"):
        session.compute_directions("pca")
    assert session.directions is d  # failures keep the previous directions


@pytest.mark.skipif(not editor.GANSPACE_AVAILABLE, reason="GANSpace pipeline not available")
def test_compute_ganspace_directions(session):
    d = session.compute_directions("ganspace", layers="all", num_directions=3, num_samples=2000)
    assert d.method == "ganspace" and len(d) == 3 and d.stds is not None
    assert session.render(num_samples=1, strengths=[1.0, 1.0]).size == (64, 64)


def test_load_directions_from_a_folder_and_mismatch(session, tmp_path):
    d = session.compute_directions("sefa", num_directions=3)
    d.labels[0] = "hue"
    d.save_pretrained(tmp_path / "mine")
    loaded, notes = session.load_directions(str(tmp_path / "mine"))
    assert loaded.labels[0] == "hue" and notes == []
    other = Directions(vectors=torch.eye(16)[:2], method="coordinate", latent_space="w+", layers=[0])
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(DirectionsMismatchError, match="16 dimensions"):
        session.load_directions(str(tmp_path / "other"))
    assert session.directions is loaded
    foreign = Directions(
        vectors=d.vectors, method="sefa", latent_space="w+", layers=d.layers, base_model={"weights_sha256": "0" * 64}
    )
    foreign.save_pretrained(tmp_path / "foreign")
    _, notes = session.load_directions(str(tmp_path / "foreign"))
    assert len(notes) == 1 and "weights sha256" in notes[0]
    with pytest.raises(ValueError, match="`directions` is empty"):
        session.load_directions(" ")
    with pytest.raises(ValueError, match="local paths are disabled"):
        EditorSession(allow_local=False).load_directions(str(tmp_path / "mine"))


class _BrightnessPredictor:
    """Stands in for the factor predictor: 'lighting' follows the mean brightness, all else is constant."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        self.calls += 1
        n = images.shape[0]
        out = {name: torch.zeros(n) for name in FACTOR_NAMES}
        out["shape"] = torch.zeros(n, dtype=torch.long)
        out["shape_probs"] = torch.tensor([[1.0, 0.0, 0.0]]).repeat(n, 1)
        out["lighting"] = images.float().mean(dim=(1, 2, 3))
        return out


def test_suggest_labels_on_the_embedded_model_only(session, monkeypatch, tmp_path):
    predictor = _BrightnessPredictor()
    monkeypatch.setattr(editor, "_load_predictor", lambda: predictor)
    suggestions = session.suggest_labels(num_samples=2)
    assert len(suggestions) == 4 and all(s is not None and s[0] == "lighting" for s in suggestions)
    assert session.suggestions == suggestions
    # The same directions are scored once, whichever session asks.
    scored = predictor.calls
    twin = EditorSession()
    twin.directions = session.directions
    assert twin.suggest_labels(num_samples=2) == suggestions and predictor.calls == scored > 0
    session.pipe.save_pretrained(tmp_path / "copy")
    other = EditorSession(str(tmp_path / "copy"))
    other.compute_directions("sefa", num_directions=2)
    assert other.suggest_labels(num_samples=2) == [None, None]


def test_suggest_labels_without_predictor(session, monkeypatch):
    monkeypatch.setattr(editor, "_load_predictor", lambda: None)
    assert session.suggest_labels() == [None] * 4


# ------------------------------------------------------------------ export and push
def test_exports_are_lossless_files(session, tmp_path):
    grid = session.export_grid(tmp_path / "grid.png", seed=1, strengths=[1.0], num_steps=5)
    with PIL.Image.open(grid) as im:
        assert im.format == "PNG" and im.size == (5 * 64 + 6 * 2, 4 * 64 + 5 * 2)
    walk = session.export_walk(2, tmp_path / "walk.gif", num_samples=2, num_frames=6)
    with PIL.Image.open(walk) as im:
        assert im.format == "GIF" and im.n_frames == 10  # forward then back
    folder = session.export_directions(tmp_path / "dirs", labels=["pose", "", "colour"])
    assert {p.name for p in folder.iterdir()} >= {"directions.safetensors", "README.md", "preview.png"}
    back = Directions.from_pretrained(folder)
    assert back.labels[:3] == ["pose", "direction 1", "colour"]
    with pytest.raises(IndexError):
        session.export_walk(9)
    with pytest.raises(ValueError, match="`labels` has 5 entries"):
        session.set_labels(["a"] * 5)


def test_push_to_hub_writes_file_card_and_preview(session, hub_env, caplog):
    caplog.set_level(logging.DEBUG)
    url = session.push_to_hub("tester/editor-dirs", token=hub_env.token, labels=["size"])
    assert "/tester/editor-dirs/commit/" in url
    files = hub_env.server.repo_files("tester/editor-dirs")
    assert {"directions.safetensors", "README.md", "preview.png"} <= set(files)
    card = files["README.md"].decode()
    assert "size" in card and session.directions.base_model["weights_sha256"] in card
    assert hub_env.token not in caplog.text
    with pytest.raises(ValueError, match="`repo_id`"):
        session.push_to_hub("a/b/c")


def test_push_errors_are_readable(session, hub_env):
    with pytest.raises(Exception) as info:
        session.push_to_hub("tester/denied", token="hf_wrong")
    assert describe_error(info.value).startswith("Not authorised")
    assert "hf_wrong" not in describe_error(info.value)
    hub_env.set_offline(True)
    with pytest.raises(Exception) as info:
        session.push_to_hub("tester/offline", token=hub_env.token)
    assert "offline" in describe_error(info.value)


def test_sefa_app_command_parses():
    from sefa_plugin.cli import build_parser

    args = build_parser().parse_args(["app", "--port", "7861", "--host", "0.0.0.0"])
    assert (args.command, args.port, args.host, args.share) == ("app", 7861, "0.0.0.0", False)


def test_directions_metadata_keeps_labels(session, tmp_path):
    folder = session.export_directions(tmp_path / "d", labels=["a", "b"])
    from safetensors import safe_open

    with safe_open(str(folder / "directions.safetensors"), framework="pt") as fh:
        assert json.loads(fh.metadata()["labels"])[:2] == ["a", "b"]


# ------------------------------------------------------------------ class-conditional models
def test_class_label_of_a_conditional_model(tmp_path):
    from factories import tiny_biggan

    from sefa_plugin import SefaPipeline

    g = tiny_biggan()
    SefaPipeline(generator=g).save_pretrained(tmp_path / "biggan")
    s = EditorSession(str(tmp_path / "biggan"))
    try:
        assert s.num_classes == 5 and s.class_label == 0  # conditional models start at class 0
        s.compute_directions("sefa", layers="all", num_directions=3)
        first = np.asarray(s.render(seed=0, truncation_psi=1.0, num_samples=1))
        assert s.set_class_label("3") == 3
        other = np.asarray(s.render(seed=0, truncation_psi=1.0, num_samples=1))
        assert not np.array_equal(first, other)
        for bad in ("5", "-1", "1.5", "x"):
            with pytest.raises(ValueError, match="`class_label`"):
                s.set_class_label(bad)
        assert s.class_label == 3
        s.load_model(None)  # the embedded model is unconditional
        assert s.num_classes == 0 and s.class_label is None and s.set_class_label("") is None
        with pytest.raises(ValueError, match="`class_label` applies to class-conditional models only"):
            s.set_class_label(2)
    finally:
        s.close()


def test_ganspace_sample_counts_are_bounded_before_any_work():
    import time

    hosted = EditorSession(allow_local=False)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"`num_samples` must be an int in \[2, 100000\]"):
        hosted.compute_directions("ganspace", num_directions=3, num_samples=10**12)
    with pytest.raises(ValueError, match=r"`num_samples` must be an int in \[2, 1000000\]"):
        EditorSession().compute_directions("ganspace", num_directions=3, num_samples=10**7)
    assert time.perf_counter() - t0 < 10


def test_hosted_editor_never_reads_local_folders(tmp_path, monkeypatch):
    from sefa_plugin import DEFAULT_MODEL, SefaPipeline

    monkeypatch.chdir(tmp_path)
    SefaPipeline.from_pretrained(DEFAULT_MODEL).save_pretrained(tmp_path / "org" / "model")
    hosted = EditorSession(allow_local=False)
    # "org/model" exists here as a folder, "org/other" does not: both are Hub ids, refused alike offline.
    errors = []
    for name in ("org/model", "org/other"):
        with pytest.raises(OSError) as info:
            hosted.load_model(name)
        errors.append(str(info.value).replace(name, "NAME"))
    assert errors[0] == errors[1]
    with pytest.raises(ValueError, match="must be a Hub repo id"):
        hosted.load_model("./org/model")
