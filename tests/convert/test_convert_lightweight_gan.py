"""lightweight-gan checkpoints (lucidrains' and the HugGAN port's layouts), written here, converted."""

from __future__ import annotations

import pathlib
import re
from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F
from all_methods import check_all_methods
from code_payload import TouchOnLoad

from sefa_plugin import SefaPipeline
from sefa_plugin.cli import main
from sefa_plugin.convert import convert_checkpoint, detect_format
from sefa_plugin.convert.lightweight_gan import convert_lightweight_gan, convert_lightweight_gan_state_dict
from sefa_plugin.models import LightweightGANGenerator

Z, HEADS, DIM_HEAD = 8, 8, 64
SLE_MAP = {3: 7, 4: 8, 5: 9, 6: 10}  # their `sle_map`: res → out_res


def their_generator_state(
    channels=(8, 8, 4, 4, 4), attn_widths=(8, 16), variant="lucidrains", antialias=False, seed=0
) -> dict[str, torch.Tensor]:
    """`Generator.state_dict()` in their names for a 4·2**len(channels) model, random weights."""
    g = torch.Generator().manual_seed(seed)
    s: dict[str, torch.Tensor] = {}
    resolution = 2 + len(channels)

    def conv(name: str, cin: int, cout: int, k: int, bias: bool = True, groups: int = 1) -> None:
        s[f"{name}.weight"] = torch.randn(cout, cin // groups, k, k, generator=g) / (k * (cin // groups) ** 0.5)
        if bias:
            s[f"{name}.bias"] = 0.1 * torch.randn(cout, generator=g)

    def bn(name: str, c: int) -> None:
        s[f"{name}.weight"] = 1 + 0.2 * torch.randn(c, generator=g)
        s[f"{name}.bias"] = 0.1 * torch.randn(c, generator=g)
        s[f"{name}.running_mean"] = 0.2 * torch.randn(c, generator=g)
        s[f"{name}.running_var"] = 0.5 + torch.rand(c, generator=g)
        s[f"{name}.num_batches_tracked"] = torch.tensor(7)

    s["initial_conv.0.weight"] = torch.randn(Z, 2 * Z, 4, 4, generator=g) / Z**0.5
    s["initial_conv.0.bias"] = 0.1 * torch.randn(2 * Z, generator=g)
    bn("initial_conv.1", 2 * Z)
    widths = [Z, *channels]
    for i, (cin, cout) in enumerate(pairwise(widths)):
        p = f"layers.{i}"
        if variant == "lucidrains":
            conv(f"{p}.0.0.net.0", cin, 4 * cin, 1)
            conv(f"{p}.0.2.1", cin, 2 * cout, 4)
            s[f"{p}.0.3.weight"] = 0.3 * torch.randn(1, generator=g)
            bn(f"{p}.0.4", 2 * cout)
        else:
            conv(f"{p}.0.2", cin, 2 * cout, 3)
            bn(f"{p}.0.3", 2 * cout)
        if antialias:
            s[f"{p}.0.1.f"] = torch.tensor([1.0, 2.0, 1.0])
        r = i + 2
        if r in SLE_MAP and SLE_MAP[r] <= resolution:
            sle_out = widths[SLE_MAP[r] - 1 - 1]  # res_to_feature_map[out_res - 1][-1]
            conv(f"{p}.1.to_k", cout, 1, 1)
            conv(f"{p}.1.net.0", cout, max(3, sle_out // 2), 1)
            conv(f"{p}.1.net.2", max(3, sle_out // 2), sle_out, 1)
        if 2**r in attn_widths:
            s[f"{p}.2.norm.g"] = 1 + 0.1 * torch.randn(1, cin, 1, 1, generator=g)
            s[f"{p}.2.norm.b"] = 0.1 * torch.randn(1, cin, 1, 1, generator=g)
            inner = HEADS * DIM_HEAD
            kv = "to_lin_kv" if variant == "lucidrains" else "to_kv"
            conv(f"{p}.2.fn.{'to_lin_q' if variant == 'lucidrains' else 'to_q'}", cin, inner, 1, bias=False)
            conv(f"{p}.2.fn.{kv}.net.0", cin, cin, 3, bias=False, groups=cin)
            conv(f"{p}.2.fn.{kv}.net.1", cin, 2 * inner, 1, bias=False)
            if variant == "lucidrains":
                conv(f"{p}.2.fn.to_q", cin, inner, 1, bias=False)
                conv(f"{p}.2.fn.to_kv", cin, 2 * inner, 1, bias=False)
            conv(f"{p}.2.fn.to_out", inner * (2 if variant == "lucidrains" else 1), cin, 1)
    conv("out_conv", channels[-1], 3, 3)
    return s


def _split_heads(t: torch.Tensor) -> torch.Tensor:  # 'b (h c) x y -> (b h) (x y) c'
    b, _, x, y = t.shape
    return t.reshape(b * HEADS, -1, x * y).transpose(1, 2)


def _join_heads(t: torch.Tensor, b: int, x: int, y: int) -> torch.Tensor:  # '(b h) (x y) d -> b (h d) x y'
    return t.transpose(1, 2).reshape(b, -1, x, y)


def their_attention(s: dict, p: str, f: torch.Tensor, variant: str) -> torch.Tensor:
    """Their `LinearAttention.forward` (lucidrains: linear + 3×3 local branches; HugGAN: linear only)."""
    b, c, x, y = f.shape
    scale = DIM_HEAD**-0.5
    kv = "to_lin_kv" if variant == "lucidrains" else "to_kv"
    q = F.conv2d(f, s[f"{p}.fn.{'to_lin_q' if variant == 'lucidrains' else 'to_q'}.weight"])
    k, v = F.conv2d(
        F.conv2d(f, s[f"{p}.fn.{kv}.net.0.weight"], padding=1, groups=c), s[f"{p}.fn.{kv}.net.1.weight"]
    ).chunk(2, 1)
    q, k, v = _split_heads(q).softmax(-1) * scale, _split_heads(k).softmax(-2), _split_heads(v)
    lin = F.gelu(_join_heads(torch.einsum("bnd,bde->bne", q, torch.einsum("bnd,bne->bde", k, v)), b, x, y))
    if variant != "lucidrains":
        return F.conv2d(lin, s[f"{p}.fn.to_out.weight"], s[f"{p}.fn.to_out.bias"])
    q = F.conv2d(f, s[f"{p}.fn.to_q.weight"])
    k, v = F.conv2d(f, s[f"{p}.fn.to_kv.weight"]).chunk(2, 1)
    q = q.reshape(b * HEADS, DIM_HEAD, x * y).transpose(1, 2) * scale
    k, v = (F.unfold(t.reshape(b * HEADS, DIM_HEAD, x, y), 3, padding=1) for t in (k, v))
    k, v = (t.reshape(b * HEADS, DIM_HEAD, 9, x * y).permute(0, 3, 2, 1) for t in (k, v))  # b n j d
    sim = torch.einsum("bid,bijd->bij", q, k)
    attn = (sim - sim.amax(-1, keepdim=True)).softmax(-1)
    full = _join_heads(torch.einsum("bij,bijd->bid", attn, v), b, x, y)
    return F.conv2d(torch.cat([lin, full], 1), s[f"{p}.fn.to_out.weight"], s[f"{p}.fn.to_out.bias"])


def their_forward(s: dict, z: torch.Tensor, variant="lucidrains", antialias=False) -> torch.Tensor:
    """`Generator.forward` in eval mode; noise drawn with torch.randn in their order."""

    def bn(t: torch.Tensor, name: str) -> torch.Tensor:
        return F.batch_norm(
            t, s[f"{name}.running_mean"], s[f"{name}.running_var"], s[f"{name}.weight"], s[f"{name}.bias"]
        )

    x = F.conv_transpose2d(z[:, :, None, None], s["initial_conv.0.weight"], s["initial_conv.0.bias"])
    x = F.normalize(F.glu(bn(x, "initial_conv.1"), dim=1), dim=1)
    residuals: dict[int, torch.Tensor] = {}
    i = 0
    while f"layers.{i}.0.{'4' if variant == 'lucidrains' else '3'}.weight" in s:
        p, res = f"layers.{i}", i + 2
        if f"{p}.2.norm.g" in s:
            var, mean = torch.var(x, 1, unbiased=False, keepdim=True), x.mean(1, keepdim=True)
            normed = (x - mean) / (var + 1e-5).sqrt() * s[f"{p}.2.norm.g"] + s[f"{p}.2.norm.b"]
            x = their_attention(s, f"{p}.2", normed, variant) + x
        if variant == "lucidrains":
            x = F.pixel_shuffle(F.silu(F.conv2d(x, s[f"{p}.0.0.net.0.weight"], s[f"{p}.0.0.net.0.bias"])), 2)
        else:
            x = F.interpolate(x, scale_factor=2.0)
        if antialias:
            k = s[f"{p}.0.1.f"][None, :] * s[f"{p}.0.1.f"][:, None]
            k = (k / k.sum()).expand(x.shape[1], 1, 3, 3)
            x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k, groups=x.shape[1])
        if variant == "lucidrains":
            x = F.conv2d(F.pad(x, (2, 1, 2, 1)), s[f"{p}.0.2.1.weight"], s[f"{p}.0.2.1.bias"])
            x = x + s[f"{p}.0.3.weight"] * torch.randn(x.shape[0], 1, x.shape[2], x.shape[3])
            x = F.glu(bn(x, f"{p}.0.4"), dim=1)
        else:
            x = F.glu(bn(F.conv2d(x, s[f"{p}.0.2.weight"], s[f"{p}.0.2.bias"], padding=1), f"{p}.0.3"), dim=1)
        if f"{p}.1.to_k.weight" in s:
            ctx = F.conv2d(x, s[f"{p}.1.to_k.weight"], s[f"{p}.1.to_k.bias"]).flatten(2).softmax(-1)
            pooled = torch.einsum("bin,bcn->bci", ctx, x.flatten(2)).unsqueeze(-1)
            h = F.leaky_relu(F.conv2d(pooled, s[f"{p}.1.net.0.weight"], s[f"{p}.1.net.0.bias"]), 0.1)
            residuals[SLE_MAP[res]] = torch.sigmoid(F.conv2d(h, s[f"{p}.1.net.2.weight"], s[f"{p}.1.net.2.bias"]))
        if res + 1 in residuals:
            x = x * residuals[res + 1]
        i += 1
    return F.conv2d(x, s["out_conv.weight"], s["out_conv.bias"], padding=1)


def save_their_checkpoint(path: pathlib.Path, gen: dict, ema: dict) -> pathlib.Path:
    """lucidrains' `Trainer.save`: {'GAN': LightweightGAN.state_dict(), 'version', 'G_scaler', 'D_scaler'}."""
    gan = {**{f"G.{k}": v for k, v in gen.items()}, **{f"GE.{k}": v for k, v in ema.items()}}
    gan |= {"D.to_logits.0.weight": torch.zeros(1, 4, 4, 4), "D_aug.D.to_logits.0.weight": torch.zeros(1, 4, 4, 4)}
    scaler = {
        "scale": 65536.0,
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 2000,
        "_growth_tracker": 0,
    }
    torch.save({"GAN": gan, "version": "1.2.1", "G_scaler": scaler, "D_scaler": scaler}, path)
    return path


@pytest.mark.parametrize(("variant", "antialias"), [("lucidrains", False), ("lucidrains", True), ("huggan", False)])
def test_matches_their_forward(tmp_path, variant, antialias):
    ema = their_generator_state(variant=variant, antialias=antialias)
    path = save_their_checkpoint(tmp_path / "model_3.pt", their_generator_state(variant=variant, seed=5), ema)
    assert detect_format(path) == "lightweight-gan"
    assert main(["convert", str(path), "--out", str(tmp_path / "ours")]) == 0
    g = SefaPipeline.from_pretrained(tmp_path / "ours").generator
    assert isinstance(g, LightweightGANGenerator) and g.config.img_resolution == 128
    assert list(g.config.attn_res_layers) == [8, 16] and g.config.antialias == antialias and g.sle_targets == {1: 4}
    assert g.config.upsample == ("pixel_shuffle" if variant == "lucidrains" else "nearest")
    z = torch.randn(2, Z, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.manual_seed(3)
        theirs = their_forward(ema, z, variant, antialias)
        torch.manual_seed(3)
        ours = g(z, noise_mode="random")
    assert ((ours + 1) / 2 - theirs).abs().max() <= 1e-4  # ours maps their [0, 1] images to [-1, 1]
    # SeFa on their 4×4 transposed convolution: rows W[:, o, y, x] of the dense map, unit-normalised.
    a = F.normalize(ema["initial_conv.0.weight"].double().permute(1, 2, 3, 0).reshape(-1, Z), dim=1)
    values = torch.linalg.eigvalsh(a.T @ a).flip(0)
    torch.testing.assert_close(SefaPipeline(generator=g).factorize().values.double(), values, rtol=1e-4, atol=1e-5)


def test_noise_modes_and_the_non_ema_generator(tmp_path):
    gen, ema = their_generator_state(seed=5), their_generator_state()
    path = save_their_checkpoint(tmp_path / "model_1.pt", gen, ema)
    g = convert_lightweight_gan(path, use_ema=False)
    z = torch.randn(2, Z)
    with torch.no_grad():
        torch.manual_seed(0)
        ours = g(z, noise_mode="random")
        torch.manual_seed(0)
        assert ((ours + 1) / 2 - their_forward(gen, z)).abs().max() <= 1e-4
        assert torch.equal(g(z), g(z)) and not torch.equal(g(z), g(z, noise_mode="none"))  # "const" is fixed noise


def test_pixel_shuffle_release_without_noise():
    state = their_generator_state(channels=(8, 4), attn_widths=())
    silent = {k: v for k, v in state.items() if not re.fullmatch(r"layers\.\d+\.0\.3\.weight", k)}
    silent = {re.sub(r"^(layers\.\d+\.0\.)4\.", r"\g<1>3.", k): v for k, v in silent.items()}  # BN moves up
    g = convert_lightweight_gan_state_dict(silent)
    assert torch.equal(torch.cat([b.noise_strength for b in g.blocks]), torch.zeros(2))
    z = torch.randn(2, Z)
    quiet = {k: (torch.zeros(1) if re.fullmatch(r"layers\.\d+\.0\.3\.weight", k) else v) for k, v in state.items()}
    with torch.no_grad():
        assert ((g(z) + 1) / 2 - their_forward(quiet, z)).abs().max() <= 1e-4


def test_huggan_hub_folder_and_all_methods(tmp_path):
    folder = tmp_path / "huggan-lightweight"
    folder.mkdir()
    state = their_generator_state(channels=(8, 4, 4), attn_widths=(8,), variant="huggan")
    torch.save({"GAN": {**{f"G.{k}": v for k, v in state.items()}, **{f"GE.{k}": v for k, v in state.items()}}},
               folder / "pytorch_model.bin")  # fmt: skip
    (folder / "config.json").write_text('{"latent_dim": 8, "image_size": 32, "attn_res_layers": [8]}')
    assert detect_format(folder) == "lightweight-gan"
    pipe = SefaPipeline.from_checkpoint(folder)
    assert pipe.source["source_format"] == "lightweight-gan" and pipe.source["source_file"].endswith(
        "pytorch_model.bin"
    )
    pipe.save_pretrained(tmp_path / "ours")
    check_all_methods(tmp_path / "ours")


def test_errors_name_the_key(tmp_path):
    state = their_generator_state(channels=(8, 4), attn_widths=())
    bad = {**state, "layers.1.0.2.1.weight": torch.zeros(8, 8, 3, 3)}
    with pytest.raises(ValueError, match=r"key 'layers\.1\.0\.2\.1\.weight' has shape \[8, 8, 3, 3\], expected"):
        convert_lightweight_gan_state_dict(bad)
    with pytest.raises(ValueError, match=r"does not understand: \['layers\.0\.9\.weight'\]"):
        convert_lightweight_gan_state_dict({**state, "layers.0.9.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="frequency channel attention"):
        convert_lightweight_gan_state_dict({**state, "layers.0.1.dct_weights": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"blur taps \[1, 2, 1\]"):
        convert_lightweight_gan_state_dict({**state, "layers.0.0.1.f": torch.ones(3)})
    missing = {k: v for k, v in state.items() if k != "out_conv.weight"}
    with pytest.raises(ValueError, match=r"missing key 'out_conv\.weight'"):
        convert_lightweight_gan_state_dict(missing)
    with pytest.raises(ValueError, match="Not a lightweight-gan checkpoint"):
        convert_lightweight_gan(save_their_checkpoint(tmp_path / "m.pt", {}, {}))


def test_pickled_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model_2.pt"
    state = their_generator_state(channels=(8, 4), attn_widths=())
    torch.save({"GAN": {f"GE.{k}": v for k, v in state.items()}, "hook": TouchOnLoad(marker)}, path)
    with pytest.raises(Exception, match=r"Unsupported global|weights_only"):
        convert_checkpoint(path, format="lightweight-gan")
    assert not marker.exists()
