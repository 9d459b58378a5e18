"""`GANPipeline`: what every discovery pipeline shares — loading a generator, rendering edits.

A GAN pipeline is a ``DiffusionPipeline`` with one component, ``generator`` (any model implementing
:class:`~sefa_plugin.models.interface.EditableGenerator`). It loads from a local folder or a Hub id
(downloading with ``snapshot_download`` first, since diffusers refuses third-party components for
remote ids), and its ``__call__`` renders every (seed × strength) combination along one direction.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

# Diffusers >= 0.42.1 no longer imports the library named in model_index.json: import every module
# that defines a component class so that loading can find them.
from ..directions.container import Directions
from ..hub import atomic_folder, push_folder, resolve_folder, weights_sha256
from ..models import biggan, dcgan, pggan, stylegan, stylegan2, stylegan3  # noqa: F401  (component classes for from_pretrained)
from ..models.interface import EditableGenerator
from ..utils.images import make_grid, to_pil

logger = logging.getLogger(__name__)

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


class GANPipeline(DiffusionPipeline):
    """Base pipeline: a pretrained generator plus edits along latent directions.

    Args:
        generator: An :class:`~sefa_plugin.models.interface.EditableGenerator` model.
    """

    model_cpu_offload_seq = "generator"

    def __init__(self, generator: EditableGenerator) -> None:
        super().__init__()
        if not isinstance(generator, EditableGenerator):
            raise TypeError(
                f"`generator` must implement EditableGenerator (StyleGAN2Generator, PGGANGenerator, ...), "
                f"got {type(generator).__name__}."
            )
        self.register_modules(generator=generator)
        self.source: dict[str, Any] = {}

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool | None = None,
        **kwargs: Any,
    ) -> GANPipeline:
        """Load from a local pipeline folder or a Hub repo id.

        Args:
            pretrained_model_name_or_path: Folder with ``model_index.json`` + ``generator/``, or a Hub id.
            revision: Branch, tag or commit on the Hub.
            cache_dir: Hub cache folder.
            token: Hub token.
            local_files_only: Only use the local cache (default: the ``HF_HUB_OFFLINE`` setting).
            **kwargs: Passed to ``DiffusionPipeline.from_pretrained`` (e.g. ``dtype``).

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
        >>> pipe.generator.config.img_resolution
        64
        """
        folder, source = resolve_folder(
            pretrained_model_name_or_path,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
        )
        if not (folder / "model_index.json").is_file():
            raise ValueError(
                f"`pretrained_model_name_or_path` {str(pretrained_model_name_or_path)!r} is not a GAN pipeline "
                f"folder: it has no model_index.json. Convert checkpoints with `sefa convert` first."
            )
        if not (folder / "generator").is_dir():
            raise ValueError(
                f"`pretrained_model_name_or_path` {str(pretrained_model_name_or_path)!r} has no `generator/` "
                f"component: it is not a sefa_plugin GAN pipeline."
            )
        # Run-time weights are safetensors only: never let diffusers fall back to a pickled .bin file.
        if kwargs.setdefault("use_safetensors", True) is not True:
            raise ValueError("`use_safetensors` must be True: sefa_plugin loads weights from safetensors only.")
        try:
            pipe = super().from_pretrained(str(folder), **kwargs)
        except (OSError, ValueError, RuntimeError) as err:
            raise OSError(
                f"`pretrained_model_name_or_path` {str(pretrained_model_name_or_path)!r}: the generator cannot be "
                f"loaded; its weights are missing or corrupt ({err})"
            ) from err
        pipe.source = source
        return pipe

    @classmethod
    def from_checkpoint(cls, src: str | os.PathLike, format: str | None = None) -> GANPipeline:
        """Convert a third-party checkpoint (never executing pickled code) into a pipeline.

        Args:
            src: Checkpoint file (an NVIDIA ``.pkl``, a rosinality ``.pt``, a genforce ``.pth`` ...) or a huggan
                checkpoint folder (``pytorch_model.bin`` + ``config.json``).
            format: One of :data:`sefa_plugin.convert.FORMATS`, or None to detect it.

        The source file's name, SHA-256, format and license note are kept in :attr:`source` and written to
        the model card by :meth:`save_pretrained` / :meth:`push_to_hub`.

        Example:

        >>> pipe = SefaPipeline.from_checkpoint("network-snapshot-025000.pkl")  # doctest: +SKIP
        >>> pipe.save_pretrained("my-stylegan2")  # doctest: +SKIP
        """
        from ..convert import LICENSE_NOTES, checkpoint_weights_file, convert_checkpoint, detect_format
        from ..hub import file_sha256

        weights = checkpoint_weights_file(src)  # for a folder, its weights file is fingerprinted
        fmt = format or detect_format(src)
        pipe = cls(generator=convert_checkpoint(src, format=fmt))
        pipe.source = {
            "source_file": os.path.relpath(weights, os.path.dirname(os.path.abspath(src))),
            "source_sha256": file_sha256(weights),
            "source_format": fmt,
            "license_note": LICENSE_NOTES[fmt],
        }
        return pipe

    def provenance(self) -> dict[str, Any]:
        """Where the generator came from and its weights fingerprint (stored in direction files and cards)."""
        keys = ("repo_id", "revision", "source_file", "source_sha256", "source_format", "license_note")
        info = {k: v for k, v in self.source.items() if k in keys}
        info["class_name"] = type(self.generator).__name__
        info["num_ws"] = self.generator.num_ws
        info["weights_sha256"] = weights_sha256(self.generator)
        return info

    # ------------------------------------------------------------------ saving and sharing
    def model_card(self, repo_id: str | None = None, preview: str | None = None):  # -> ModelCard
        """The model card of this pipeline folder (``hub_cards/model_card.md``; ``library_name`` set)."""
        from ..cards import render_card

        g = self.generator
        cfg = g.config
        return render_card(
            "model_card.md",
            base_model=self.source.get("repo_id"),
            tags=["gan", "sefa-plugin", type(g).__name__.lower().replace("generator", "")],
            title=f"{type(g).__name__} ({cfg.img_resolution}×{cfg.img_resolution})",
            class_name=type(g).__name__,
            img_resolution=cfg.img_resolution,
            latent_space=g.latent_space,
            latent_dim=g.latent_dim,
            num_ws=g.num_ws,
            num_classes=int(getattr(cfg, "c_dim", 0) or 0),
            description="",
            preview=preview,
            provenance=self.provenance(),
            repo_id=repo_id,
        )

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        safe_serialization: bool = True,
        push_to_hub: bool = False,
        **kwargs: Any,
    ) -> None:
        """Write ``model_index.json``, ``generator/`` (safetensors) and a ``README.md`` card, atomically.

        Args:
            save_directory: Target folder.
            safe_serialization: Must be True: run-time weights are safetensors only.
            push_to_hub: Also push to ``repo_id`` (keyword) with :meth:`push_to_hub`.
        """
        if not safe_serialization:
            raise ValueError("`safe_serialization` must be True: sefa_plugin stores weights as safetensors only.")
        repo_id = kwargs.pop("repo_id", None)
        push_kwargs = {k: kwargs.pop(k) for k in ("token", "private", "commit_message") if k in kwargs}
        with atomic_folder(save_directory) as tmp:
            self._write(tmp, repo_id=repo_id, **kwargs)
        if push_to_hub:
            self.push_to_hub(repo_id or os.path.basename(os.path.abspath(save_directory)), **push_kwargs)

    def _write(self, folder: os.PathLike, repo_id: str | None = None, **kwargs: Any) -> None:
        super().save_pretrained(folder, safe_serialization=True, **kwargs)
        self.model_card(repo_id=repo_id).save(os.path.join(folder, "README.md"))

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool | None = None,
        revision: str | None = None,
        commit_message: str = "Upload GAN pipeline with sefa_plugin",
        create_pr: bool = False,
    ) -> str:
        """Upload the pipeline folder to a Hub model repo in one commit; a failed push changes nothing.

        Example:

        >>> pipe.push_to_hub("someone/my-gan")  # doctest: +SKIP
        """
        return push_folder(
            lambda folder: self._write(folder, repo_id=repo_id),
            repo_id,
            token=token,
            private=private,
            revision=revision,
            commit_message=commit_message,
            create_pr=create_pr,
        )

    # ------------------------------------------------------------------ latents
    def _base_latents(
        self,
        seeds: Sequence[int] | None,
        num_images: int | None,
        generator: torch.Generator | None,
        truncation_psi: float,
        truncation_cutoff: int | None,
        class_label: int | None,
    ) -> tuple[torch.Tensor, list[int | None]]:
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
        latents = g.sample_latents(z, c=c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return latents, seed_list

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

    # ------------------------------------------------------------------ rendering
    @torch.no_grad()
    def __call__(
        self,
        seeds: Sequence[int] | int | None = None,
        num_images: int | None = None,
        generator: torch.Generator | None = None,
        directions: Directions | None = None,
        index: int = 0,
        strengths: Sequence[float] = (0.0,),
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
        """Render images, optionally moved along one direction at several strengths.

        Args:
            seeds: Integer seeds (NVIDIA-compatible ``z``); or use `num_images` with `generator`.
            num_images: Number of random images when no seeds are given.
            generator: ``torch.Generator`` for random latents.
            directions: Directions to edit along (None: no edit).
            index: Which direction of `directions`.
            strengths: Strengths to render for every seed (0 is the unedited image).
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
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
        strengths = [float(s) for s in ([strengths] if isinstance(strengths, (int, float)) else strengths)]
        if not strengths or any(not math.isfinite(s) for s in strengths):
            raise ValueError(f"`strengths` must be a non-empty list of finite numbers, got {strengths}.")
        # 1. Base latents (after truncation).
        base, seed_list = self._base_latents(
            seeds, num_images, generator, truncation_psi, truncation_cutoff, class_label
        )
        # 2. Edit: every base latent at every strength, seed-major.
        edit_layers = None
        if directions is not None:
            if isinstance(layers, str):
                from ..directions.layers import parse_layers

                edit_layers = parse_layers(layers, self.generator.num_ws, self.generator.layer_groups())
            else:
                edit_layers = None if layers is None else [int(i) for i in layers]
            directions.check_compatible(self.generator, edit_layers)
            directions._check_index(index)
            edited = [directions.edit(base, index, s, layers=edit_layers, sigma_units=sigma_units) for s in strengths]
            latents = torch.stack(edited, dim=1).flatten(0, 1)  # [N * S, num_ws, D]
        else:
            if any(s != 0 for s in strengths):
                raise ValueError("`strengths` other than 0 need `directions`.")
            latents = base.repeat_interleave(len(strengths), dim=0)
        # 3. Synthesis in batches.
        chunks = []
        for start in self.progress_bar(range(0, latents.shape[0], batch_size)):
            chunks.append(self.generator.synthesize(latents[start : start + batch_size], noise_mode=noise_mode).cpu())
        images = torch.cat(chunks)
        # 4. Post-process.
        if output_type == "pil":
            out_images: Any = to_pil(images)
        elif output_type == "np":
            out_images = ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
        else:
            out_images = images
        all_seeds = [s for s in seed_list for _ in strengths]
        all_strengths = [s for _ in seed_list for s in strengths]
        if not return_dict:
            return (out_images, latents.cpu(), all_seeds, all_strengths)
        return GANPipelineOutput(images=out_images, latents=latents.cpu(), seeds=all_seeds, strengths=all_strengths)

    def direction_grid(
        self,
        directions: Directions,
        indices: Sequence[int] | None = None,
        seed: int = 0,
        strengths: Sequence[float] | None = None,
        num_steps: int = 5,
        **call_kwargs: Any,
    ) -> PIL.Image.Image:
        """One row per direction, one column per strength, for one seed: a preview grid.

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
            lo, hi = directions.strength_range
            strengths = np.linspace(lo, hi, num_steps).tolist()
        rows: list[PIL.Image.Image] = []
        for i in indices:
            rows += self(seeds=[seed], directions=directions, index=int(i), strengths=strengths, **call_kwargs).images
        return make_grid(rows, nrow=len(strengths))

    # ------------------------------------------------------------------ inversion
    def invert(
        self,
        images: Any,
        num_steps: int = 300,
        space: str | None = None,
        generator: torch.Generator | None = None,
        class_label: int | None = None,
        perceptual: str = "auto",
        **kwargs: Any,
    ):  # -> Inversion
        """Invert real images into the edit space, so that ``self(latents=inv.latents, directions=...)`` edits them.

        Args:
            images: Paths, PIL images, arrays or ``[C, H, W]`` tensors (one or a list); converted to the
                generator's channels, centre-cropped and resized to its resolution.
            num_steps: Optimisation steps.
            space: ``"w+"`` (default for the StyleGAN family) or ``"w"``; ``"z"`` for PGGAN/DCGAN/BigGAN.
            generator: ``torch.Generator`` for a reproducible result.
            class_label: Class of a conditional generator.
            perceptual: ``"auto"``, ``"lpips"``, ``"predictor"`` or ``"none"`` (see
                :func:`~sefa_plugin.inversion.perceptual.resolve_perceptual`).
            **kwargs: ``predictor``, ``vgg16_weights``, ``lpips_weights``, ``batch_size`` and any field of
                :class:`~sefa_plugin.inversion.projector.ProjectorSettings`.

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> from sefa_plugin.data import render_scenes
        >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
        >>> pipe.set_progress_bar_config(disable=True)
        >>> scene = render_scenes([0], seed=3).images
        >>> inv = pipe.invert(scene, num_steps=20, generator=torch.Generator().manual_seed(0))
        >>> tuple(inv.latents.shape), inv.perceptual
        ((1, 10, 128), 'predictor')
        """
        from ..inversion import invert

        return invert(
            self, images, num_steps=num_steps, space=space, generator=generator, class_label=class_label,
            perceptual=perceptual, **kwargs,
        )  # fmt: skip
