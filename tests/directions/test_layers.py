"""parse_layers: every accepted spelling, and clear errors for everything else."""

from __future__ import annotations

import numpy as np
import pytest

from sefa_plugin.directions import parse_layers
from sefa_plugin.models import PGGANGenerator, StyleGAN2Generator

GROUPS = {"coarse": [0, 1, 2], "middle": [3, 4], "fine": [5, 6, 7]}


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("all", list(range(8))),
        (" all ", list(range(8))),
        ("0-3", [0, 1, 2, 3]),
        ("0-1,4", [0, 1, 4]),
        (" 2 ", [2]),
        ("3 - 5 , 1", [1, 3, 4, 5]),
        ("4,4,0-1,1", [0, 1, 4]),
        ("7-7", [7]),
        (5, [5]),
        (np.int64(2), [2]),
        ([3, 1, 3], [1, 3]),
        ((0, 7), [0, 7]),
        (range(2, 5), [2, 3, 4]),
        ("coarse", [0, 1, 2]),
        ("middle", [3, 4]),
        ("fine", [5, 6, 7]),
    ],
)
def test_accepted_specs(spec, expected):
    assert parse_layers(spec, 8, GROUPS) == expected


@pytest.mark.parametrize(
    "spec,reason",
    [
        ("3-1", "reversed range"),
        ("0-8", "out of range"),
        (8, "out of range"),
        (-1, "out of range"),
        ([0, 9], "out of range"),
        ("-1", "could not be parsed"),
        ("", "could not be parsed"),
        ("0,,1", "could not be parsed"),
        ("0-1-2", "could not be parsed"),
        ("1.5", "could not be parsed"),
        ("sideways", "could not be parsed"),
        ("ALL", "could not be parsed"),
        ([], "selects no layer"),
        (True, "unsupported type"),
        (1.0, "unsupported type"),
        (None, "unsupported type"),
        ({1, 2}, "unsupported type"),
        ([1, True], "non-integer"),
        ([1, 2.0], "non-integer"),
    ],
)
def test_rejected_specs(spec, reason):
    with pytest.raises(ValueError, match="`layers`") as err:
        parse_layers(spec, 8, GROUPS)
    message = str(err.value)
    assert reason in message
    # The message says what is allowed, with the valid index range.
    assert "'all'" in message and "'0-3'" in message and "coarse, middle, fine" in message
    assert "[0, 7]" in message


def test_group_names_need_groups_and_non_empty_groups():
    with pytest.raises(ValueError, match="no layer groups"):
        parse_layers("coarse", 8)
    with pytest.raises(ValueError, match="selects no layer"):
        parse_layers("middle", 8, {"coarse": [0], "middle": [], "fine": []})


def test_bad_num_layers():
    for bad in (0, -3, True, 2.0):
        with pytest.raises(ValueError, match="`num_layers`"):
            parse_layers("all", bad)


def test_generator_groups():
    g = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=64, channel_base=256, channel_max=8, mapping_layers=1)
    groups = g.layer_groups()
    assert parse_layers("coarse", g.num_ws, groups) == [0, 1, 2]  # 4², 8², 8²
    assert parse_layers("fine", g.num_ws, groups) == [7, 8, 9]  # 64² and the final ToRGB
    p = PGGANGenerator(z_dim=4, img_resolution=8, channel_base=32, channel_max=4)
    assert parse_layers("all", p.num_ws, p.layer_groups()) == [0]
    assert parse_layers("coarse", p.num_ws, p.layer_groups()) == [0]
    with pytest.raises(ValueError, match="selects no layer"):
        parse_layers("fine", p.num_ws, p.layer_groups())
