"""The part of :class:`~sefa_plugin.models.interface.EditableGenerator` shared by unconditional z-input generators.

A generator whose first layer reads ``z`` directly and that keeps no average latent (SN-GAN, lightweight GAN)
edits ``z`` itself: one editable vector (``num_ws == 1``) acting at the first 4×4 map, no class label, no
truncation. :class:`ZSpaceGenerator` implements those members once; a family adds ``latent_weights`` and
:meth:`~ZSpaceGenerator.render`.
"""

from __future__ import annotations

import torch

from .interface import EditableGenerator

NOISE_MODES = ("random", "const", "none")

#: Side of the first feature map.
INIT_RES = 4


class ZSpaceGenerator(EditableGenerator):
    """Mixin for unconditional generators edited in ``z`` (``latent_space == "z"``, ``num_ws == 1``).

    Subclasses (``ModelMixin, ConfigMixin`` with a ``z_dim`` config field) implement ``latent_weights`` and
    ``render(z, noise_mode)``, which maps ``z`` ``[N, z_dim]`` to images in [-1, 1]. List this mixin first
    among the bases, so that its ``forward`` comes before ``torch.nn.Module``'s in the method order.
    """

    latent_space = "z"

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Generate images ``[N, img_channels, img_resolution, img_resolution]`` in [-1, 1]."""
        latents = self.sample_latents(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesize(latents, noise_mode=noise_mode)

    @property
    def latent_dim(self) -> int:
        return int(self.config.z_dim)  # type: ignore[attr-defined]

    @property
    def num_ws(self) -> int:
        return 1

    def layer_resolutions(self) -> list[int]:
        return [INIT_RES]

    def sample_latents(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """``z`` itself as editable latents ``[N, 1, z_dim]``.

        The generator is unconditional, so `c` must be None; it keeps no average latent, so
        `truncation_psi` must be 1 (`truncation_cutoff` then has no effect and is ignored).
        """
        name = type(self).__name__
        if c is not None:
            raise ValueError(f"`c` was given but {name} is unconditional.")
        if truncation_psi != 1:
            raise ValueError(
                f"`truncation_psi` must be 1 for {name}: it edits z directly and has no average latent to "
                f"truncate towards; got {truncation_psi}."
            )
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"`z` must have shape [N, {self.latent_dim}], got {list(z.shape)}.")
        return z.to(self.device, torch.float32).unsqueeze(1)  # type: ignore[attr-defined]

    def synthesize(self, latents: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """Render latents ``[N, 1, z_dim]`` to images in [-1, 1] (checks both arguments, then :meth:`render`)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"`noise_mode` must be one of {NOISE_MODES}, got {noise_mode!r}.")
        if latents.ndim != 3 or latents.shape[1] != 1 or latents.shape[2] != self.latent_dim:
            raise ValueError(f"`latents` must have shape [N, 1, {self.latent_dim}], got {list(latents.shape)}.")
        return self.render(latents[:, 0].to(self.device, torch.float32), noise_mode)  # type: ignore[attr-defined]

    def render(self, z: torch.Tensor, noise_mode: str) -> torch.Tensor:
        """The family's forward pass from checked ``z`` ``[N, z_dim]`` (float32, on the model's device)."""
        raise NotImplementedError
