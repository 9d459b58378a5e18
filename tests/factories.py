"""Tiny seeded models shared by the tests (resolution 16, built in milliseconds)."""

from __future__ import annotations

import torch

from sefa_plugin import StyleGAN2Generator
from sefa_plugin.models import BigGANGenerator, StyleGAN3Generator

#: A tiny GAN training run (16 px, batch 4) with every lazy regularisation due every other step.
TINY_TRAINING = dict(
    resolution=16,
    z_dim=16,
    w_dim=16,
    mapping_layers=2,
    channel_base=128,
    channel_max=16,
    batch_size=4,
    r1_interval=2,
    pl_weight=2.0,
    pl_interval=2,
)

TINY_STYLEGAN2 = dict(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)


def tiny_stylegan2(seed: int = 0, trained_like: bool = False, **kwargs) -> StyleGAN2Generator:
    """A tiny StyleGAN2Generator in eval mode; `kwargs` override :data:`TINY_STYLEGAN2`.

    With `trained_like`, biases and noise strengths are non-zero and the average ``w`` is random, as after
    training (fresh initialisation leaves them at zero, which hides mistakes in truncation, noise and bias
    handling).
    """
    torch.manual_seed(seed)
    g = StyleGAN2Generator(**{**TINY_STYLEGAN2, **kwargs}).eval()
    if trained_like:
        with torch.no_grad():
            for name, p in g.named_parameters():
                if name.endswith(("noise_strength", "bias")):
                    p.copy_(torch.randn_like(p) * 0.3)
            g.mapping.w_avg.normal_()
    return g


TINY_BIGGAN = dict(
    output_dim=16,
    z_dim=8,
    class_embed_dim=8,
    channel_width=4,
    num_classes=5,
    layers=[[False, 16, 16], [True, 16, 8], [False, 8, 4], [True, 4, 2], [False, 2, 1]],
    attention_layer_position=2,
    n_stats=11,
)


def tiny_biggan(seed: int = 0, **kwargs) -> BigGANGenerator:
    """A tiny BigGAN in eval mode with non-trivial biases, attention gain, embedding and BN statistics."""
    torch.manual_seed(seed)
    g = BigGANGenerator(**{**TINY_BIGGAN, **kwargs}).eval()
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith(("bias", "gamma")) or name == "generator.bn.weight":
                p.copy_(torch.randn_like(p) * 0.3)
            elif name == "embeddings.weight":
                p.normal_()
        for name, b in g.named_buffers():
            if name.endswith("running_means"):
                b.copy_(torch.randn_like(b) * 0.3)
            elif name.endswith("running_vars"):
                b.copy_(torch.rand_like(b) + 0.5)
    return g


#: Tiny config T: 16×16 output, sampling rates 4 → 16, so layers up- and downsample by different factors.
TINY_T = dict(
    z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=16, num_layers=4, num_critical=1,
    first_cutoff=1, first_stopband=2, margin_size=2, mapping_layers=2,
)  # fmt: skip
#: Tiny config R: 1×1 convolutions, radial downsampling filters, doubled channels (NVIDIA's R recipe).
TINY_R = {**TINY_T, "channel_base": 256, "channel_max": 32, "conv_kernel": 1, "use_radial_filters": True}


def tiny_stylegan3(seed: int = 0, **kwargs) -> StyleGAN3Generator:
    """A tiny seeded StyleGAN3Generator in eval mode with "trained-like" biases and statistics.

    A fresh model has zero biases, an all-zero input affine (no rotation or translation), unit input
    magnitudes and ``w_avg = 0``, which would hide mistakes in exactly those paths.
    """
    torch.manual_seed(seed)
    g = StyleGAN3Generator(**{**TINY_T, **kwargs}).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, t in g.state_dict(keep_vars=True).items():
            if name.endswith("bias"):
                t.add_(torch.randn(t.shape, generator=gen) * 0.3)
            elif name.endswith(("input.affine.weight", "w_avg")):
                t.copy_(torch.randn(t.shape, generator=gen))
            elif name.endswith("magnitude_ema"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
    return g


def run_two_processes(script: str, tmp_path, *args: str) -> tuple[dict, dict]:
    """Run `script` in two CPU processes (torchrun, gloo) as ``script.py TMP_PATH *args``; return the dicts the
    two ranks saved to ``TMP_PATH/rank0.pt`` and ``rank1.pt`` (skips when torchrun is not installed)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to the interpreter")
    path = Path(tmp_path) / "two_processes.py"
    path.write_text(script)
    cmd = [torchrun, "--nproc_per_node", "2", str(path), str(tmp_path), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    r0, r1 = (torch.load(Path(tmp_path) / f"rank{i}.pt", weights_only=True) for i in range(2))
    return r0, r1
