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


def test_channels_last_on_cpu_is_the_same_function():
    torch.manual_seed(0)
    r = Reconstructor(num_directions=4, img_channels=3, img_resolution=16, base_channels=8, max_channels=16)
    a, b = torch.randn(5, 3, 16, 16), torch.randn(5, 3, 16, 16)
    seen = []
    r.features.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    logits, shift = r(a, b)
    assert seen == [True]  # oneDNN's faster layout on CPU
    h = r.hidden(r.pool(r.features(torch.cat([a, b], dim=1).contiguous())))  # the NCHW reference
    torch.testing.assert_close(logits, r.direction_head(h), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(shift, r.shift_head(h).squeeze(1), rtol=1e-4, atol=1e-5)
