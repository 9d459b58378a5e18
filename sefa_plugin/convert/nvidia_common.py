"""What NVIDIA's StyleGAN2 and StyleGAN3 pickles share: reading the mapping network's record."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..models.limits import check_config_int, check_config_number
from .safe_unpickler import PersistentRecord


def _attr(record: PersistentRecord, name: str, default: Any = None) -> Any:
    return record.attributes.get(name, default)


def _require(value: Any, name: str) -> Any:
    if value is None:
        raise ValueError(f"The NVIDIA generator record does not say its `{name}` (init_kwargs or attributes).")
    return value


def nvidia_mapping_config(mapping: PersistentRecord, mapping_kw: Mapping[str, Any]) -> dict[str, Any]:
    """``mapping_layers``, ``mapping_lr_multiplier`` and ``w_avg_beta`` of an NVIDIA ``MappingNetwork`` record.

    The same network in StyleGAN2 and StyleGAN3 pickles: the recorded attributes win over `mapping_kw`
    (the generator's ``mapping_kwargs``), which win over NVIDIA's defaults.

    Raises:
        ValueError: The ``fc`` layers are not ``fc0 … fc{n-1}``, disagree with ``num_layers``, or use an
            activation other than leaky ReLU.
    """
    fc_names = sorted((n for n in mapping.modules if re.fullmatch(r"fc\d+", n)), key=lambda n: int(n[2:]))
    if not fc_names or fc_names != [f"fc{i}" for i in range(len(fc_names))]:
        raise ValueError(f"Unexpected mapping layers {fc_names} in the NVIDIA generator.")
    check_config_int("mapping_layers", len(fc_names))
    declared = _attr(mapping, "num_layers", mapping_kw.get("num_layers", len(fc_names)))
    if check_config_int("mapping_layers", declared) != len(fc_names):
        raise ValueError(f"mapping.num_layers says {declared}, but the record has {len(fc_names)} fc layers.")
    for name in fc_names:
        activation = _attr(mapping.get(name), "activation", mapping_kw.get("activation", "lrelu"))
        if activation != "lrelu":
            raise ValueError(f"mapping.{name} uses activation {activation!r}; only 'lrelu' is supported.")
    w_avg_beta = _attr(mapping, "w_avg_beta", mapping_kw.get("w_avg_beta", 0.998))
    lr_multiplier = _attr(mapping.get("fc0"), "bias_gain", mapping_kw.get("lr_multiplier", 0.01))
    return dict(
        mapping_layers=len(fc_names),
        mapping_lr_multiplier=check_config_number("mapping_lr_multiplier", lr_multiplier, 0, open_low=True),
        w_avg_beta=0.998 if w_avg_beta is None else check_config_number("w_avg_beta", w_avg_beta, 0, 1),
    )
