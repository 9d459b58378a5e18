"""Folders on disk stay one consistent save; cards render file and user text inertly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sefa_plugin import Directions
from sefa_plugin import hub as hub_module
from sefa_plugin.hub import atomic_folder
from sefa_plugin.models.stylegan2 import StyleGAN2Generator
from sefa_plugin.pipelines.sefa import SefaPipeline
from sefa_plugin.utils.files import check_output_path
from sefa_plugin.utils.images import save_gif, save_image_atomic

TINY = dict(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=16, mapping_layers=2)


def _pipe(seed: int) -> SefaPipeline:
    torch.manual_seed(seed)
    return SefaPipeline(StyleGAN2Generator(**TINY).eval())


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if ".sefa-" in p.name)


def test_save_over_sharded_save_leaves_no_old_weights(tmp_path: Path) -> None:
    out = tmp_path / "model"
    (out / "generator").mkdir(parents=True)
    (out / "model_index.json").write_text("{}")
    for i in (1, 2):
        save_file(
            {"x": torch.zeros(2)}, str(out / "generator" / f"diffusion_pytorch_model-0000{i}-of-00002.safetensors")
        )
    (out / "generator" / "diffusion_pytorch_model.safetensors.index.json").write_text("{}")
    (out / "checkpoint").mkdir()  # an entry the save does not write is kept
    pipe = _pipe(1)
    pipe.save_pretrained(out)
    assert sorted(p.name for p in (out / "generator").iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]
    assert (out / "checkpoint").is_dir()
    loaded = SefaPipeline.from_pretrained(out)
    assert torch.equal(loaded.generator.mapping.fc0.weight, pipe.generator.mapping.fc0.weight)
    assert _temporaries(out) == []


def test_failure_at_each_rename_leaves_old_folder_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "model"
    _pipe(1).save_pretrained(out)
    old = _snapshot(out)
    real_rename = os.rename
    step = 0
    while True:
        step += 1
        calls = {"n": 0}

        def failing_rename(src, dst, _step=step, _calls=calls):
            _calls["n"] += 1
            if _calls["n"] == _step:
                raise OSError(f"injected failure at rename {_step}")
            return real_rename(src, dst)

        monkeypatch.setattr(hub_module.os, "rename", failing_rename)
        try:
            _pipe(2).save_pretrained(out)
        except OSError as err:
            assert "injected failure" in str(err)
            assert _snapshot(out) == old, f"old folder changed after a failure at rename {step}"
            assert _temporaries(out) == []
            continue
        finally:
            monkeypatch.setattr(hub_module.os, "rename", real_rename)
        break  # this many renames: the save went through
    assert step > 3  # model_index.json, generator/, README.md: each moved aside and placed
    assert _snapshot(out) != old


def test_killed_save_leaves_nothing_on_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "dirs"
    d = Directions(vectors=torch.eye(4)[:2], method="sefa", latent_space="z", layers=[0])
    d.save_pretrained(out)
    dead_pid = 2**22 + 12345  # above Linux's pid_max: never alive
    (tmp_path / f".dirs.sefa-tmp-{dead_pid}-abcd").mkdir()
    aside = tmp_path / f".dirs.sefa-old-{dead_pid}-abcd"
    aside.mkdir()
    os.rename(out / "README.md", aside / "README.md")  # killed between moving aside and placing
    d.save_pretrained(out)
    assert _temporaries(out) == []
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "directions.safetensors"]


def test_old_style_temporaries_inside_the_target_are_cleaned(tmp_path: Path) -> None:
    out = tmp_path / "dirs"
    d = Directions(vectors=torch.eye(4)[:2], method="sefa", latent_space="z", layers=[0])
    d.save_pretrained(out)
    (out / ".sefa-tmp-old").mkdir()
    (out / ".sefa-tmp-old" / "directions.safetensors").write_text("half written")
    os.utime(out / ".sefa-tmp-old", (0, 0))  # an hour old at least: its process is gone
    (out / ".sefa-tmp-recent").mkdir()  # could belong to a save still running: kept
    d.save_pretrained(out)
    assert sorted(p.name for p in out.iterdir()) == [".sefa-tmp-recent", "README.md", "directions.safetensors"]


def test_current_folder_as_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model_index.json").write_text("{}")  # ours
    d = Directions(vectors=torch.eye(4)[:2], method="sefa", latent_space="z", layers=[0])
    d.save_pretrained(".")
    assert (tmp_path / "directions.safetensors").is_file()
    assert _temporaries(tmp_path / "x") == []
    with pytest.raises(ValueError, match="`save_directory` '/' cannot be replaced"):
        d.save_pretrained("/")


def test_temporaries_inside_the_target_when_only_it_is_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "volume"
    d = Directions(vectors=torch.eye(4)[:2], method="sefa", latent_space="z", layers=[0])
    d.save_pretrained(out)
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args, **kwargs):  # the parent of a mounted volume is read-only
        if self.parent == tmp_path and ".sefa-" in self.name:
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    d[:1].save_pretrained(out)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "directions.safetensors"]
    assert len(Directions.from_pretrained(out)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["volume"]


def test_killed_image_save_leaves_nothing_on_the_next_run(tmp_path: Path) -> None:
    dead_pid = 2**22 + 12345
    (tmp_path / f".grid.png.sefa-tmp-{dead_pid}-0abc").write_bytes(b"half a png")
    (tmp_path / f".grid.png.sefa-tmp-{os.getpid()}-0abc").write_bytes(b"")  # a call of ours still writing
    save_image_atomic(Image.new("RGB", (4, 4)), tmp_path / "grid.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".grid.png.sefa-tmp-{os.getpid()}-0abc", "grid.png"]


def test_refuses_to_overwrite_files_we_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    d = Directions(vectors=torch.eye(4)[:2], method="sefa", latent_space="z", layers=[0])
    with pytest.raises(FileExistsError, match=r"`save_directory` .* did not write \(README.md\)"):
        d.save_pretrained(out)
    assert (out / "README.md").read_text() == "my notes"
    assert sorted(p.name for p in out.iterdir()) == ["README.md"]
    assert _temporaries(out) == []
    with atomic_folder(tmp_path / "other", what="--out") as tmp:  # a folder with unrelated, untouched files
        (tmp / "report.md").write_text("x")
    assert (tmp_path / "other" / "report.md").is_file()


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    with pytest.raises(RuntimeError, match="boom"), atomic_folder(out) as tmp:
        (tmp / "x").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_output_paths_checked_before_work(tmp_path: Path) -> None:
    with pytest.raises(PermissionError, match=r"`--gif` '/proc/x.gif' cannot be written"):
        check_output_path("/proc/x.gif", "--gif")
    with pytest.raises(IsADirectoryError, match="`--out`"):
        check_output_path(tmp_path, "--out")
    with pytest.raises(ValueError, match=r"`--gif` .* must end with one of \['.gif'\]"):
        check_output_path(tmp_path / "x.png", "--gif", suffixes=[".gif"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="`--out`"):
        check_output_path(tmp_path / "file" / "x.png", "--out")
    frames = [Image.new("RGB", (4, 4)), Image.new("RGB", (4, 4), "white")]
    with pytest.raises(PermissionError, match="`--gif`"):
        save_gif(frames, "/proc/walk.gif", what="--gif")
    assert check_output_path(tmp_path / "new" / "deeper" / "x.gif", "--gif") == tmp_path / "new" / "deeper" / "x.gif"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the check writes nothing


def test_cards_render_labels_and_ids_as_text() -> None:
    d = Directions(
        vectors=torch.eye(4)[:2], method="sefa", latent_space="z", layers=[0],
        labels=["<img src=https://example.com/x.png>", "**bold** | cell\n# heading"],
        base_model={"repo_id": "org/x\n```\nimport os", "weights_sha256": "<b>"},
    )  # fmt: skip
    text = d.model_card(repo_id="someone/dirs").content
    assert "<img" not in text and "&lt;img src=https://example.com/x.png&gt;" in text
    assert "\\*\\*bold\\*\\* \\| cell # heading" in text
    assert "import os" not in text.split("```python")[1]  # the snippet stays three lines of our code
    assert "&lt;b&gt;" in text and "<b>" not in text
    with pytest.raises(ValueError, match=r"`repo_id` must be a Hub repo id"):
        d.model_card(repo_id="someone/dirs\nimport os")
    with pytest.raises(ValueError, match=r"`repo_id` must be a Hub repo id"):
        d.push_to_hub("../../etc")
