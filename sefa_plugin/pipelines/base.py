"""`GANPipeline`: what every discovery pipeline shares — loading, saving and sharing a generator; rendering
(:mod:`.rendering`) and inversion (:mod:`sefa_plugin.inversion`) come with it.

A GAN pipeline is a ``DiffusionPipeline`` with one component, ``generator`` (any model implementing
:class:`~sefa_plugin.models.interface.EditableGenerator`). It loads from a local folder or a Hub id
(downloading with ``snapshot_download`` first, since diffusers refuses third-party components for
remote ids), and its ``__call__`` renders every (seed × strength) combination along one direction.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import torch
from diffusers import DiffusionPipeline
from tqdm.auto import tqdm

# Diffusers >= 0.42.1 no longer imports the library named in model_index.json: import every module
# that defines a component class so that loading can find them.
from ..hub import atomic_folder, push_folder, resolve_folder, weights_sha256
from ..models import biggan, dcgan, lightweight_gan, pggan, sngan_resnet, stylegan, stylegan2, stylegan3  # noqa: F401  (component classes for from_pretrained)
from ..models.interface import EditableGenerator
from ..utils.allocator import set_cpu_buffer_reuse
from ..utils.files import MAX_CONFIG_BYTES
from ..utils.weights import check_loaded_weights
from .rendering import OUTPUT_TYPES, GANPipelineOutput, RenderingMixin  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)


class GANPipeline(RenderingMixin, DiffusionPipeline):
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

    def progress_bar(self, iterable=None, total=None, desc: str | None = None):
        """diffusers' progress bar, named `desc` unless ``set_progress_bar_config(desc=...)`` names it.

        Example:

        >>> import io
        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
        >>> pipe.set_progress_bar_config(file=io.StringIO())
        >>> pipe.progress_bar(range(3), desc="render").desc
        'render'
        """
        config = getattr(self, "_progress_bar_config", None) or {}
        if not isinstance(config, dict):
            raise ValueError(f"`self._progress_bar_config` should be of type `dict`, but is {type(config)}.")
        config = dict(config)
        if desc:
            config.setdefault("desc", desc)
        if "disable" not in config:  # as diffusers: only the first process of a distributed run shows bars
            dist = torch.distributed
            config["disable"] = dist.is_available() and dist.is_initialized() and dist.get_rank() != 0
        if iterable is not None:
            return tqdm(iterable, **config)
        if total is not None:
            return tqdm(total=total, **config)
        raise ValueError("Either `total` or `iterable` has to be defined.")

    def named_progress(self, desc: str):
        """This pipeline's :meth:`progress_bar` named `desc`, for code that takes a ``tqdm``-like callable."""
        return functools.partial(self.progress_bar, desc=desc)

    @staticmethod
    def enable_cpu_buffer_reuse(enable: bool = True) -> bool:
        """Keep large freed CPU buffers in the process between layers and renders (glibc only; process-wide).

        Large renders on CPU (1024² StyleGAN2) free and re-allocate activation buffers of 30–140 MB per layer;
        by default each one is faulted in from the OS again, about a fifth of a 1024² render on 2 cores
        (``benchmarks/RESULTS.md``). With this on, the process keeps that memory (its resident size stays at
        its peak) until it is turned off with ``enable=False``. The ``sefa`` command line turns it on. Returns
        whether the allocator was tuned (False where the C library is not glibc); images are unchanged.

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
        >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
        >>> pipe.enable_cpu_buffer_reuse() in (True, False)
        True
        """
        return set_cpu_buffer_reuse(enable)

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
        allow_local: bool = True,
        **kwargs: Any,
    ) -> GANPipeline:
        """Load from a local pipeline folder or a Hub repo id.

        Args:
            pretrained_model_name_or_path: Folder with ``model_index.json`` + ``generator/``, or a Hub id.
            revision: Branch, tag or commit on the Hub.
            cache_dir: Hub cache folder.
            token: Hub token.
            local_files_only: Only use the local cache (default: the ``HF_HUB_OFFLINE`` setting).
            allow_local: Accept local folders; False takes the name as a Hub id only (hosted apps).
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
            allow_local=allow_local,
        )
        if not (folder / "model_index.json").is_file():
            from ..convert import convert_folder  # a known third-party folder (HugGAN DCGAN) converts in memory

            if (converted := convert_folder(folder)) is not None:
                pipe = cls(generator=converted[0])
                pipe.source = {**source, **converted[1]}
                return pipe
            raise ValueError(
                f"`pretrained_model_name_or_path` {str(pretrained_model_name_or_path)!r} is not a GAN pipeline "
                f"folder: it has no model_index.json. Convert checkpoints with `sefa convert` first."
            )
        if not (folder / "generator").is_dir():
            raise ValueError(
                f"`pretrained_model_name_or_path` {str(pretrained_model_name_or_path)!r} has no `generator/` "
                f"component: it is not a sefa_plugin GAN pipeline."
            )
        for config in (folder / "model_index.json", folder / "generator" / "config.json"):
            if config.is_file() and config.stat().st_size > MAX_CONFIG_BYTES:
                raise ValueError(
                    f"`pretrained_model_name_or_path` {str(pretrained_model_name_or_path)!r}: "
                    f"{config.relative_to(folder)} is larger than {MAX_CONFIG_BYTES:,} bytes; it is not a GAN config."
                )
        # Run-time weights are safetensors only: never let diffusers fall back to a pickled .bin file.
        if kwargs.setdefault("use_safetensors", True) is not True:
            raise ValueError("`use_safetensors` must be True: sefa_plugin loads weights from safetensors only.")
        try:
            pipe = super().from_pretrained(str(folder), **kwargs)
        except (OSError, ValueError, RuntimeError) as err:
            raise OSError(
                f"`pretrained_model_name_or_path` {str(pretrained_model_name_or_path)!r}: the generator cannot be "
                f"loaded; its config or weights are missing or corrupt ({err})"
            ) from err
        check_loaded_weights(pipe.generator, f"`pretrained_model_name_or_path` {str(pretrained_model_name_or_path)!r}")
        pipe.source = source
        # Fingerprint the weights once, as loaded (the hash of every tensor is the largest part of a first
        # `provenance()`); it is cached until any weight changes, so factorizing and saving reuse it.
        weights_sha256(pipe.generator)
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

    @classmethod
    def from_pipe(cls, pipeline: GANPipeline, **kwargs: Any) -> GANPipeline:
        """A pipeline of this class around another GAN pipeline's generator: shared, not copied or reloaded.

        Like diffusers' ``from_pipe``, but for the `generator` component, whose type is any
        :class:`~sefa_plugin.models.interface.EditableGenerator`; the provenance (:attr:`source`) and the
        progress-bar settings come along.

        Args:
            pipeline: The pipeline whose generator to use.
            **kwargs: ``generator=`` to use another generator instead.

        Example:

        >>> from sefa_plugin import DEFAULT_MODEL, GANSpacePipeline, SefaPipeline
        >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
        >>> GANSpacePipeline.from_pipe(pipe).generator is pipe.generator
        True
        """
        if not isinstance(pipeline, GANPipeline):
            raise TypeError(f"`pipeline` must be a GANPipeline, got {type(pipeline).__name__}.")
        generator = kwargs.pop("generator", pipeline.generator)
        if kwargs:
            raise TypeError(f"from_pipe() got unexpected keyword arguments {sorted(kwargs)}; only `generator`.")
        new = cls(generator=generator)
        new.source = dict(pipeline.source) if generator is pipeline.generator else {}
        new.set_progress_bar_config(**getattr(pipeline, "_progress_bar_config", {}))
        return new

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
