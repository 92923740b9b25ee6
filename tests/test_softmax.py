"""Softmax, log-softmax and cross-entropy against torch.nn.functional."""

import pytest
import torch
import torch.nn.functional as F

from vclib.basics import cross_entropy, log_softmax, softmax


@pytest.mark.exercise("vclib.basics.softmax.softmax")
@pytest.mark.parametrize("shape,dim", [((5, 7), -1), ((3, 4, 6), 1), ((1, 1), -1), ((2, 3, 4, 5), 0)])
def test_softmax_and_log_softmax_match_torch(shape, dim):
    logits = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(softmax(logits, dim), F.softmax(logits, dim))
    torch.testing.assert_close(log_softmax(logits, dim), F.log_softmax(logits, dim))
    upstream = torch.randn(shape, dtype=torch.float64)
    (ours,) = torch.autograd.grad(softmax(logits, dim), logits, upstream)
    (theirs,) = torch.autograd.grad(F.softmax(logits, dim), logits, upstream)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.exercise("vclib.basics.softmax.softmax")
def test_softmax_is_stable_for_huge_logits():
    logits = torch.tensor([[1e4, -1e4, 0.0], [3e4, 3e4, 3e4]])
    probs = softmax(logits)
    assert torch.isfinite(probs).all()
    torch.testing.assert_close(probs, F.softmax(logits, dim=-1))
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_values_and_gradients_match_torch(reduction, scale):
    logits = (torch.randn(33, 11, dtype=torch.float64) * scale).requires_grad_(True)
    target = torch.randint(0, 11, (33,))
    ours = cross_entropy(logits, target, reduction=reduction)
    theirs = F.cross_entropy(logits, target, reduction=reduction)
    torch.testing.assert_close(ours, theirs)
    upstream = torch.randn_like(theirs)
    (grad_ours,) = torch.autograd.grad(ours, logits, upstream)
    (grad_theirs,) = torch.autograd.grad(theirs, logits, upstream)
    torch.testing.assert_close(grad_ours, grad_theirs)


def test_cross_entropy_gradcheck():
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 4, 2, 2])
    assert torch.autograd.gradcheck(lambda z: cross_entropy(z, target, reduction="none"), (logits,))


def test_cross_entropy_spatial_targets_match_torch():
    logits = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 4, (2, 3, 5))
    torch.testing.assert_close(cross_entropy(logits, target), F.cross_entropy(logits, target))
    torch.testing.assert_close(cross_entropy(logits, target, "none"), F.cross_entropy(logits, target, reduction="none"))
    (ours,) = torch.autograd.grad(cross_entropy(logits, target), logits)
    (theirs,) = torch.autograd.grad(F.cross_entropy(logits, target), logits)
    torch.testing.assert_close(ours, theirs)


def test_cross_entropy_single_sample_single_class():
    logits = torch.tensor([[2.5]], requires_grad=True)
    loss = cross_entropy(logits, torch.tensor([0]))
    assert loss.item() == pytest.approx(0.0)
    loss.backward()
    assert logits.grad.abs().max() == 0


@pytest.mark.parametrize(
    "logits,target,match",
    [
        (torch.randn(4, 3), torch.tensor([0, 1, 2]), "target must have shape"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2, 3]), "target must lie in"),
        (torch.randn(4, 3), torch.tensor([0.0, 1.0, 2.0, 1.0]), "target must have dtype"),
        (torch.randint(0, 3, (4, 3)), torch.tensor([0, 1, 2, 1]), "logits must have a floating-point dtype"),
        (torch.randn(4), torch.tensor([0, 1, 2, 1]), "logits must have shape"),
    ],
)
def test_cross_entropy_bad_input(logits, target, match):
    with pytest.raises(ValueError, match=match):
        cross_entropy(logits, target)


def test_cross_entropy_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), reduction="avg")
