"""Anchors: wh_iou against torchvision's box_iou on boxes sharing a centre, and k-means on sizes."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops as tvops

from vclib.detection import kmeans_anchors, mean_best_iou, wh_iou


def centred(wh: torch.Tensor) -> torch.Tensor:
    return torch.cat([-wh / 2, wh / 2], dim=1)  # (N, 4) xyxy around the origin


@pytest.mark.exercise("vclib.detection.anchors.wh_iou")
def test_wh_iou_is_iou_at_a_shared_centre() -> None:
    generator = torch.Generator().manual_seed(0)
    wh, anchors = torch.rand(11, 2, generator=generator) * 40 + 1, torch.rand(5, 2, generator=generator) * 40 + 1
    assert wh_iou(wh, anchors).shape == (11, 5)
    assert torch.allclose(wh_iou(wh, anchors), tvops.box_iou(centred(wh), centred(anchors)), atol=1e-6)
    with pytest.raises(ValueError, match="anchors"):
        wh_iou(wh, anchors[:, :1])


@pytest.mark.exercise("vclib.detection.anchors.kmeans_anchors")
def test_kmeans_finds_three_size_clusters_sorted_by_area() -> None:
    generator = torch.Generator().manual_seed(1)
    truth = torch.tensor([[40.0, 10.0], [8.0, 8.0], [20.0, 30.0]])
    wh = truth.repeat_interleave(50, 0) * (1 + 0.05 * torch.randn(150, 2, generator=generator))
    anchors = kmeans_anchors(wh, 3, seed=0)
    assert anchors.shape == (3, 2)
    assert (anchors.prod(1).diff() > 0).all()  # smallest first
    expected = truth[truth.prod(1).argsort()]
    assert torch.allclose(anchors, expected, rtol=0.05)
    assert mean_best_iou(wh, anchors) > 0.85
    assert mean_best_iou(wh, anchors) > mean_best_iou(wh, kmeans_anchors(wh, 1))  # more anchors cover better


@pytest.mark.exercise("vclib.detection.anchors.kmeans_anchors")
def test_kmeans_anchors_are_medians_and_seeded() -> None:
    wh = torch.tensor([[10.0, 10.0], [11.0, 10.0], [100.0, 10.0], [50.0, 50.0], [52.0, 50.0], [60.0, 55.0]])
    one = kmeans_anchors(wh[:3], 1)
    assert torch.allclose(one, torch.tensor([[11.0, 10.0]]))  # the median, not the mean (40.3)
    assert torch.equal(kmeans_anchors(wh, 2, seed=3), kmeans_anchors(wh, 2, seed=3))


def test_kmeans_rejects_too_many_clusters_and_bad_sizes() -> None:
    wh = torch.tensor([[10.0, 10.0], [10.0, 10.0], [20.0, 5.0]])
    with pytest.raises(ValueError, match="k must be at most the number of distinct boxes \\(2\\)"):
        kmeans_anchors(wh, 3)
    with pytest.raises(ValueError, match="wh"):
        kmeans_anchors(torch.tensor([[0.0, 3.0], [2.0, 2.0]]), 1)
    with pytest.raises(ValueError, match="k"):
        kmeans_anchors(wh, 0)
