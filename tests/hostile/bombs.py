"""Crafted inputs ("bombs") and the calls that must refuse them, run one group per child process.

``make_files(folder)`` writes every hostile file once (in the parent test process). ``BOMBS`` maps a name to
``(call, expected exception type, regex the message must match)``; each call gets that folder. Run as a
script, this module executes the named bombs, catches the expected refusals and prints one JSON line with
each result and the interpreter's peak RSS after imports (the baseline); the parent reads the child's own
peak from ``os.wait4``.
"""

from __future__ import annotations

import io
import json
import resource
import shutil
import sys
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

TINY = dict(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=16, mapping_layers=2)


# ------------------------------------------------------------------------------------------- files
def _write_npy_header_only(path: Path, shape: tuple[int, ...], payload: bytes = b"") -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    path.write_bytes(buf.getvalue() + payload)  # the header writer adds the magic string


class _RepeatedBlockCompressor:
    """Stands in for zlib's compressor while writing the bomb: each 16 MiB chunk of zeros becomes one
    pre-compressed, independently decodable deflate block (ending in a full flush), so a 1.5 GiB member
    takes seconds to write, not a minute. The archive is valid: zipfile reads it back with a correct CRC."""

    CHUNK = bytes(1 << 24)

    def __init__(self) -> None:
        self.block = self._deflate(self.CHUNK)

    @staticmethod
    def _deflate(data: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    def compress(self, data: bytes) -> bytes:
        return self.block if data == self.CHUNK else self._deflate(data)

    def flush(self) -> bytes:
        return zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)


def _write_inflating_npz(path: Path, chunks: int) -> None:
    """An .npz whose `lat_comp` member inflates to `chunks` × 16 MiB of zeros (plus the header)."""
    chunk = _RepeatedBlockCompressor.CHUNK
    count = chunks * len(chunk) // 8
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (count, 1, 1)})
    real = zipfile._get_compressor  # test-only: zipfile has no API for writing pre-compressed data
    zipfile._get_compressor = lambda *args, **kwargs: _RepeatedBlockCompressor()
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            small = io.BytesIO()
            np.save(small, np.ones(1))
            zf.writestr("lat_stdev.npy", small.getvalue())  # a real GANSpace cache has it: get past that check
            with zf.open("lat_comp.npy", "w", force_zip64=True) as fh:
                fh.write(buf.getvalue())
                for _ in range(chunks):
                    fh.write(chunk)
    finally:
        zipfile._get_compressor = real


def _directions_file(path: Path, **meta_overrides: str) -> None:
    meta = {
        "format": "sefa_plugin.directions",
        "format_version": "1",
        "method": "sefa",
        "latent_space": "w+",
        "layers": "[0]",
        "labels": "[]",
        "strength_range": "[-3, 3]",
        "base_model": "{}",
        "extra": "{}",
        **meta_overrides,
    }
    save_file({"vectors": torch.eye(4)[:2].contiguous()}, str(path), metadata=meta)


def make_files(folder: Path) -> None:
    """Write every hostile file the bombs read into `folder`."""
    from sefa_plugin.models.stylegan2 import StyleGAN2Generator
    from sefa_plugin.pipelines.sefa import SefaPipeline

    torch.manual_seed(0)
    SefaPipeline(StyleGAN2Generator(**TINY).eval()).save_pretrained(folder / "pipe")
    weights = folder / "pipe" / "generator" / "diffusion_pytorch_model.safetensors"
    for name, edit in {
        "missing": lambda sd: sd.pop("synthesis.b8.conv1.weight"),
        "nan": lambda sd: sd["synthesis.b8.conv1.weight"].view(-1).__setitem__(0, float("nan")),
        "inf": lambda sd: sd["mapping.fc0.bias"].view(-1).__setitem__(0, float("inf")),
    }.items():
        dst = folder / f"pipe_{name}"
        shutil.copytree(folder / "pipe", dst)
        sd = load_file(str(weights))
        edit(sd)
        save_file(sd, str(dst / "generator" / weights.name), metadata={"format": "pt"})
    huge = folder / "pipe_zdim"
    shutil.copytree(folder / "pipe", huge)
    config = json.loads((huge / "generator" / "config.json").read_text())
    (huge / "generator" / "config.json").write_text(json.dumps({**config, "z_dim": 10**7}))
    for name, text in {
        "pipe_big_config": json.dumps({**config, "padding": "x" * (2 << 20)}),
        "pipe_deep_config": json.dumps(config)[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}",
    }.items():
        shutil.copytree(folder / "pipe", folder / name)
        (folder / name / "generator" / "config.json").write_text(text)

    for name, text in {"deep": "[" * 100_000 + "]" * 100_000, "big": json.dumps({"pad": "x" * (2 << 20)})}.items():
        (folder / f"biggan_{name}").mkdir()
        (folder / f"biggan_{name}" / "pytorch_model.bin").write_bytes(b"")
        (folder / f"biggan_{name}" / "config.json").write_text(text)
    _write_npy_header_only(folder / "huge_shape_boundary.npy", (10**12,))
    _write_npy_header_only(folder / "truncated_boundary.npy", (1, 512), payload=b"\0" * 16)
    np.save(folder / "object_boundary.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _write_inflating_npz(folder / "inflating_n1000_w.npz", 96)  # 1.5 GiB
    depth = 100_000
    _directions_file(folder / "deep_labels.safetensors", labels="[" * depth + "]" * depth)
    _directions_file(folder / "deep_extra.safetensors", extra='{"a":' * depth + "1" + "}" * depth)
    _directions_file(folder / "label_types.safetensors", labels='[{"x": 1}, 2]')


# ------------------------------------------------------------------------------------------- calls
def _tiny_pipeline(cls_name: str = "GANSpacePipeline") -> Any:
    from sefa_plugin import pipelines
    from sefa_plugin.models.stylegan2 import StyleGAN2Generator

    return getattr(pipelines, cls_name)(StyleGAN2Generator(**TINY).eval())


def _config(cls_name: str, **fields: Any):
    def call(folder: Path) -> Any:
        from sefa_plugin import models

        return getattr(models, cls_name).from_config(fields)

    return call


def _nvidia_record(folder: Path) -> Any:
    from sefa_plugin.convert.nvidia import nvidia_generator_config
    from sefa_plugin.convert.safe_unpickler import PersistentRecord

    g = PersistentRecord(
        "Generator",
        init_kwargs={"z_dim": 10**7, "c_dim": 0, "w_dim": 512, "img_resolution": 1024, "img_channels": 3},
        modules={"mapping": PersistentRecord("MappingNetwork"), "synthesis": PersistentRecord("SynthesisNetwork")},
    )
    return nvidia_generator_config(g)


def _convert(name: str):
    def call(folder: Path) -> Any:
        from sefa_plugin.convert.biggan import convert_biggan

        return convert_biggan(folder / name)

    return call


def _load_pipe(name: str):
    def call(folder: Path) -> Any:
        from sefa_plugin.pipelines.sefa import SefaPipeline

        return SefaPipeline.from_pretrained(folder / name)

    return call


def _import(name: str, loader: str):
    def call(folder: Path) -> Any:
        from sefa_plugin.directions import importers

        return getattr(importers, loader)(folder / name, layers=[0])

    return call


def _directions(name: str):
    def call(folder: Path) -> Any:
        from sefa_plugin.directions.container import Directions

        return Directions.from_pretrained(folder / name)

    return call


def _layers(spec: Any):
    def call(folder: Path) -> Any:
        from sefa_plugin.directions.layers import parse_layers

        return parse_layers(spec, num_layers=18)

    return call


V, E = ValueError, OSError
#: name -> (call, expected exception type, regex of its message).
BOMBS: dict[str, tuple[Any, type, str]] = {
    "config_z_dim_1e7": (_config("StyleGAN2Generator", z_dim=10**7), V, r"`z_dim` must be an integer in \[1, 4096\]"),
    "config_mapping_depth_1e6": (_config("StyleGAN2Generator", mapping_layers=10**6), V, r"`mapping_layers`"),
    "config_channel_base_2e40": (_config("StyleGAN2Generator", channel_base=2**40), V, r"`channel_base`"),
    "config_resolution_string": (_config("StyleGAN2Generator", img_resolution="1024"), V, r"`img_resolution`"),
    "config_resolution_float": (_config("StyleGAN2Generator", img_resolution=64.0), V, r"`img_resolution`"),
    "config_resolution_bool": (_config("StyleGAN2Generator", img_resolution=True), V, r"`img_resolution`"),
    "config_negative_w_dim": (_config("StyleGAN2Generator", w_dim=-5), V, r"`w_dim`"),
    "config_parameter_budget": (
        _config("StyleGAN2Generator", channel_base=2**20, channel_max=8192), V, r"parameters, more than the limit",
    ),
    "config_resample_filter_1e5": (_config("StyleGAN2Generator", resample_filter=[1] * 10**5), V, r"`resample_filter`"),
    "config_stylegan_z_dim": (_config("StyleGANGenerator", z_dim=10**7), V, r"`z_dim`"),
    "config_stylegan3_layers": (_config("StyleGAN3Generator", num_layers=10**6), V, r"`num_layers`"),
    "config_stylegan3_channels": (_config("StyleGAN3Generator", channel_max=8192, channel_base=2**20), V, "parameters"),
    "config_pggan_channel_base": (_config("PGGANGenerator", channel_base=2**40), V, r"`channel_base`"),
    "config_dcgan_z_dim": (_config("DCGANGenerator", z_dim=10**7), V, r"`z_dim`"),
    "config_biggan_width": (_config("BigGANGenerator", channel_width=10**7), V, r"`channel_width`"),
    "config_biggan_blocks": (_config("BigGANGenerator", layers=[[False, 16, 16]] * 10**6), V, r"`layers`"),
    "nvidia_init_kwargs_z_dim": (_nvidia_record, V, r"`z_dim`"),
    "pipeline_config_z_dim": (_load_pipe("pipe_zdim"), E, r"`z_dim` must be an integer"),
    "pipeline_config_2MB": (_load_pipe("pipe_big_config"), V, r"generator/config.json is larger than 1,048,576 bytes"),
    "pipeline_config_deep": (_load_pipe("pipe_deep_config"), E, r"the generator cannot be loaded"),
    "convert_config_deep": (_convert("biggan_deep"), V, r"`src` .*config.json' nests too deeply"),
    "convert_config_2MB": (_convert("biggan_big"), V, r"`src` .*config.json' is larger than 1,048,576 bytes"),
    "pipeline_missing_weight": (_load_pipe("pipe_missing"), E, r"lacks 1 tensor.*synthesis\.b8\.conv1\.weight"),
    "pipeline_nan_weight": (_load_pipe("pipe_nan"), E, r"NaN or infinite values in synthesis\.b8\.conv1\.weight"),
    "pipeline_inf_weight": (_load_pipe("pipe_inf"), E, r"NaN or infinite values in mapping\.fc0\.bias"),
    "npy_huge_shape": (_import("huge_shape_boundary.npy", "load_interfacegan_boundary"), V, r"claims an array"),
    "npy_truncated": (_import("truncated_boundary.npy", "load_interfacegan_boundary"), V, r"holds only 16 bytes"),
    "npy_object": (_import("object_boundary.npy", "load_interfacegan_boundary"), V, r"needs pickle"),
    "npz_inflating_1.5GiB": (_import("inflating_n1000_w.npz", "load_ganspace_npz"), V, r"inflates to 1,610,612,864"),
    "layers_range_1e9": (_layers("0-1000000000"), V, r"`layers` contains the index 1000000000 out of range"),
    "layers_digits_1e5": (_layers("1" * 100_000), V, r"`layers` contains the index 1111"),
    "layers_python_range_1e12": (_layers(range(10**12)), V, r"out of range"),
    "ganspace_samples_1e12": (
        lambda folder: _tiny_pipeline().fit(num_samples=10**12), V, r"`num_samples` must be an int in \[2, 100000000\]",
    ),
    "ganspace_samples_hosted_limit": (
        lambda folder: _tiny_pipeline().fit(num_samples=10**6, max_samples=50_000), V, r"\[2, 50000\]",
    ),
    "boundary_samples_1e12": (
        lambda folder: _tiny_pipeline("BoundaryPipeline").sample_latents(10**12), V, r"latent values in memory",
    ),
    "ganspace_batch_1e9": (
        lambda folder: _tiny_pipeline().fit(num_samples=10, batch_size=10**9), V, r"`batch_size` must be an int in",
    ),
    "boundary_batch_1e9": (
        lambda folder: _tiny_pipeline("BoundaryPipeline").fit(batch_size=10**9), V, r"output values per batch",
    ),
    "learned_batch_1e9": (
        lambda folder: _tiny_pipeline("LatentDiscoveryPipeline").train(num_directions=4, batch_size=10**9, steps=1), V,
        r"`batch_size` must be an int in \[1, 699050\]",
    ),
    "seeds_1e9": (lambda folder: _tiny_pipeline().generator.z_from_seeds(range(10**9)), V, r"at most 100000 seeds"),
    "directions_deep_labels": (_directions("deep_labels.safetensors"), V, r"`labels` nests deeper than 16"),
    "directions_deep_extra": (_directions("deep_extra.safetensors"), V, r"`extra` nests deeper than 16"),
    "directions_label_types": (_directions("label_types.safetensors"), V, r"`labels` must hold only str"),
}  # fmt: skip


def main(folder: str, names: list[str]) -> None:
    import sefa_plugin.pipelines  # noqa: F401  (import everything first: the baseline includes the libraries)

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = {}
    for name in names:
        call, expected, _ = BOMBS[name]
        t0 = time.perf_counter()
        try:
            call(Path(folder))
            outcome = {"type": None, "message": "no error"}
        except expected as err:  # anything else propagates: a traceback fails the test
            outcome = {"type": type(err).__name__, "message": str(err)}
        outcome["seconds"] = time.perf_counter() - t0
        outcome["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        results[name] = outcome
    print(json.dumps({"baseline_kb": baseline_kb, "results": results}))


def measure() -> None:
    """Write the files, run every bomb in a child and print one line per bomb (``python -m hostile.bombs``)."""
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        make_files(Path(folder))
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen([sys.executable, "-m", "hostile.bombs", folder, *BOMBS], stdout=out)
            _, status, usage = os.wait4(proc.pid, 0)
            out.seek(0)
            report = json.loads(out.read().decode().strip().splitlines()[-1])
    base = report["baseline_kb"]
    print(
        f"exit {os.waitstatus_to_exitcode(status)}; baseline after imports {base / 1024:.0f} MiB; "
        f"child peak {usage.ru_maxrss / 1024:.0f} MiB (+{(usage.ru_maxrss - base) / 1024:.0f} MiB)"
    )
    for name, got in report["results"].items():
        extra = (got["peak_kb"] - base) / 1024
        print(
            f"{name:32s} {got['type'] or '-':10s} {got['seconds']:7.3f} s  peak +{extra:5.1f} MiB  "
            f"{got['message'][:70]}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 1:
        measure()
    else:
        main(sys.argv[1], sys.argv[2:])
    sys.exit(0)
