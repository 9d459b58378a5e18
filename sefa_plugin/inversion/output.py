"""`Inversion`: the result of inverting images, and its folder format.

An inversion folder holds ``latents.safetensors``: the tensors ``latents`` ``[N, num_ws, latent_dim]`` (the
generator's edit space, what ``GANPipeline.__call__`` edits), ``losses`` ``[N, num_steps]`` and, for generators
with noise inputs, ``noise.<buffer name>`` ``[N, 1, r, r]``; its ``__metadata__`` (JSON strings) records the
latent space, the perceptual term, the settings, which inputs were resized, and the provenance of the model
(``class_name``, ``num_ws``, ``weights_sha256``, ``repo_id`` ...). With ``save_images=True`` the targets, the
reconstructions and a side-by-side ``comparison.png`` (target | reconstruction, one row per image) are written
too. Everything is written atomically: an error leaves the folder as it was.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..hub import atomic_folder, warn_if_other_weights
from ..models.interface import EditableGenerator
from ..utils.images import make_grid
from .latents_io import LATENTS_FILE, check_latents
from .noise import applied_noise, check_noise_maps

logger = logging.getLogger(__name__)

FORMAT = "sefa_plugin.inversion"
FORMAT_VERSION = "1"
_NOISE_PREFIX = "noise."


def psnr(a: PIL.Image.Image, b: PIL.Image.Image) -> float:
    """Peak signal-to-noise ratio (dB) between two 8-bit images of the same size (inf when equal)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _read_png(path: Path) -> PIL.Image.Image:
    with PIL.Image.open(path) as im:
        im.load()
        return im.copy()


@dataclass
class Inversion(BaseOutput):
    """Images inverted into a generator's edit space.

    Attributes:
        latents: ``[N, num_ws, latent_dim]`` float32: W+ for the StyleGAN family, ``z`` as ``[N, 1, z_dim]`` for
            z-input generators; render or edit them with ``pipe(latents=...)``.
        images: The reconstructions (PIL), rendered with `noise`.
        targets: The targets as the generator saw them (converted, centre-cropped, resized).
        losses: The loss of each image at each step ``[N, num_steps]``.
        noise: Optimised noise maps ``{buffer name: [N, 1, r, r]}`` (empty for generators without noise inputs,
            or when they were not optimised). Render with them through :meth:`render`.
        perceptual: The perceptual term used: ``"lpips-vgg16"``, ``"vgg16"``, ``"predictor"`` or ``"none"``.
        latent_space: ``"w+"``, ``"w"`` (stored as W+ with equal layers) or ``"z"``: the space optimised.
        settings: The projector settings.
        resized: Whether each input was cropped or resized to the generator's resolution.
        base_model: Provenance of the generator (``pipe.provenance()``).

    Example:

    >>> inv = pipe.invert(["scene.png"], num_steps=300)  # doctest: +SKIP
    >>> inv.save_pretrained("my-scene")  # doctest: +SKIP
    >>> Inversion.from_pretrained("my-scene").latents.shape  # doctest: +SKIP
    torch.Size([1, 10, 128])
    """

    latents: torch.Tensor
    images: list[PIL.Image.Image] = field(default_factory=list)
    targets: list[PIL.Image.Image] = field(default_factory=list)
    losses: torch.Tensor | None = None
    noise: dict[str, torch.Tensor] = field(default_factory=dict)
    perceptual: str = "none"
    latent_space: str = "w+"
    settings: dict[str, Any] = field(default_factory=dict)
    resized: list[bool] = field(default_factory=list)
    base_model: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:  # BaseOutput is a dict: len() would count its fields
        return int(self.latents.shape[0])

    # ------------------------------------------------------------------ measures and rendering
    def psnr(self) -> list[float]:
        """PSNR (dB) of each reconstruction against its target, on the 8-bit images."""
        if len(self.images) != len(self.targets):
            raise ValueError("`psnr` needs both `images` and `targets` (a loaded inversion may lack them).")
        return [psnr(a, b) for a, b in zip(self.images, self.targets, strict=True)]

    def comparison(self) -> PIL.Image.Image:
        """One row per image: target | reconstruction."""
        if not self.images or len(self.images) != len(self.targets):
            raise ValueError("`comparison` needs both `images` and `targets`.")
        return make_grid([im for pair in zip(self.targets, self.images, strict=True) for im in pair], nrow=2)

    def latents_for(self, generator: EditableGenerator, what: str = "latents") -> torch.Tensor:
        """The latents, checked against `generator` (shape, family; other weights of the same shape only warn)."""
        recorded = self.base_model.get("class_name")
        if recorded and recorded != type(generator).__name__:
            raise ValueError(
                f"`{what}` were inverted with a {recorded}, not this {type(generator).__name__}: they belong to "
                f"another model."
            )
        latents = check_latents(self.latents, generator, what=what)
        warn_if_other_weights(
            self.base_model.get("weights_sha256"),
            generator,  # type: ignore[arg-type]
            f"`{what}` were inverted on a generator with weights sha256",
            "They may not render the same images.",
        )
        return latents

    @torch.no_grad()
    def render(
        self, generator: EditableGenerator, latents: torch.Tensor | None = None, batch_size: int | None = None
    ) -> torch.Tensor:
        """Render `latents` (default: :attr:`latents`; e.g. edited ones, one row per inverted image) with the
        inversion's noise maps; returns ``[N, C, R, R]`` in [-1, 1] on the CPU."""
        lat = self.latents_for(generator) if latents is None else check_latents(latents, generator)
        if lat.shape[0] != len(self):
            raise ValueError(f"`latents` must have one row per inverted image ({len(self)}), got {lat.shape[0]}.")
        if self.noise:
            check_noise_maps(generator, self.noise, len(self))
        device = next(generator.parameters()).device  # type: ignore[attr-defined]
        with applied_noise(generator, {k: v.to(device) for k, v in self.noise.items()}):
            return generator.synthesize(lat.to(device)).cpu()

    # ------------------------------------------------------------------ files
    def _metadata(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "latent_space": self.latent_space,
            "perceptual": self.perceptual,
            "settings": json.dumps(self.settings, sort_keys=True),
            "resized": json.dumps([bool(r) for r in self.resized]),
            "base_model": json.dumps(self.base_model, sort_keys=True),
        }

    def save_pretrained(self, save_directory: str | os.PathLike, save_images: bool = True) -> Path:
        """Write ``latents.safetensors`` (and the targets, reconstructions and ``comparison.png``) atomically.

        Args:
            save_directory: Target folder (created if needed; other files in it are kept).
            save_images: Also write ``targets/NNN.png``, ``reconstructions/NNN.png`` and ``comparison.png``.

        Example:

        >>> inv.save_pretrained("my-scene")  # doctest: +SKIP
        """
        tensors = {"latents": self.latents.detach().cpu().float().contiguous()}
        if self.losses is not None:
            tensors["losses"] = self.losses.detach().cpu().float().contiguous()
        for name, t in self.noise.items():
            tensors[_NOISE_PREFIX + name] = t.detach().cpu().float().contiguous()
        with atomic_folder(save_directory) as tmp:
            save_file(tensors, str(tmp / LATENTS_FILE), metadata=self._metadata())
            if save_images and self.images:
                for sub, imgs in (("targets", self.targets), ("reconstructions", self.images)):
                    (tmp / sub).mkdir()
                    for i, im in enumerate(imgs):
                        im.save(tmp / sub / f"{i:03d}.png", format="PNG")
                if len(self.targets) == len(self.images):
                    self.comparison().save(tmp / "comparison.png", format="PNG")
        return Path(save_directory)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, what: str = "path") -> Inversion:
        """Load an inversion folder (or its ``latents.safetensors``); images are read when present.

        Example:

        >>> inv = Inversion.from_pretrained("my-scene")  # doctest: +SKIP
        """
        p = Path(path)
        file = p / LATENTS_FILE if p.is_dir() else p
        if not file.is_file():
            raise FileNotFoundError(f"`{what}` {str(p)!r} has no {LATENTS_FILE}: it is not an inversion folder.")
        try:
            with safe_open(str(file), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
        except (SafetensorError, OSError) as err:
            raise ValueError(f"`{what}` {str(file)!r} is not a readable safetensors file: {err}") from None
        if meta.get("format") != FORMAT or "latents" not in tensors:
            raise ValueError(f"`{what}` {str(file)!r} is not a sefa_plugin inversion file (no inversion metadata).")
        latents = tensors["latents"]
        if latents.ndim != 3 or not torch.isfinite(latents).all():
            raise ValueError(f"`{what}` {str(file)!r}: `latents` must be a finite [N, num_ws, D] tensor.")
        try:
            folder = file.parent
            images = [_read_png(f) for f in sorted((folder / "reconstructions").glob("*.png"))]
            targets = [_read_png(f) for f in sorted((folder / "targets").glob("*.png"))]
            return cls(
                latents=latents,
                images=images,
                targets=targets,
                losses=tensors.get("losses"),
                noise={k[len(_NOISE_PREFIX) :]: v for k, v in tensors.items() if k.startswith(_NOISE_PREFIX)},
                perceptual=meta.get("perceptual", "none"),
                latent_space=meta["latent_space"],
                settings=json.loads(meta.get("settings", "{}")),
                resized=json.loads(meta.get("resized", "[]")),
                base_model=json.loads(meta.get("base_model", "{}")),
            )
        except (KeyError, json.JSONDecodeError) as err:
            raise ValueError(f"`{what}` {str(file)!r} has incomplete or corrupt inversion metadata: {err}") from None
