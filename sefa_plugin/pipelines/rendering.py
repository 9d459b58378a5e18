"""Rendering a GAN pipeline's generator: the one path from latents to images, edits included.

:class:`RenderingMixin` gives :class:`~sefa_plugin.pipelines.base.GANPipeline` its ``__call__``: latents are
sampled from seeds (after truncation) or given (e.g. an inversion's), moved along one direction at several
strengths on top of combined per-direction edits, and synthesized in batches; :meth:`~RenderingMixin.direction_grid`
and :meth:`~RenderingMixin.walk_frames` build previews and walks from it. The CLI, the demo and the editor call
these and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput

from ..directions.container import Directions
from ..utils.images import make_grid, to_pil

OUTPUT_TYPES = ("pil", "np", "pt")


@dataclass
class GANPipelineOutput(BaseOutput):
    """Output of a GAN pipeline call.

    Attributes:
        images: ``len(seeds) × len(strengths)`` images, seed-major (all strengths of the first seed
            first): a list of PIL images, a NumPy array ``[N, H, W, C]`` in [0, 1], or a tensor
            ``[N, C, H, W]`` in [-1, 1], depending on ``output_type``.
        latents: The edited latents ``[N, num_ws, D]`` that produced the images.
        seeds: The seed of each image (None where latents came from a ``torch.Generator``).
        strengths: The strength of each image.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    latents: torch.Tensor
    seeds: list[int | None]
    strengths: list[float]


class RenderingMixin:
    """The rendering methods of a GAN pipeline (needs ``self.generator`` and ``self.progress_bar``)."""

    # ------------------------------------------------------------------ latents
    @property
    def default_truncation_psi(self) -> float:
        """The truncation front ends use by default: 0.7 for style-based (W+) generators, 1 for z-input ones.

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> SefaPipeline.from_pretrained(DEFAULT_MODEL).default_truncation_psi
        0.7
        """
        return 0.7 if self.generator.latent_space == "w+" else 1.0

    def base_latents(
        self,
        seeds: Sequence[int] | int | None = None,
        num_images: int | None = None,
        generator: torch.Generator | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        class_label: int | None = None,
    ) -> tuple[torch.Tensor, list[int | None]]:
        """Unedited latents in the edit space ``[N, num_ws, latent_dim]`` (after truncation), and their seeds.

        Args:
            seeds: Integer seeds (NVIDIA-compatible ``z``); or use `num_images` with `generator`.
            num_images: Number of random latents when no seeds are given (default 1).
            generator: ``torch.Generator`` for random latents.
            truncation_psi: Truncation towards the average ``w`` (style-based generators only).
            truncation_cutoff: Truncate only the first this many layers.
            class_label: Class index for conditional generators.

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> latents, seeds = SefaPipeline.from_pretrained(DEFAULT_MODEL).base_latents(seeds=[0, 1])
        >>> list(latents.shape), seeds
        ([2, 10, 128], [0, 1])
        """
        g = self.generator
        if seeds is not None and num_images is not None:
            raise ValueError("Give either `seeds` or `num_images`, not both.")
        if seeds is not None:
            seeds = [seeds] if isinstance(seeds, int) else list(seeds)
            if not seeds:
                raise ValueError("`seeds` must not be empty.")
            z = g.z_from_seeds(seeds)
            seed_list: list[int | None] = list(seeds)
        else:
            n = 1 if num_images is None else num_images
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"`num_images` must be a positive int, got {num_images!r}.")
            z = g.randn_z(n, generator=generator)
            seed_list = [None] * n
        if not math.isfinite(truncation_psi):
            raise ValueError(f"`truncation_psi` must be a finite number, got {truncation_psi}.")
        c = self.class_vector(class_label, z.shape[0])
        with torch.no_grad():
            latents = g.sample_latents(z, c=c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return latents, seed_list

    def check_latents(self, latents: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Validate latents given in the edit space and return them as float32 ``[N, num_ws, latent_dim]``.

        ``[N, latent_dim]`` (one W or z vector per image) is broadcast to every layer.

        Raises:
            ValueError: naming `latents`, when the shape does not fit this generator or a value is not finite.
        """
        g = self.generator
        if isinstance(latents, np.ndarray):
            latents = torch.from_numpy(latents)
        if not isinstance(latents, torch.Tensor) or not latents.is_floating_point():
            raise ValueError(f"`latents` must be a floating-point tensor, got {type(latents).__name__}.")
        if latents.ndim == 2 and latents.shape[1] == g.latent_dim:
            latents = latents[:, None].expand(-1, g.num_ws, -1)
        want = [g.num_ws, g.latent_dim]
        if latents.ndim != 3 or list(latents.shape[1:]) != want or latents.shape[0] < 1:
            raise ValueError(
                f"`latents` must have shape [N, {want[0]}, {want[1]}] (or [N, {want[1]}]) for this generator, "
                f"got {list(latents.shape)}: they were made for another model."
            )
        if not torch.isfinite(latents).all():
            raise ValueError("`latents` holds NaN or infinite values.")
        return latents.detach().float().contiguous()

    def class_vector(self, class_label: int | None, n: int) -> torch.Tensor | None:
        """One-hot class labels ``[n, c_dim]`` for a conditional generator, None for an unconditional one.

        Raises:
            ValueError: `class_label` is missing or out of range for a conditional generator, or given for
                an unconditional one.

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> SefaPipeline.from_pretrained(DEFAULT_MODEL).class_vector(None, 2) is None  # unconditional
        True
        """
        c_dim = int(getattr(self.generator.config, "c_dim", 0) or 0)
        if c_dim == 0:
            if class_label is not None:
                raise ValueError("`class_label` was given but this generator is unconditional (c_dim = 0).")
            return None
        valid = isinstance(class_label, int | np.integer) and not isinstance(class_label, bool)
        if not valid or not 0 <= class_label < c_dim:
            raise ValueError(
                f"`class_label` must be an int in [0, {c_dim - 1}] for this conditional generator, got {class_label!r}."
            )
        c = torch.zeros([n, c_dim])
        c[:, int(class_label)] = 1
        return c

    def edit_latents(
        self,
        latents: torch.Tensor,
        directions: Directions,
        index: int = 0,
        strengths: Sequence[float] | float | None = None,
        edit_strengths: Sequence[float] | None = None,
        layers: Sequence[int] | str | None = None,
        sigma_units: bool = False,
    ) -> torch.Tensor:
        """Every latent at every strength along direction `index`, on top of combined edits; seed-major.

        Args:
            latents: Unedited latents ``[N, num_ws, latent_dim]``.
            directions: The directions to edit along.
            index: The direction swept by `strengths`.
            strengths: Strengths of direction `index` (default: one, its entry of `edit_strengths`, else 0).
            edit_strengths: One strength per direction, all applied at once (missing ones are 0); the sweep
                along `index` replaces that direction's entry.
            layers: W+ layers to edit (default: the directions' own layers); a spec like ``"0-3"``.
            sigma_units: Strengths in standard deviations (needs ``directions.stds``).

        Returns:
            ``[N * len(strengths), num_ws, latent_dim]``: all strengths of the first latent first.

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
        >>> base, _ = pipe.base_latents(seeds=[0, 1])
        >>> pipe.edit_latents(base, pipe.factorize(num_directions=3), index=1, strengths=[-2, 0, 2]).shape[0]
        6
        """
        g = self.generator
        edit_layers = None
        if isinstance(layers, str):
            from ..directions.layers import parse_layers

            edit_layers = parse_layers(layers, g.num_ws, g.layer_groups())
        elif layers is not None:
            edit_layers = [int(i) for i in layers]
        directions.check_compatible(g, edit_layers)
        directions._check_index(index)
        current = _finite_list(edit_strengths or [], "edit_strengths")
        if len(current) > len(directions):
            raise ValueError(f"`edit_strengths` has {len(current)} entries for {len(directions)} directions.")
        current += [0.0] * (len(directions) - len(current))
        sweep = _sweep(strengths, current, index)
        current[index] = 0.0
        held = directions.edit_many(latents, current, layers=edit_layers, sigma_units=sigma_units)
        edited = [directions.edit(held, index, s, layers=edit_layers, sigma_units=sigma_units) for s in sweep]
        return torch.stack(edited, dim=1).flatten(0, 1)  # [N * S, num_ws, D]

    # ------------------------------------------------------------------ rendering
    @torch.no_grad()
    def render(
        self,
        latents: torch.Tensor,
        noise_mode: str = "const",
        batch_size: int = 16,
        output_type: str = "pil",
    ) -> list[PIL.Image.Image] | np.ndarray | torch.Tensor:
        """Synthesize latents of the edit space ``[N, num_ws, latent_dim]`` in batches (progress bar).

        Returns:
            PIL images, a NumPy array ``[N, H, W, C]`` in [0, 1], or a tensor ``[N, C, H, W]`` in [-1, 1].
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
        chunks = []
        for start in self.progress_bar(range(0, latents.shape[0], batch_size), desc="render"):
            chunks.append(self.generator.synthesize(latents[start : start + batch_size], noise_mode=noise_mode).cpu())
        images = torch.cat(chunks)
        if output_type == "pil":
            return to_pil(images)
        if output_type == "np":
            return ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
        return images

    @torch.no_grad()
    def __call__(
        self,
        seeds: Sequence[int] | int | None = None,
        num_images: int | None = None,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | np.ndarray | None = None,
        directions: Directions | None = None,
        index: int = 0,
        strengths: Sequence[float] | float | None = None,
        edit_strengths: Sequence[float] | None = None,
        layers: Sequence[int] | str | None = None,
        sigma_units: bool = False,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        class_label: int | None = None,
        batch_size: int = 16,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> GANPipelineOutput | tuple:
        """Render images, optionally moved along one direction at several strengths on top of combined edits.

        Args:
            seeds: Integer seeds (NVIDIA-compatible ``z``); or use `num_images` with `generator`, or `latents`.
            num_images: Number of random images when no seeds are given.
            generator: ``torch.Generator`` for random latents.
            latents: Latents in the edit space ``[N, num_ws, latent_dim]`` (or ``[N, latent_dim]``) to render
                instead of sampling, e.g. an inversion's ``latents``; truncation does not apply to them.
            directions: Directions to edit along (None: no edit).
            index: Which direction of `directions` `strengths` sweeps.
            strengths: Strengths to render for every image (0 is the unedited image; default: one image).
            edit_strengths: One strength per direction, applied together to every image (see
                :meth:`edit_latents`).
            layers: W+ layers to edit (default: the directions' own layers); a spec like ``"0-3"``.
            sigma_units: Strengths in standard deviations (needs ``directions.stds``).
            truncation_psi: Truncation towards the average ``w`` (style-based generators only).
            truncation_cutoff: Truncate only the first this many layers.
            noise_mode: ``"const"``, ``"random"`` or ``"none"``.
            class_label: Class index for conditional generators.
            batch_size: Images per forward pass.
            output_type: ``"pil"``, ``"np"`` or ``"pt"``.
            return_dict: Return a :class:`GANPipelineOutput` instead of a tuple.

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
        >>> directions = pipe.factorize(layers="all", num_directions=5)
        >>> out = pipe(seeds=[0, 1], directions=directions, index=0, strengths=[-3, 0, 3])
        >>> len(out.images), out.images[0].size
        (6, (64, 64))
        >>> again = pipe(latents=out.latents[:1], directions=directions, edit_strengths=[0, 2.0])
        >>> len(again.images)
        1
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        # 1. Base latents: given, or sampled (after truncation).
        if latents is not None:
            if seeds is not None or num_images is not None:
                raise ValueError("Give `latents`, or `seeds`/`num_images`, not both.")
            base = self.check_latents(latents).to(self.generator.device)
            seed_list: list[int | None] = [None] * base.shape[0]
        else:
            base, seed_list = self.base_latents(
                seeds, num_images, generator, truncation_psi, truncation_cutoff, class_label
            )
        # 2. Edit: every base latent at every strength, seed-major.
        sweep = _sweep(strengths, edit_strengths, index)
        if directions is not None:
            out_latents = self.edit_latents(
                base, directions, index, sweep, edit_strengths, layers=layers, sigma_units=sigma_units
            )
        else:
            if any(s != 0 for s in sweep) or any(float(s or 0) != 0 for s in edit_strengths or []):
                raise ValueError("`strengths` or `edit_strengths` other than 0 need `directions`.")
            out_latents = base.repeat_interleave(len(sweep), dim=0)
        # 3. Synthesis in batches and post-processing.
        images = self.render(out_latents, noise_mode=noise_mode, batch_size=batch_size, output_type=output_type)
        all_seeds = [s for s in seed_list for _ in sweep]
        all_strengths = [s for _ in seed_list for s in sweep]
        if not return_dict:
            return (images, out_latents.cpu(), all_seeds, all_strengths)
        return GANPipelineOutput(images=images, latents=out_latents.cpu(), seeds=all_seeds, strengths=all_strengths)

    def direction_grid(
        self,
        directions: Directions,
        indices: Sequence[int] | None = None,
        seed: int = 0,
        strengths: Sequence[float] | None = None,
        num_steps: int = 5,
        **call_kwargs: Any,
    ) -> PIL.Image.Image:
        """One row per direction, one column per strength, for one seed (or one given latent): a preview grid.

        Args:
            directions: The directions.
            indices: Which directions (default: all).
            seed: The seed of the image (ignored when `latents` is given in `call_kwargs`).
            strengths: The columns (default: `num_steps` strengths over ``directions.strength_range``).
            num_steps: Columns when `strengths` is not given.
            **call_kwargs: Passed to :meth:`__call__` (``truncation_psi``, ``edit_strengths``, ``latents`` ...).

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
        >>> grid = pipe.direction_grid(pipe.factorize(num_directions=3), num_steps=5)
        >>> grid.size[0] > grid.size[1]
        True
        """
        if indices is None:
            indices = range(len(directions))
        if strengths is None:
            strengths = _steps(directions, num_steps)
        if call_kwargs.get("latents") is None:
            call_kwargs["seeds"] = [seed]
        rows: list[PIL.Image.Image] = []
        for i in indices:
            rows += self(directions=directions, index=int(i), strengths=strengths, **call_kwargs).images
        return make_grid(rows, nrow=len(strengths))

    def walk_frames(
        self,
        directions: Directions,
        indices: Sequence[int] | int = 0,
        num_frames: int = 16,
        **call_kwargs: Any,
    ) -> list[PIL.Image.Image]:
        """Frames of a walk over ``directions.strength_range``: frame ``f`` shows every image at step ``f``.

        Each frame is a row of tiles, for each direction of `indices` every image (seeds, or given latents)
        moved to the frame's strength along it, other directions held at ``edit_strengths``.

        Args:
            directions: The directions.
            indices: The direction(s) walked; several give one tile per direction (as ``sefa demo`` does).
            num_frames: How many frames (2 to 240).
            **call_kwargs: Passed to :meth:`__call__` (``seeds``, ``latents``, ``truncation_psi`` ...).

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
        >>> frames = pipe.walk_frames(pipe.factorize(num_directions=3), indices=0, seeds=[0, 1], num_frames=4)
        >>> len(frames), frames[0].size
        (4, (134, 68))
        """
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or not 2 <= num_frames <= MAX_FRAMES:
            raise ValueError(f"`num_frames` must be an int in [2, {MAX_FRAMES}], got {num_frames!r}.")
        indices = [indices] if isinstance(indices, int | np.integer) else list(indices)
        if not indices:
            raise ValueError("`indices` must name at least one direction.")
        steps = _steps(directions, num_frames)
        tiles: list[list[PIL.Image.Image]] = [[] for _ in steps]
        for i in indices:
            images = self(directions=directions, index=int(i), strengths=steps, **call_kwargs).images
            for n in range(len(images) // len(steps)):  # seed-major: image n at every step
                for f in range(len(steps)):
                    tiles[f].append(images[n * len(steps) + f])
        return [row[0] if len(row) == 1 else make_grid(row, nrow=len(row)) for row in tiles]


#: The most frames :meth:`GANPipeline.walk_frames` renders.
MAX_FRAMES = 240
#: The most strengths one call sweeps (each is one image per latent).
MAX_STRENGTHS = 1024


def _steps(directions: Directions, num: int) -> list[float]:
    lo, hi = directions.strength_range
    return np.linspace(lo, hi, int(num)).tolist()


def _finite_list(values: Sequence[float | None], what: str) -> list[float]:
    out = [0.0 if v is None else float(v) for v in values]
    if any(not math.isfinite(v) for v in out):
        raise ValueError(f"`{what}` must be finite numbers, got {out}.")
    return out


def _sweep(
    strengths: Sequence[float] | float | None, edit_strengths: Sequence[float | None] | None, index: int
) -> list[float]:
    """The strengths along direction `index`: `strengths`, or by default its entry of `edit_strengths` (else 0)."""
    if strengths is None:
        held = list(edit_strengths or [])
        return [float(held[index] or 0.0) if isinstance(index, int) and 0 <= index < len(held) else 0.0]
    values = [float(s) for s in ([strengths] if isinstance(strengths, int | float) else strengths)]
    if len(values) > MAX_STRENGTHS:
        raise ValueError(f"`strengths` holds {len(values)} values; at most {MAX_STRENGTHS} per call.")
    if not values or any(not math.isfinite(s) for s in values):
        raise ValueError(f"`strengths` must be a non-empty list of finite numbers, got {values}.")
    return values
