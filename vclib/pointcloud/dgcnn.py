"""DGCNN (Wang et al., 2019): EdgeConv on a k-nearest-neighbour graph that is rebuilt in feature space
at every layer (the dynamic graph).

Features are ``(B, C, N)``; neighbour indices are ``(B, N, K)``; edge features are ``(B, 2C, N, K)``.
"""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_fraction, check_int_range, check_positive_int, check_shape, check_tensor

#: ``knn`` splits the queries so that one chunk of distances holds at most this many elements
#: (2**24 float32 = 64 MiB), instead of the full ``B x N x N`` matrix.
MAX_CHUNK_ELEMENTS = 2**24


def knn(x: torch.Tensor, k: int, chunk_size: int | None = None) -> torch.Tensor:
    """Indices of the ``k`` nearest neighbours of every point, itself included (as in the reference code).

    Squared distances expand as ``||x_i||^2 - 2 x_i.x_j + ||x_j||^2``; the queries are processed
    ``chunk_size`` at a time so that memory grows with ``B x chunk x N`` rather than ``B x N x N``.

    Args:
        x: ``(B, C, N)`` features.
        k: neighbours per point, ``1 <= k <= N``.
        chunk_size: queries per chunk; ``None`` picks the largest chunk within
            :data:`MAX_CHUNK_ELEMENTS`, ``N`` computes everything at once.

    Returns:
        ``(B, N, k)`` int64, nearest first.
    """
    check_tensor(x, "x", ndim=3, floating=True)
    B, _, N = x.shape
    check_int_range(k, "k", 1, N)
    if chunk_size is None:
        chunk_size = max(1, MAX_CHUNK_ELEMENTS // max(1, B * N))
    check_positive_int(chunk_size, "chunk_size")
    points = x.transpose(1, 2)  # (B, N, C)
    squared = points.pow(2).sum(-1)  # (B, N)
    chunks = []
    for start in range(0, N, chunk_size):
        ### BEGIN SOLUTION
        queries = points[:, start:start + chunk_size]  # (B, n, C)
        inner = torch.bmm(queries, points.transpose(1, 2))  # (B, n, N)
        distance = squared[:, start:start + chunk_size, None] - 2 * inner + squared[:, None, :]  # (B, n, N)
        chunks.append(distance.topk(k, dim=-1, largest=False).indices)  # (B, n, k)
        ### END SOLUTION
    return torch.cat(chunks, dim=1)


def edge_features(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """EdgeConv's edge features ``[x_j - x_i, x_i]`` for every point ``i`` and neighbour ``j``.

    Args:
        x: ``(B, C, N)`` features.
        idx: ``(B, N, K)`` neighbour indices into the ``N`` points.

    Returns:
        ``(B, 2C, N, K)``.
    """
    check_tensor(x, "x", ndim=3, floating=True)
    B, C, N = x.shape
    check_shape(idx, "idx", (B, N, None))
    K = idx.shape[2]
    points = x.transpose(1, 2)  # (B, N, C)
    ### BEGIN SOLUTION
    batch = torch.arange(B, device=x.device).reshape(B, 1, 1)
    neighbours = points[batch, idx]  # (B, N, K, C)
    centres = points.unsqueeze(2).expand(B, N, K, C)  # (B, N, K, C)
    edges = torch.cat([neighbours - centres, centres], dim=3)  # (B, N, K, 2C)
    ### END SOLUTION
    return edges.permute(0, 3, 1, 2)  # (B, 2C, N, K)


class EdgeConv(nn.Module):
    """A shared MLP on the edge features, then the max over the ``k`` neighbours.

    Args:
        in_channels: feature size ``C`` of the input.
        out_channels: feature size of the output.
        k: neighbours per point when the graph is built here.
    """

    def __init__(self, in_channels: int, out_channels: int, k: int = 20) -> None:
        super().__init__()
        self.k = check_positive_int(k, "k")
        self.mlp = nn.Sequential(nn.Conv2d(2 * check_positive_int(in_channels, "in_channels"),
                                           check_positive_int(out_channels, "out_channels"), 1, bias=False),
                                 nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """x: ``(B, C, N)``; idx: ``(B, N, K)`` or None (build the k-NN graph of ``x``) -> ``(B, out, N)``."""
        if idx is None:
            idx = knn(x, min(self.k, x.shape[2]))
        return self.mlp(edge_features(x, idx)).amax(dim=3)  # max over the K neighbours


class DGCNN(nn.Module):
    """DGCNN classifier: ``(B, N, 3)`` points -> logits ``(B, C classes)``.

    Args:
        num_classes: number of classes ``C``.
        k: neighbours per point.
        emb_dims: width of the point features before pooling (1024 in the paper).
        widths: output sizes of the EdgeConv layers (64, 64, 128, 256 in the paper).
        static: build the graph once from the input coordinates and keep it (a plain graph CNN);
            False rebuilds it from each layer's features (the dynamic graph).
        dropout: dropout in the classifier head.
    """

    def __init__(self, num_classes: int, k: int = 20, emb_dims: int = 1024,
                 widths: tuple[int, ...] = (64, 64, 128, 256), static: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        self.k, self.static = check_positive_int(k, "k"), static
        sizes = (3, *widths)
        self.edge_convs = nn.ModuleList(EdgeConv(a, b, k) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.embed = nn.Sequential(nn.Conv1d(sum(widths), check_positive_int(emb_dims, "emb_dims"), 1, bias=False),
                                   nn.BatchNorm1d(emb_dims), nn.LeakyReLU(0.2))
        p = check_fraction(dropout, "dropout")
        self.head = nn.Sequential(
            nn.Linear(2 * emb_dims, 512, bias=False), nn.BatchNorm1d(512), nn.LeakyReLU(0.2), nn.Dropout(p),
            nn.Linear(512, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.2), nn.Dropout(p),
            nn.Linear(256, num_classes),
        )

    def graphs_and_features(self, points: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The neighbour indices ``(B, N, K)`` each EdgeConv used and the features ``(B, C_l, N)`` it made."""
        check_shape(points, "points", (None, None, 3))
        x = points.transpose(1, 2)  # (B, 3, N)
        k = min(self.k, x.shape[2])
        graphs, features = [], []
        for layer in self.edge_convs:
            idx = graphs[0] if self.static and graphs else knn(x, k)  # static: the input-space graph
            x = layer(x, idx)  # (B, C_l, N)
            graphs.append(idx)
            features.append(x)
        return graphs, features

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points: ``(B, N, 3)`` -> logits ``(B, C)``."""
        _, features = self.graphs_and_features(points)
        x = self.embed(torch.cat(features, dim=1))  # (B, emb_dims, N)
        pooled = torch.cat([x.amax(dim=2), x.mean(dim=2)], dim=1)  # (B, 2 emb_dims)
        return self.head(pooled)
