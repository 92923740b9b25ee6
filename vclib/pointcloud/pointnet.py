"""PointNet (Qi et al., CVPR 2017): a shared per-point MLP, a symmetric max-pool, and learned alignments.

Clouds go in as ``(B, N, 3)``. The per-point MLP is a stack of 1x1 ``Conv1d`` layers on ``(B, C, N)``, so
every point is transformed by the same weights; the max over points makes the global feature
independent of their order.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vclib.checks import check_non_negative, check_positive_int, check_shape, check_tensor


def shared_mlp(sizes: list[int]) -> nn.Sequential:
    """1x1 convolutions with batch norm and ReLU: the same MLP applied to every point of ``(B, C, N)``."""
    layers: list[nn.Module] = []
    for in_size, out_size in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Conv1d(in_size, out_size, 1, bias=False), nn.BatchNorm1d(out_size), nn.ReLU()]
    return nn.Sequential(*layers)


class TNet(nn.Module):
    """Predicts a ``k x k`` transform from a whole cloud; initialised to output the identity.

    Args:
        k: size of the point features it aligns (3 for coordinates, 64 for features).
        emb_dims: width of its global feature.
    """

    def __init__(self, k: int, emb_dims: int = 1024) -> None:
        super().__init__()
        self.k = check_positive_int(k, "k")
        self.features = shared_mlp([k, 64, 128, emb_dims])
        self.head = nn.Sequential(nn.Linear(emb_dims, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, k * k))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(B, k, N)`` -> transforms ``(B, k, k)``."""
        check_shape(x, "x", (None, self.k, None))
        pooled = self.features(x).amax(dim=2)  # (B, emb_dims)
        identity = torch.eye(self.k, device=x.device, dtype=x.dtype)
        return self.head(pooled).reshape(-1, self.k, self.k) + identity  # (B, k, k)


class PointNetOutput(NamedTuple):
    """What :class:`PointNet` returns: logits ``(B, C classes)`` and the two transforms (or None)."""

    logits: torch.Tensor
    input_transform: torch.Tensor | None
    feature_transform: torch.Tensor | None


class PointNet(nn.Module):
    """PointNet classifier: ``(B, N, 3)`` points -> :class:`PointNetOutput`.

    Args:
        num_classes: number of classes ``C``.
        input_transform: align the coordinates with a ``TNet(3)``.
        feature_transform: align the 64-d point features with a ``TNet(64)``.
        emb_dims: width of the global feature (1024 in the paper).
        dropout: dropout before the last layer of the classifier head.
    """

    def __init__(self, num_classes: int, input_transform: bool = True, feature_transform: bool = True,
                 emb_dims: int = 1024, dropout: float = 0.3) -> None:
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        self.input_tnet = TNet(3, emb_dims) if input_transform else None
        self.local = shared_mlp([3, 64, 64])
        self.feature_tnet = TNet(64, emb_dims) if feature_transform else None
        self.glob = shared_mlp([64, 128, emb_dims])
        self.head = nn.Sequential(
            nn.Linear(emb_dims, 512), nn.BatchNorm1d(512), nn.ReLU(),
            nn.Linear(512, 256), nn.Dropout(check_non_negative(dropout, "dropout")), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Linear(256, num_classes),
        )

    def point_features(self, points: torch.Tensor, transforms: tuple[torch.Tensor | None, torch.Tensor | None]
                       | None = None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Per-point features before the max-pool.

        Args:
            points: ``(B, N, 3)`` float.
            transforms: reuse these ``(input, feature)`` transforms instead of predicting them from
                ``points`` (to probe single points with the transforms of a whole cloud).

        Returns:
            features ``(B, E, N)``, input transform ``(B, 3, 3)`` and feature transform ``(B, 64, 64)``
            (None where disabled).
        """
        check_shape(points, "points", (None, None, 3))
        x = points.transpose(1, 2)  # (B, 3, N)
        t_in, t_feat = transforms if transforms is not None else (None, None)
        if self.input_tnet is not None:
            t_in = self.input_tnet(x) if transforms is None else t_in
            x = torch.bmm(t_in, x)  # (B, 3, N)
        x = self.local(x)  # (B, 64, N)
        if self.feature_tnet is not None:
            t_feat = self.feature_tnet(x) if transforms is None else t_feat
            x = torch.bmm(t_feat, x)  # (B, 64, N)
        return self.glob(x), t_in, t_feat  # (B, E, N)

    def forward(self, points: torch.Tensor) -> PointNetOutput:
        """points: ``(B, N, 3)`` -> logits ``(B, C)`` and the transforms."""
        features, t_in, t_feat = self.point_features(points)
        global_feature = features.amax(dim=2)  # (B, E): the symmetric function
        return PointNetOutput(self.head(global_feature), t_in, t_feat)


def feature_transform_regularizer(transforms: torch.Tensor) -> torch.Tensor:
    """``mean_b ||I - A_b A_b^T||_F^2``: zero exactly when every ``A_b`` is orthogonal.

    Args:
        transforms: ``(B, k, k)``.
    """
    check_tensor(transforms, "transforms", ndim=3, floating=True)
    if transforms.shape[1] != transforms.shape[2]:
        raise ValueError(f"transforms must be square (B, k, k), got {tuple(transforms.shape)}")
    ### BEGIN SOLUTION
    identity = torch.eye(transforms.shape[1], device=transforms.device, dtype=transforms.dtype)
    residual = identity - torch.bmm(transforms, transforms.transpose(1, 2))  # (B, k, k)
    return residual.pow(2).sum(dim=(1, 2)).mean()
    ### END SOLUTION


def pointnet_loss(outputs: PointNetOutput, targets: torch.Tensor, reg_weight: float = 0.001) -> torch.Tensor:
    """Cross-entropy plus ``reg_weight`` times the feature-transform regulariser (as in the paper)."""
    loss = F.cross_entropy(outputs.logits, targets)
    if outputs.feature_transform is not None:
        loss = loss + reg_weight * feature_transform_regularizer(outputs.feature_transform)
    return loss


@torch.no_grad()
def critical_points(model: PointNet, points: torch.Tensor) -> list[torch.Tensor]:
    """Indices of the points that win the max-pool in at least one feature (the critical point set).

    The model is evaluated in eval mode. Every global feature is the value of some critical point, so
    the critical points alone give the same global feature as the whole cloud.

    Args:
        points: ``(B, N, 3)``.

    Returns:
        a list of ``B`` sorted int64 tensors of point indices.
    """
    from vclib.train import eval_mode

    check_shape(points, "points", (None, None, 3))
    with eval_mode(model):
        features, _, _ = model.point_features(points)  # (B, E, N)
    ### BEGIN SOLUTION
    winners = features.argmax(dim=2)  # (B, E): which point gives each feature its maximum
    return [torch.unique(row) for row in winners]
    ### END SOLUTION


@torch.no_grad()
def upper_bound_shape(model: PointNet, points: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Which candidate points could be added to a cloud without changing its global feature.

    A candidate ``c`` is in the upper-bound shape when ``f(c) <= g`` in every feature, with ``g`` the
    cloud's global feature and ``f(c)`` computed with the cloud's own transforms (PointNet, Fig. 7).

    Args:
        points: ``(B, N, 3)`` clouds.
        candidates: ``(M, 3)`` probe points (for example a dense grid).

    Returns:
        ``(B, M)`` bool.
    """
    from vclib.train import eval_mode

    check_shape(points, "points", (None, None, 3))
    check_shape(candidates, "candidates", (None, 3))
    with eval_mode(model):
        features, t_in, t_feat = model.point_features(points)
        global_feature = features.amax(dim=2, keepdim=True)  # (B, E, 1)
        probe = candidates.to(points).expand(len(points), -1, -1)  # (B, M, 3)
        probe_features, _, _ = model.point_features(probe, transforms=(t_in, t_feat))  # (B, E, M)
    return (probe_features <= global_feature).all(dim=1)
