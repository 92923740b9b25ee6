"""patchify / unpatchify against F.unfold and a Conv2d patch embedding."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vclib.transformer import patchify, unpatchify


@pytest.mark.parametrize("shape,patch", [((2, 3, 32, 48), 8), ((1, 1, 28, 28), 7), ((3, 5, 4, 4), 4), ((1, 2, 6, 9), 3),
                                         ((2, 1, 5, 5), 1)])
def test_patchify_equals_unfold_and_inverts(shape, patch):
    images = torch.randn(*shape)
    patches = patchify(images, patch)
    batch, channels, height, width = shape
    assert patches.shape == (batch, (height // patch) * (width // patch), channels * patch * patch)
    assert torch.equal(patches, F.unfold(images, patch, stride=patch).transpose(1, 2))
    assert torch.equal(unpatchify(patches, patch, (height, width)), images)


def test_patchify_gradient_is_a_permutation():
    images = torch.randn(2, 3, 8, 8, requires_grad=True)
    upstream = torch.randn(2, 4, 48)
    (grad,) = torch.autograd.grad(patchify(images, 4), images, upstream)
    assert torch.equal(grad, unpatchify(upstream, 4, 8))


def test_linear_patch_embedding_equals_strided_conv():
    images = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    conv = nn.Conv2d(3, 24, kernel_size=8, stride=8).double()
    tokens_conv = conv(images).flatten(2).transpose(1, 2)  # (B, N, E)
    linear = nn.Linear(3 * 8 * 8, 24).double()
    with torch.no_grad():
        linear.weight.copy_(conv.weight.flatten(1))
        linear.bias.copy_(conv.bias)
    torch.testing.assert_close(linear(patchify(images, 8)), tokens_conv)


def test_patchify_bad_input():
    with pytest.raises(ValueError, match="patch_size=5 must divide the image size, got height=32, width=32"):
        patchify(torch.zeros(1, 3, 32, 32), 5)
    with pytest.raises(ValueError, match="images must have 4 dimensions"):
        patchify(torch.zeros(3, 32, 32), 8)
    with pytest.raises(ValueError, match="patch_size must be an int >= 1"):
        patchify(torch.zeros(1, 3, 32, 32), 0)
    with pytest.raises(ValueError, match="patches must hold 16 patches"):
        unpatchify(torch.zeros(1, 15, 48), 4, 16)
    with pytest.raises(ValueError, match="last dimension"):
        unpatchify(torch.zeros(1, 16, 50), 4, 16)
