"""The latent discovery reconstructor: output shapes and input checks."""

from __future__ import annotations

import pytest
import torch

from sefa_plugin.training.reconstructor import Reconstructor


def test_reconstructor_shapes_and_input_checks():
    r = Reconstructor(num_directions=6, img_channels=3, img_resolution=16, base_channels=8, max_channels=16)
    logits, shift = r(torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16))
    assert logits.shape == (4, 6) and shift.shape == (4,)
    assert r.features[0].in_channels == 6  # original and shifted concatenated on channels
    with pytest.raises(ValueError, match="`shifted`"):
        r(torch.randn(4, 3, 16, 16), torch.randn(4, 3, 8, 8))
    with pytest.raises(ValueError, match="`num_directions`"):
        Reconstructor(num_directions=0)
