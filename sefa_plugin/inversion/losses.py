"""The reconstruction loss of an inversion: pixel MSE at several scales plus an optional perceptual term.

The loss is computed per image (``[N]``), so a batch optimises each image exactly as it would alone (Adam's
statistics are per element): batching changes speed, not results.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .perceptual import PerceptualTerm


def multiscale_mse(images: torch.Tensor, targets: torch.Tensor, num_scales: int = 3) -> torch.Tensor:
    """Mean squared error per image ``[N]``, averaged over `num_scales` 2× average-pooled copies.

    Scale 0 is full resolution; each further scale halves the side (stopping at 4 px). Coarse scales give the
    optimisation a wider basin (a misplaced object overlaps its target sooner when both are blurred).

    Example:

    >>> import torch
    >>> a, b = torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16)
    >>> multiscale_mse(a, b, num_scales=3).tolist()
    [1.0]
    """
    if num_scales < 1:
        raise ValueError(f"`num_scales` must be ≥ 1, got {num_scales}.")
    total, used = 0.0, 0
    x, y = images, targets
    for k in range(num_scales):
        total = total + (x - y).square().reshape(x.shape[0], -1).mean(dim=1)
        used += 1
        if k + 1 == num_scales or x.shape[-1] // 2 < 4:
            break
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return total / used  # type: ignore[return-value]


class ReconstructionLoss:
    """``mse_weight · multiscale_mse + perceptual_weight · perceptual distance``, per image.

    Target features of the perceptual term are computed once, in the constructor.

    Args:
        targets: ``[N, C, R, R]`` in [-1, 1].
        perceptual: A :class:`~sefa_plugin.inversion.perceptual.PerceptualTerm`, or None.
        mse_weight: Weight of the pixel term.
        perceptual_weight: Weight of the perceptual term.
        num_scales: Scales of the pixel term.
    """

    def __init__(
        self,
        targets: torch.Tensor,
        perceptual: PerceptualTerm | None = None,
        mse_weight: float = 1.0,
        perceptual_weight: float = 0.1,
        num_scales: int = 3,
    ) -> None:
        self.targets = targets
        self.perceptual = perceptual if perceptual_weight > 0 else None
        self.mse_weight, self.perceptual_weight, self.num_scales = mse_weight, perceptual_weight, num_scales
        self.target_features: list[torch.Tensor] = []
        if self.perceptual is not None:
            with torch.no_grad():
                self.target_features = [f.detach() for f in self.perceptual.features(targets)]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        loss = self.mse_weight * multiscale_mse(images, self.targets, self.num_scales)
        if self.perceptual is not None:
            loss = loss + self.perceptual_weight * self.perceptual.distance_to(images, self.target_features)
        return loss
