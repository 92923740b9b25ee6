"""Sigmoid, binary cross-entropy and gradient descent."""

import pytest
import torch
import torch.nn.functional as F

from vclib.basics import binary_cross_entropy_with_logits, gradient_descent, polynomial_features, sigmoid


def test_sigmoid_matches_torch_including_extremes():
    z = torch.cat([torch.randn(100, dtype=torch.float64) * 20, torch.tensor([-1e4, 1e4, 0.0], dtype=torch.float64)])
    z.requires_grad_(True)
    torch.testing.assert_close(sigmoid(z), torch.sigmoid(z))
    (ours,) = torch.autograd.grad(sigmoid(z).sum(), z)
    (theirs,) = torch.autograd.grad(torch.sigmoid(z).sum(), z)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_matches_torch(reduction):
    logits = (torch.randn(7, 3, dtype=torch.float64) * 50).requires_grad_(True)
    targets = torch.rand(7, 3, dtype=torch.float64)
    ours = binary_cross_entropy_with_logits(logits, targets, reduction)
    theirs = F.binary_cross_entropy_with_logits(logits, targets, reduction=reduction)
    torch.testing.assert_close(ours, theirs)
    upstream = torch.randn_like(theirs)
    torch.testing.assert_close(torch.autograd.grad(ours, logits, upstream)[0],
                               torch.autograd.grad(theirs, logits, upstream)[0])


def test_bce_bad_input():
    with pytest.raises(ValueError, match="logits and targets must have the same shape"):
        binary_cross_entropy_with_logits(torch.randn(3), torch.rand(4))
    with pytest.raises(ValueError, match="targets must have a floating-point dtype"):
        binary_cross_entropy_with_logits(torch.randn(3), torch.tensor([0, 1, 1]))


def test_gradient_descent_finds_quadratic_minimum():
    target = torch.tensor([1.0, -2.0, 3.0])
    path, losses = gradient_descent(lambda w: ((w - target) ** 2).sum(), torch.zeros(3), lr=0.1, steps=200)
    assert path.shape == (201, 3)
    assert len(losses) == 201
    torch.testing.assert_close(path[-1], target, atol=1e-5, rtol=0)
    assert losses[-1] < losses[0]


def test_gradient_descent_first_step_is_lr_times_gradient():
    start = torch.tensor([2.0, -1.0])
    path, _ = gradient_descent(lambda w: (w**3).sum(), start, lr=0.01, steps=1)
    torch.testing.assert_close(path[1], start - 0.01 * 3 * start**2)


def test_gradient_descent_bad_input():
    with pytest.raises(ValueError, match="lr must be > 0"):
        gradient_descent(lambda w: w.sum(), torch.zeros(2), lr=0.0, steps=3)
    with pytest.raises(ValueError, match="steps"):
        gradient_descent(lambda w: w.sum(), torch.zeros(2), lr=0.1, steps=0)
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        gradient_descent(lambda w: w * 2, torch.zeros(2), lr=0.1, steps=1)


def test_polynomial_features():
    x = torch.tensor([2.0, -1.0])
    torch.testing.assert_close(polynomial_features(x, 3), torch.tensor([[1.0, 2, 4, 8], [1, -1, 1, -1]]))
    assert polynomial_features(x, 0).shape == (2, 1)
    with pytest.raises(ValueError, match="x must have 1 dimensions"):
        polynomial_features(torch.zeros(2, 2), 2)


def test_polynomial_regression_module_equals_features_times_weights():
    from vclib.basics import PolynomialRegression

    model = PolynomialRegression(degree=2)
    x = torch.tensor([0.5, -2.0, 3.0])
    expected = polynomial_features(x, 2) @ model.linear.weight.detach()[0]
    torch.testing.assert_close(model(x), expected)
    with pytest.raises(ValueError, match="degree"):
        PolynomialRegression(degree=-1)
