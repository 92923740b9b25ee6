"""vclib.pointcloud.dgcnn: knn against cdist + topk, edge features, EdgeConv, DGCNN."""

import importlib.util

import pytest
import torch

from vclib.pointcloud.dgcnn import DGCNN, EdgeConv, edge_features, knn


def brute_force_knn(x, k):
    points = x.transpose(1, 2)  # (B, N, C)
    return torch.cdist(points, points).topk(k, dim=-1, largest=False)


@pytest.mark.exercise("vclib.pointcloud.dgcnn.knn")
@pytest.mark.parametrize("shape, k", [((2, 3, 50), 5), ((1, 7, 33), 33), ((3, 2, 9), 1)])
def test_knn_equals_cdist_topk(shape, k):
    x = torch.randn(*shape, dtype=torch.float64)
    idx = knn(x, k)
    distances, reference = brute_force_knn(x, k)
    assert idx.shape == (shape[0], shape[2], k) and idx.dtype == torch.int64
    assert torch.equal(idx, reference)
    assert torch.equal(idx[..., 0], torch.arange(shape[2]).expand(shape[0], -1))  # itself first


@pytest.mark.exercise("vclib.pointcloud.dgcnn.knn")
def test_chunked_knn_equals_unchunked():
    x = torch.randn(2, 3, 130, dtype=torch.float64)
    full = knn(x, 8, chunk_size=130)
    for chunk in (1, 7, 64):
        assert torch.equal(knn(x, 8, chunk_size=chunk), full)


def test_knn_bad_k():
    with pytest.raises(ValueError, match="k"):
        knn(torch.randn(1, 3, 4), 5)


@pytest.mark.exercise("vclib.pointcloud.dgcnn.edge_features")
def test_edge_features_match_a_loop():
    x, idx = torch.randn(2, 4, 6), torch.randint(0, 6, (2, 6, 3))
    edges = edge_features(x, idx)
    assert edges.shape == (2, 8, 6, 3)
    for b in range(2):
        for i in range(6):
            for j in range(3):
                neighbour = x[b, :, idx[b, i, j]]
                assert torch.equal(edges[b, :, i, j], torch.cat([neighbour - x[b, :, i], x[b, :, i]]))


def test_edgeconv_is_permutation_equivariant():
    layer = EdgeConv(3, 16, k=4).eval()
    x = torch.randn(2, 3, 40)
    perm = torch.randperm(40)
    assert torch.allclose(layer(x)[:, :, perm], layer(x[:, :, perm]), atol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("torch_geometric") is None, reason="torch_geometric not installed")
def test_edgeconv_equals_torch_geometric():
    from torch_geometric.nn import EdgeConv as PygEdgeConv

    layer = EdgeConv(3, 8, k=5).eval()
    x = torch.randn(1, 3, 30)
    idx = knn(x, 5)  # (1, N, K)
    edge_index = torch.stack([idx[0].reshape(-1), torch.arange(30).repeat_interleave(5)])  # source j -> target i
    w = layer.mlp[0].weight[:, :, 0, 0]  # (8, 6): [x_j - x_i, x_i] columns
    linear = torch.nn.Linear(6, 8, bias=False)
    linear.weight.data = torch.cat([w[:, 3:], w[:, :3]], dim=1)  # PyG order: [x_i, x_j - x_i]
    reference = PygEdgeConv(torch.nn.Sequential(linear, layer.mlp[1], layer.mlp[2]), aggr="max")
    assert torch.allclose(layer(x, idx)[0].T, reference(x[0].T, edge_index), atol=1e-5)


def test_dgcnn_dynamic_and_static_graphs():
    points = torch.randn(2, 64, 3)
    dynamic = DGCNN(5, k=6, emb_dims=32, widths=(8, 8, 16))
    graphs, features = dynamic.graphs_and_features(points)
    assert [f.shape[1] for f in features] == [8, 8, 16]
    assert torch.equal(graphs[0], knn(points.transpose(1, 2), 6))
    assert not torch.equal(graphs[0], graphs[1])  # rebuilt in feature space
    static = DGCNN(5, k=6, emb_dims=32, widths=(8, 8, 16), static=True)
    static_graphs, _ = static.graphs_and_features(points)
    assert all(torch.equal(g, static_graphs[0]) for g in static_graphs)
    logits = dynamic(points)
    assert logits.shape == (2, 5)
    logits.sum().backward()
    assert all(p.grad is not None for p in dynamic.parameters())


def test_dgcnn_eval_is_permutation_invariant_and_handles_few_points():
    model = DGCNN(3, k=20, emb_dims=16, widths=(8, 8)).eval()
    points = torch.randn(2, 30, 3)
    assert torch.allclose(model(points), model(points[:, torch.randperm(30)]), atol=1e-5)
    assert model(torch.randn(1, 4, 3)).shape == (1, 3)  # k shrinks to the number of points
