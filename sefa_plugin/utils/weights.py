"""Checks on weights just loaded from disk: every tensor present and finite, before anything uses them."""

from __future__ import annotations

import torch

__all__ = ["check_loaded_weights"]


def check_loaded_weights(module: torch.nn.Module, source: str) -> None:
    """Refuse a module whose loaded state is incomplete or holds NaN/infinite values.

    diffusers' low-memory loading leaves a weight that the file lacks on the ``meta`` device, where it
    fails only on first use; a NaN in a file would silently turn every image black. Both are refused here.

    Args:
        module: The freshly loaded module.
        source: How errors name the file or folder (e.g. ``"`pretrained_model_name_or_path` 'my-gan'"``).

    Raises:
        OSError: naming `source` and the first offending tensors.

    Example:

    >>> check_loaded_weights(torch.nn.Linear(2, 2), "`model`")
    """
    state = module.state_dict()
    missing = [name for name, t in state.items() if t.is_meta]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise OSError(f"{source}: the weights file lacks {len(missing)} tensor(s) the model needs: {shown}.")
    bad = [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise OSError(f"{source}: the weights hold NaN or infinite values in {shown}.")
