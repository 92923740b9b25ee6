"""vclib.pointcloud.pointnet: TNet, PointNet, the regulariser, critical points."""

import pytest
import torch

from vclib.pointcloud.pointnet import (
    PointNet,
    TNet,
    critical_points,
    feature_transform_regularizer,
    pointnet_loss,
    upper_bound_shape,
)


def test_tnet_starts_as_the_identity():
    tnet = TNet(5, emb_dims=32)
    out = tnet(torch.randn(4, 5, 20))
    assert torch.equal(out, torch.eye(5).expand(4, 5, 5))


def test_logits_are_invariant_to_point_order_in_eval_mode():
    model = PointNet(7, emb_dims=64).eval()
    for p in model.parameters():  # move away from the identity initialisation
        p.data += 0.05 * torch.randn_like(p)
    points = torch.randn(3, 50, 3)
    shuffled = points[:, torch.randperm(50)]
    out, out_shuffled = model(points), model(shuffled)
    assert out.logits.shape == (3, 7) and out.input_transform.shape == (3, 3, 3)
    assert out.feature_transform.shape == (3, 64, 64)
    assert torch.allclose(out.logits, out_shuffled.logits, atol=1e-5)


@pytest.mark.exercise("vclib.pointcloud.pointnet.feature_transform_regularizer")
def test_regulariser_zero_for_orthogonal_positive_otherwise():
    q, _ = torch.linalg.qr(torch.randn(6, 8, 8, dtype=torch.float64))
    assert feature_transform_regularizer(q).abs() < 1e-12
    a = torch.randn(6, 8, 8, dtype=torch.float64, requires_grad=True)
    value = feature_transform_regularizer(a)
    reference = torch.linalg.matrix_norm(torch.eye(8) - a @ a.transpose(1, 2)).pow(2).mean()
    assert value > 0 and torch.allclose(value, reference)
    grad, = torch.autograd.grad(value, a)
    grad_ref, = torch.autograd.grad(reference, a)
    assert torch.allclose(grad, grad_ref)
    with pytest.raises(ValueError, match="transforms"):
        feature_transform_regularizer(torch.randn(2, 3, 4))


def test_batch_of_one_and_cloud_of_one_point():
    model = PointNet(4, emb_dims=32).eval()
    assert model(torch.randn(1, 100, 3)).logits.shape == (1, 4)
    assert model(torch.randn(2, 1, 3)).logits.shape == (2, 4)


def test_loss_adds_the_weighted_regulariser_and_trains():
    model = PointNet(3, emb_dims=32)
    out = model(torch.randn(4, 30, 3))
    targets = torch.tensor([0, 1, 2, 0])
    plain = torch.nn.functional.cross_entropy(out.logits, targets)
    reg = feature_transform_regularizer(out.feature_transform)
    assert torch.allclose(pointnet_loss(out, targets, reg_weight=0.5), plain + 0.5 * reg)
    pointnet_loss(out, targets).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.exercise("vclib.pointcloud.pointnet.critical_points")
def test_critical_points_alone_give_the_same_global_feature():
    model = PointNet(5, input_transform=False, feature_transform=False, emb_dims=64).eval()
    points = torch.randn(2, 200, 3)
    critical = critical_points(model, points)
    features, _, _ = model.point_features(points)
    for b, idx in enumerate(critical):
        assert 0 < len(idx) < 200
        subset, _, _ = model.point_features(points[b:b + 1, idx])
        # equal up to rounding: a 1x1 convolution over fewer points may sum in another order
        assert torch.allclose(subset.amax(2)[0], features[b].amax(1), rtol=1e-5, atol=1e-6)


def test_cloud_points_lie_in_their_upper_bound_shape():
    model = PointNet(5, emb_dims=32).eval()
    points = torch.randn(2, 64, 3) * 0.5
    inside = upper_bound_shape(model, points[:1], points[0])
    assert inside.shape == (1, 64) and inside.all()
    far = upper_bound_shape(model, points[:1], torch.full((1, 3), 50.0))
    assert not far.any()
