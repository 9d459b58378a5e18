"""DCGAN converter: PyTorch-tutorial (`main.N`) and HugGAN (`model.N`) layouts, whole-module pickles, the Hub.

The reference generator is written here from the tutorial's formula (an `nn.Sequential` of transposed
convolutions, batch norms, ReLUs and a tanh), with random weights and batch-norm statistics.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from sefa_plugin import SefaPipeline
from sefa_plugin.cli import main
from sefa_plugin.convert import FORMATS, convert_checkpoint, convert_dcgan, detect_format
from sefa_plugin.models.dcgan import DCGANTutorialGenerator

NZ, NGF, NC = 6, 4, 3


def tutorial_sequential(resolution: int, nz: int = NZ, ngf: int = NGF, nc: int = NC, seed: int = 0) -> nn.Sequential:
    """The tutorial's generator from its formula: nz → ngf·2^(K−1) at 4×4, halving per doubling, → nc, tanh."""
    torch.manual_seed(seed)
    num_blocks = resolution.bit_length() - 3  # log2(resolution) - 2
    layers: list[nn.Module] = []
    c_in = nz
    for i in range(num_blocks):
        c_out = ngf * 2 ** (num_blocks - 1 - i)
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False)]
        layers += [nn.BatchNorm2d(c_out), nn.ReLU(True)]
        c_in = c_out
    layers += [nn.ConvTranspose2d(c_in, nc, 4, 2, 1, bias=False), nn.Tanh()]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.ConvTranspose2d):
                m.weight.normal_(0, 0.3)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1, 0.2)
                m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    return net.eval()


class Generator(nn.Module):
    """The tutorial's `Generator` class: `ngpu` and `main` (pickled whole as `<module>.Generator`)."""

    def __init__(self, main_net: nn.Sequential) -> None:
        super().__init__()
        self.ngpu = 1
        self.main = main_net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def state(net: nn.Sequential, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in net.state_dict().items()}


def assert_faithful(g: DCGANTutorialGenerator, net: nn.Sequential) -> None:
    z = torch.randn(5, NZ, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = g(z), net(z[:, :, None, None])
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 1e-4


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("prefix", ["main", "model"])
def test_state_dict_layouts_match_the_formula(tmp_path, resolution, prefix):
    net = tutorial_sequential(resolution)
    path = tmp_path / "netG.pth"
    torch.save(state(net, prefix), path)
    assert detect_format(path) == "dcgan"
    g = convert_checkpoint(path)
    assert isinstance(g, DCGANTutorialGenerator) and not g.training
    assert (g.config.z_dim, g.config.ngf, g.config.img_channels, g.config.img_resolution) == (NZ, NGF, NC, resolution)
    assert_faithful(g, net)


def test_training_checkpoint_with_discriminator_and_optimizers(tmp_path):
    net = tutorial_sequential(32)
    disc = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1, bias=False), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 4, 1, 0, bias=False))
    opt = torch.optim.Adam(net.parameters())
    opt.zero_grad()
    net.train()(torch.randn(2, NZ, 1, 1)).mean().backward()
    opt.step()
    net.eval()
    checkpoint = {
        "epoch": 3,
        "netG_state_dict": state(net, "main"),
        "netD_state_dict": state(disc, "main"),
        "optimizerG_state_dict": opt.state_dict(),
        "optimizerD_state_dict": torch.optim.Adam(disc.parameters()).state_dict(),
        "G_losses": [0.5, 0.25],
    }
    path = tmp_path / "checkpoint.pth"
    torch.save(checkpoint, path)
    assert detect_format(path) == "dcgan"
    assert_faithful(convert_checkpoint(path), net)
    # DataParallel's `module.` prefix
    assert_faithful(convert_dcgan({"netG": state(net, "module.main")}), net)


@pytest.mark.parametrize("main_module", [False, True])
def test_whole_module_pickle(tmp_path, monkeypatch, main_module):
    net = tutorial_sequential(64)
    model = Generator(net)
    if main_module:  # as a script run with `python train.py` pickles it: `__main__.Generator`
        monkeypatch.setattr(Generator, "__module__", "__main__")
        monkeypatch.setattr(sys.modules["__main__"], "Generator", Generator, raising=False)
    path = tmp_path / "G.pth"
    torch.save(model, path)
    with pytest.raises(Exception, match=r"(?i)weights_only|unsupported global"):
        torch.load(path, weights_only=True)
    assert detect_format(path) == "dcgan"
    assert_faithful(convert_checkpoint(path), net)
    # a training checkpoint holding the modules themselves
    torch.save({"netG": model, "epoch": 1}, path)
    assert_faithful(convert_checkpoint(path), net)
    # the legacy (PyTorch < 1.6) format stores each module class with its source code, which is never read
    torch.save(model, path, _use_new_zipfile_serialization=False)
    assert detect_format(path) == "dcgan"
    assert_faithful(convert_checkpoint(path), net)


def test_sefa_equals_the_formula_on_the_source_weight(tmp_path):
    net = tutorial_sequential(32)
    torch.save(state(net, "main"), tmp_path / "netG.pth")
    g = convert_checkpoint(tmp_path / "netG.pth")
    w = net[0].weight.detach()  # [nz, C, 4, 4]: out[c, i, j] = sum_k z_k w[k, c, i, j]
    a = w.reshape(NZ, -1).T.double()  # [C*16, nz]
    a = a / a.norm(dim=1, keepdim=True)
    values, vectors = torch.linalg.eigh(a.T @ a)
    values, vectors = values.flip(0), vectors.flip(1).T
    directions = SefaPipeline(generator=g).factorize()
    torch.testing.assert_close(directions.values.double(), values, rtol=1e-4, atol=1e-5)
    cos = (directions.vectors.double() * vectors).sum(dim=1).abs()
    torch.testing.assert_close(cos, torch.ones(NZ, dtype=torch.float64), rtol=0, atol=1e-4)


def write_huggan_folder(folder, net, *, safetensors: bool = False, **overrides) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"num_channels": NC, "latent_dim": NZ, "hidden_size": NGF} | overrides
    (folder / "config.json").write_text(json.dumps(config))
    sd = {k: v.contiguous() for k, v in state(net, "model").items()}
    if safetensors:
        save_file(sd, str(folder / "model.safetensors"))
    else:
        torch.save(sd, folder / "pytorch_model.bin")


@pytest.mark.parametrize("safetensors", [False, True])
def test_huggan_folder(tmp_path, safetensors):
    net = tutorial_sequential(64)
    write_huggan_folder(tmp_path / "repo", net, safetensors=safetensors)
    assert detect_format(tmp_path / "repo") == "dcgan"
    assert_faithful(convert_checkpoint(tmp_path / "repo"), net)
    write_huggan_folder(tmp_path / "bad", net, safetensors=safetensors, latent_dim=NZ + 1)
    with pytest.raises(ValueError, match="`latent_dim` is 7 but the weights have z_dim = 6"):
        convert_checkpoint(tmp_path / "bad")


def test_from_pretrained_on_a_huggan_hub_repo(tmp_path, hub_env):
    net = tutorial_sequential(32)
    write_huggan_folder(tmp_path / "repo", net, safetensors=True)
    repo_id = hub_env.api.create_repo("huggan-dcgan").repo_id
    hub_env.api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "repo")
    pipe = SefaPipeline.from_pretrained(repo_id)
    assert isinstance(pipe.generator, DCGANTutorialGenerator)
    assert pipe.source["repo_id"] == repo_id and pipe.source["source_format"] == "dcgan"
    assert_faithful(pipe.generator, net)
    directions = pipe.factorize(num_directions=3)
    out = pipe(seeds=[0], directions=directions, index=0, strengths=[-2.0, 2.0], output_type="pt")
    assert out.images.shape == (2, 3, 32, 32) and torch.isfinite(out.images).all()
    saved = tmp_path / "pipe"
    pipe.save_pretrained(saved)
    assert "dcgan" in (saved / "README.md").read_text()
    assert_faithful(SefaPipeline.from_pretrained(saved).generator, net)


def test_convert_cli_detects_dcgan(tmp_path, capsys):
    net = tutorial_sequential(32)
    torch.save(Generator(net), tmp_path / "G.pth")
    assert "dcgan" in FORMATS
    assert main(["convert", str(tmp_path / "G.pth"), "--out", str(tmp_path / "out")]) == 0
    assert_faithful(SefaPipeline.from_pretrained(tmp_path / "out").generator, net)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda sd: sd.pop("main.4.running_var"), "main.4.running_var"),
        (lambda sd: sd.__setitem__("main.3.weight", torch.zeros(16, 5, 4, 4)), "main.3.weight"),
        (lambda sd: sd.__setitem__("main.3.weight", torch.zeros(16, 8, 3, 3)), "main.3.weight"),
        (lambda sd: sd.__setitem__("main.10.weight", torch.zeros(4, 3, 4, 4)), "0, 3, 6"),
        (lambda sd: sd.__setitem__("main.7.extra", torch.zeros(1)), "main.7.extra"),
        (lambda sd: sd.__setitem__("foo", torch.zeros(1)), "'foo'"),
    ],
)
def test_errors_name_the_key(mutate, match):
    sd = state(tutorial_sequential(32), "main")
    mutate(sd)
    with pytest.raises(ValueError, match=match):
        convert_dcgan(sd)


def test_discriminator_is_not_taken_for_a_generator():
    disc = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1, bias=False), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 4, 1, 0, bias=False))
    with pytest.raises(ValueError, match="Not a DCGAN generator"):
        convert_dcgan(state(disc, "main"))
