"""Plain/residual DepthNet and the parameter / MAC counters of vclib.basics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vclib.basics.complexity import count_macs, count_parameters, layer_macs
from vclib.basics.depth import DepthBlock, DepthNet, gradient_norms


def test_mac_counter_equals_a_hand_count_for_conv_and_linear():
    conv = nn.Conv2d(3, 5, kernel_size=(3, 2), stride=2, padding=1)  # (1, 3, 9, 8) -> (1, 5, 5, 5)
    assert count_macs(conv, (3, 9, 8)) == {"": 5 * 5 * 5 * 3 * 3 * 2}
    grouped = nn.Conv2d(4, 6, 3, groups=2)  # each output sees 4/2 input channels; (1, 4, 7, 7) -> (1, 6, 5, 5)
    assert count_macs(grouped, (4, 7, 7)) == {"": 6 * 5 * 5 * 2 * 3 * 3}
    linear = nn.Sequential(nn.Flatten(), nn.Linear(12, 7))
    assert count_macs(linear, (3, 4)) == {"1": 12 * 7}


def test_mac_counter_counts_every_call_and_leaves_the_model_as_it_was():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.fc(x))

    model = Twice().train()
    assert count_macs(model, (4,)) == {"fc": 2 * 16}
    assert model.training and not model.fc._forward_hooks
    assert layer_macs(nn.ReLU(), torch.zeros(3)) == 0


def test_mac_counter_matches_a_network_counted_by_hand():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 3))
    assert sum(count_macs(model, (1, 8, 8)).values()) == 2 * 8 * 8 * 9 + 32 * 3
    assert count_parameters(model) == (2 * 9 + 2) + (32 * 3 + 3)
    model[0].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 2 + 32 * 3 + 3


def test_mac_counter_rejects_a_bad_input_size():
    with pytest.raises(ValueError, match=r"input_size\[1\]"):
        count_macs(nn.Linear(2, 2), (2, 0))


@pytest.mark.parametrize("depth", [8, 14, 20])
@pytest.mark.parametrize("residual", [False, True])
def test_depth_net_has_depth_weighted_layers_and_the_right_output(depth, residual):
    model = DepthNet(depth, residual=residual, width=4, in_channels=3, num_classes=7)
    layers = model.main_path_layers()
    assert len(layers) == depth
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 1
    assert model(torch.rand(2, 3, 13, 11)).shape == (2, 7)


def test_residual_and_plain_nets_differ_only_by_the_projections():
    plain, residual = DepthNet(20, residual=False, width=4), DepthNet(20, residual=True, width=4)
    projections = (4 * 8 + 2 * 8) + (8 * 16 + 2 * 16)  # 1x1 conv weights and BN scale/shift, stages 2 and 3
    assert count_parameters(residual) - count_parameters(plain) == projections


def test_residual_block_with_zeroed_branch_is_the_identity_on_nonnegative_inputs():
    torch.manual_seed(0)
    block = DepthBlock(6, 6, residual=True).eval()
    nn.init.zeros_(block.bn2.weight)  # F(x) = BN(...) = 0 * (...) + 0
    x = torch.rand(2, 6, 5, 5)  # relu(0 + x) = x for x >= 0
    torch.testing.assert_close(block(x), x)
    plain = DepthBlock(6, 6, residual=False).eval()
    nn.init.zeros_(plain.bn2.weight)
    assert plain(x).abs().max() == 0  # the plain block has no path around it


def test_residual_net_with_zeroed_branches_reduces_to_stem_projections_and_head():
    torch.manual_seed(0)
    model = DepthNet(14, residual=True, width=4).eval()
    for block in model.blocks:
        nn.init.zeros_(block.bn2.weight)
    x = torch.rand(3, 1, 12, 12)
    features = model.stem(x)
    for block in model.blocks:
        features = torch.relu(block.shortcut(features))
    torch.testing.assert_close(model(x), model.head(features.mean(dim=(2, 3))))


def test_strided_block_halves_the_feature_map():
    block = DepthBlock(4, 8, stride=2, residual=True)
    assert block(torch.rand(1, 4, 7, 7)).shape == (1, 8, 4, 4)
    assert isinstance(block.shortcut, nn.Sequential)
    assert isinstance(DepthBlock(4, 8, stride=2, residual=False).shortcut, nn.Identity)


def test_gradient_norms_match_autograd_and_reach_every_layer():
    torch.manual_seed(0)
    model = DepthNet(8, residual=True, width=4)
    images, targets = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    norms = gradient_norms(model, images, targets)
    nn.functional.cross_entropy(model(images), targets).backward()
    expected = [layer.weight.grad.norm().item() for layer in model.main_path_layers()]
    assert norms == pytest.approx(expected, rel=1e-5)
    assert len(norms) == 8 and all(n > 0 for n in norms)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"depth": 10}, "depth"), ({"depth": 2}, "depth"), ({"width": 0}, "width"), ({"num_classes": 1}, "num_classes"),
])
def test_depth_net_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DepthNet(**kwargs)
