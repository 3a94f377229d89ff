"""Registry: names, option checking, seeding, user errors."""

import pytest
import torch
from torch import nn

from sfp.errors import UserError
from sfp.models import available, build, options, registry


def test_all_grid_backbones_are_registered_in_sorted_order():
    names = available()
    assert {"convlstm", "fno", "performer", "resnet", "simvp", "unet"} <= set(names)
    assert names == sorted(names)


def test_unknown_name_lists_the_choices():
    with pytest.raises(UserError, match="unknown backbone 'transformer'; known: advection, convlstm, .*simvp, unet"):
        build("transformer", in_frames=2, out_frames=2, channels=1)


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(UserError, match=r"'unet' got unknown option\(s\) dropout, heads; accepted: depth, width"):
        build("unet", in_frames=2, out_frames=2, channels=1, heads=4, dropout=0.1)


def test_options_are_the_constructor_defaults():
    assert options("fno") == {"modes": 12, "width": 32, "layers": 4, "projection": 128}


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        (dict(in_frames=0, out_frames=2, channels=1), "in_frames"),
        (dict(in_frames=2, out_frames=2, channels=-1), "channels"),
        (dict(in_frames=2, out_frames=2.5, channels=1), "out_frames"),
        (dict(in_frames=2, out_frames=2, channels=1, width=0), "width"),
    ],
)
def test_sizes_must_be_positive_integers(kwargs, bad):
    with pytest.raises(UserError, match=f"{bad} must be a positive integer"):
        build("resnet", **kwargs)


def test_simvp_mlp_ratio_must_be_positive():
    with pytest.raises(UserError, match="mlp_ratio must be positive, got 0"):
        build("simvp", in_frames=2, out_frames=2, channels=1, mlp_ratio=0)


def test_seeded_build_leaves_the_global_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build("resnet", in_frames=2, out_frames=2, channels=1, seed=123)
    assert torch.equal(torch.rand(3), expected)


def test_register_adds_a_buildable_name_once(monkeypatch):
    monkeypatch.setattr(registry.BACKBONES, "_items", dict(registry.BACKBONES.items()))

    @registry.register("identity_last")
    class LastFrame(nn.Module):
        def __init__(self, *, in_frames, out_frames, channels, scale=1.0):
            super().__init__()
            self.out_frames, self.scale = out_frames, scale

        def forward(self, x):
            return self.scale * x[:, -1:].repeat(1, self.out_frames, 1, 1, 1)

    assert "identity_last" in available()
    model = build("identity_last", in_frames=2, out_frames=3, channels=1, scale=2.0)
    x = torch.arange(8.0).view(1, 2, 1, 2, 2)
    assert torch.equal(model(x), 2.0 * x[:, 1:].repeat(1, 3, 1, 1, 1))
    with pytest.raises(ValueError, match="already registered"):
        registry.register("identity_last")(LastFrame)
