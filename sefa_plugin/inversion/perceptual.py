"""Perceptual terms for inversion: LPIPS-VGG16 when its weights are on the machine, else the factor predictor.

Both compare images through the channel-normalised activations of a fixed network, as LPIPS does (Zhang et al.,
CVPR 2018, https://arxiv.org/abs/1801.03924): each layer's features are scaled to unit length along the
channels, their squared difference is (optionally) weighted per channel, averaged over space and summed over
layers.

* :class:`VGG16Perceptual`: VGG16's ``relu1_2 … relu5_3`` with LPIPS' input scaling. The backbone is
  torchvision's ImageNet ``vgg16`` state dict (``vgg16-397923af.pth``, read with ``torch.load(weights_only=True)``,
  never executing code): a path given by the caller, or torchvision's cache
  (``$TORCH_HOME/hub/checkpoints``). With LPIPS' calibration weights (the ``lpips`` package's
  ``weights/v0.1/vgg.pth``: a path given, or found in an installed ``lpips`` package) the term is LPIPS-VGG16
  (``"lpips-vgg16"``); without them every channel weighs the same (``"vgg16"``). Nothing is ever downloaded.
  Images above 256² are area-downsampled to 256² first, as NVIDIA's projector does.
* :class:`PredictorPerceptual`: the same distance over the stages of this project's factor predictor
  (:class:`~sefa_plugin.evaluation.predictor.FactorPredictor`) and its pooled embedding (``"predictor"``). It is
  always available for the embedded model, and ties the fit to what the predictor reads (shape, hues, position).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..evaluation.predictor import FactorPredictor

logger = logging.getLogger(__name__)

PERCEPTUAL_TERMS = ("auto", "lpips", "predictor", "none")

#: torchvision's file name for the ImageNet VGG16 weights.
VGG16_FILE = "vgg16-397923af.pth"
# VGG16 `features` layout: output channels of each 3×3 convolution, "M" for 2×2 max pooling.
_VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# Indices in torchvision's `features` after which LPIPS reads (the ReLUs of relu1_2, 2_2, 3_3, 4_3, 5_3).
_VGG16_TAPS = (3, 8, 15, 22, 29)
# LPIPS' input scaling for images in [-1, 1].
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f * (f.square().sum(dim=1, keepdim=True) + 1e-10).rsqrt()


class PerceptualTerm(nn.Module):
    """A fixed feature network; :meth:`distance` is the LPIPS-style distance ``[N]`` between two batches.

    Subclasses implement :meth:`features` (a list of ``[N, C, H, W]`` or ``[N, C]`` activations) and may set
    ``channel_weights`` (one ``[C]`` tensor per layer).
    """

    name: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.channel_weights: list[torch.Tensor] | None = None

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def distance_to(self, images: torch.Tensor, target_features: list[torch.Tensor]) -> torch.Tensor:
        """Distance ``[N]`` of `images` to precomputed target features."""
        total = 0.0
        for k, (f, t) in enumerate(zip(self.features(images), target_features, strict=True)):
            d = (_unit(f) - _unit(t)).square()  # [N, C, ...]
            if self.channel_weights is not None:
                shape = [1, -1] + [1] * (d.ndim - 2)
                d = d * self.channel_weights[k].to(d).reshape(shape)
            total = total + d.sum(dim=1).reshape(d.shape[0], -1).mean(dim=1)
        return total  # type: ignore[return-value]

    def distance(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Distance ``[N]`` between two batches ``[N, C, H, W]`` in [-1, 1]."""
        with torch.no_grad():
            target_features = [t.detach() for t in self.features(targets)]
        return self.distance_to(images, target_features)


class PredictorPerceptual(PerceptualTerm):
    """LPIPS-style distance over the factor predictor's stages and its pooled embedding.

    Example:

    >>> import torch
    >>> from sefa_plugin.evaluation import FactorPredictor
    >>> term = PredictorPerceptual(FactorPredictor(channels=(8, 16), feature_dim=32))
    >>> x = torch.zeros(2, 3, 64, 64)
    >>> term.distance(x, x).tolist()
    [0.0, 0.0]
    """

    name = "predictor"

    def __init__(self, predictor: FactorPredictor) -> None:
        super().__init__()
        self.predictor = predictor.eval().requires_grad_(False)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        p = self.predictor
        x = p.check_images(images).clamp(-1.0, 1.0)
        x = torch.cat([x, p.coord_grid.to(x.dtype).expand(x.shape[0], -1, -1, -1)], dim=1)
        out = []
        for i, block in enumerate(p.trunk):
            x = block(x)
            if i % 2 == 1:  # the end of each stage (a stride-2 and a stride-1 block)
                out.append(x)
        out.append(F.relu(p.embed(x.mean(dim=(2, 3)))))
        return out


class VGG16Perceptual(PerceptualTerm):
    """LPIPS-VGG16 (with calibration weights) or plain VGG16 feature distance, from local weight files.

    Args:
        vgg16_weights: torchvision's ImageNet VGG16 state dict (``features.*`` keys are read).
        lpips_weights: LPIPS' ``vgg.pth`` (``lin0.model.1.weight`` … ``lin4.model.1.weight``), or None.
    """

    def __init__(self, vgg16_weights: str | os.PathLike, lpips_weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in _VGG16_LAYOUT:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = int(v)
        self.layers = nn.Sequential(*layers)
        state = _load_state(vgg16_weights, "vgg16_weights")
        wanted = {k: v for k, v in state.items() if k.startswith("features.")}
        own = {f"features.{k}": v for k, v in self.layers.state_dict().items()}
        missing = sorted(set(own) - set(wanted))
        if missing:
            raise ValueError(
                f"`vgg16_weights` {str(vgg16_weights)!r} is not torchvision's VGG16: missing {missing[:3]}."
            )
        for k, v in own.items():
            if tuple(wanted[k].shape) != tuple(v.shape):
                raise ValueError(
                    f"`vgg16_weights` {str(vgg16_weights)!r}: {k} has shape {list(wanted[k].shape)}, expected "
                    f"{list(v.shape)} (not VGG16)."
                )
        self.layers.load_state_dict({k[len("features.") :]: v for k, v in wanted.items()})
        self.layers.eval().requires_grad_(False)
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).reshape(1, 3, 1, 1), persistent=False)
        self.name = "vgg16"
        if lpips_weights is not None:
            lin = _load_state(lpips_weights, "lpips_weights")
            widths = (64, 128, 256, 512, 512)
            weights = []
            for k, c in enumerate(widths):
                key = f"lin{k}.model.1.weight"
                if key not in lin or lin[key].numel() != c:
                    raise ValueError(
                        f"`lpips_weights` {str(lpips_weights)!r} is not LPIPS' vgg.pth: {key} with {c} entries "
                        f"expected."
                    )
                weights.append(lin[key].reshape(c).float())
            self.channel_weights = weights
            self.name = "lpips-vgg16"

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        if images.shape[-1] > 256:
            images = F.interpolate(images, size=(256, 256), mode="area")
        x = (images - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in _VGG16_TAPS:
                out.append(x)
        return out


def _load_state(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"`{what}` {str(path)!r} is not a file.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a foreign file
        raise ValueError(f"`{what}` {str(path)!r} is not a plain PyTorch state dict: {err}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"`{what}` {str(path)!r} is not a state dict of tensors.")
    return state


def find_vgg16_weights() -> Path | None:
    """torchvision's cached VGG16 weights (``$TORCH_HOME/hub/checkpoints``), or None. Never downloads."""
    torch_home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch"))
    path = torch_home.expanduser() / "hub" / "checkpoints" / VGG16_FILE
    return path if path.is_file() else None


def find_lpips_weights() -> Path | None:
    """LPIPS' ``vgg.pth`` inside an installed ``lpips`` package (located without importing it), or None."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "weights" / "v0.1" / "vgg.pth"
        if path.is_file():
            return path
    return None


def resolve_perceptual(
    perceptual: str | PerceptualTerm = "auto",
    *,
    vgg16_weights: str | os.PathLike | None = None,
    lpips_weights: str | os.PathLike | None = None,
    predictor: FactorPredictor | None = None,
    img_resolution: int | None = None,
) -> PerceptualTerm | None:
    """Choose the perceptual term; None means pixel losses only.

    Args:
        perceptual: ``"auto"`` (LPIPS-VGG16 if its weights are on the machine, else `predictor` when given and
            of the generator's resolution, else none), ``"lpips"`` (required: an error if the VGG16 weights are
            missing), ``"predictor"`` (required), ``"none"``, or a :class:`PerceptualTerm`.
        vgg16_weights: torchvision's VGG16 weights file (default: torchvision's cache).
        lpips_weights: LPIPS' ``vgg.pth`` (default: an installed ``lpips`` package's).
        predictor: A factor predictor for the ``"predictor"`` term.
        img_resolution: The generator's resolution (the predictor only reads images of its own size).
    """
    if isinstance(perceptual, PerceptualTerm):
        return perceptual
    if perceptual not in PERCEPTUAL_TERMS:
        raise ValueError(f"`perceptual` must be one of {PERCEPTUAL_TERMS} or a PerceptualTerm, got {perceptual!r}.")
    if perceptual == "none":
        return None
    if perceptual in ("auto", "lpips"):
        vgg = vgg16_weights if vgg16_weights is not None else find_vgg16_weights()
        if vgg is not None:
            lin = lpips_weights if lpips_weights is not None else find_lpips_weights()
            return VGG16Perceptual(vgg, lin)
        if perceptual == "lpips":
            raise FileNotFoundError(
                f"`perceptual`='lpips' needs VGG16 weights: pass `vgg16_weights` (torchvision's {VGG16_FILE}) or put "
                f"the file in torchvision's cache; nothing is downloaded."
            )
    fits = predictor is not None and (img_resolution is None or predictor.config.img_resolution == img_resolution)
    if perceptual == "predictor" and not fits:
        got = "none" if predictor is None else f"one for {predictor.config.img_resolution}² images"
        raise ValueError(f"`perceptual`='predictor' needs a factor predictor for {img_resolution}² images, got {got}.")
    if fits:
        return PredictorPerceptual(predictor)  # type: ignore[arg-type]
    logger.info("no perceptual term available (no VGG16 weights, no factor predictor): pixel losses only")
    return None
