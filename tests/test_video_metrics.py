"""GAP, Hit@1, PERR and mean AP: hand-computed cases, plain per-video references, and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

import vclib.metrics
from vclib.video.metrics import average_precision_per_class, gap, hit_at_one, mean_ap, perr


def reference_gap(scores: torch.Tensor, labels: torch.Tensor, top_k: int) -> float:
    """GAP as the YouTube-8M evaluation describes it, one video at a time."""
    pooled = []
    for video_scores, video_labels in zip(scores.tolist(), labels.tolist(), strict=True):
        best = sorted(range(len(video_scores)), key=lambda c: -video_scores[c])[:top_k]
        pooled += [(video_scores[c], video_labels[c]) for c in best]
    pooled.sort(key=lambda pair: -pair[0])
    positives = sum(sum(row) for row in labels.tolist())
    found, total = 0, 0.0
    for rank, (_, hit) in enumerate(pooled, start=1):
        if hit:
            found += 1
            total += found / rank
    return total / positives


def reference_perr(scores: torch.Tensor, labels: torch.Tensor) -> float:
    precisions = []
    for video_scores, video_labels in zip(scores.tolist(), labels.tolist(), strict=True):
        r = int(sum(video_labels))
        if r:
            best = sorted(range(len(video_scores)), key=lambda c: -video_scores[c])[:r]
            precisions.append(sum(video_labels[c] for c in best) / r)
    return sum(precisions) / len(precisions)


def official_gap(predictions: np.ndarray, actuals: np.ndarray, top_k: int) -> float:
    """A NumPy transcription of google/youtube-8m ``eval_util.calculate_gap``: ``top_k_by_class`` (argpartition,
    ``k = min(k, C)``) feeding ``AveragePrecisionCalculator.ap_at_n`` with ``n=None``."""
    if top_k <= 0:
        raise ValueError("k must be a positive integer.")
    k = min(top_k, predictions.shape[1])
    pooled_scores, pooled_labels = [], []
    for row_scores, row_labels in zip(predictions, actuals, strict=True):
        indices = np.argpartition(row_scores, -k)[-k:]
        pooled_scores += row_scores[indices].tolist()
        pooled_labels += row_labels[indices].tolist()
    num_positives = float(actuals.sum())
    if not pooled_scores or num_positives == 0:
        return 0.0
    order = sorted(range(len(pooled_scores)), key=lambda i: pooled_scores[i], reverse=True)
    ap, found = 0.0, 0
    for rank, i in enumerate(order):
        if pooled_labels[i] > 0:
            found += 1
            ap += found / (rank + 1) / num_positives
    return ap


def random_case(videos: int, classes: int, seed: int, density: float = 0.15):
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.rand(videos, classes, generator=generator) < density).float()
    scores = torch.randn(videos, classes, generator=generator) + 1.5 * labels  # informative but imperfect
    return scores, labels


@pytest.mark.exercise("vclib.video.metrics.gap")
def test_gap_by_hand():
    # Video A: labels {0}, scores 0.9 0.8 0.1 -> top-2: (0.9, hit) (0.8, miss)
    # Video B: labels {1, 2}, scores 0.2 0.7 0.3 -> top-2: (0.7, hit) (0.3, hit)
    # Pooled by score: 0.9 hit, 0.8 miss, 0.7 hit, 0.3 hit -> AP = (1/1 + 2/3 + 3/4) / 3 positives
    scores = torch.tensor([[0.9, 0.8, 0.1], [0.2, 0.7, 0.3]])
    labels = torch.tensor([[1, 0, 0], [0, 1, 1]])
    assert gap(scores, labels, top_k=2) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # With k = 1, B keeps only (0.7, hit); its label 2 can no longer be found: (1 + 2/2) / 3.
    assert gap(scores, labels, top_k=1) == pytest.approx((1 + 1) / 3)


def test_gap_counts_positives_outside_the_top_k():
    scores = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    labels = torch.tensor([[1, 1, 1, 1]])
    assert gap(scores, labels, top_k=2) == pytest.approx(0.5)  # two found, precision 1, of four
    assert gap(scores, labels, top_k=4) == pytest.approx(1.0)


@pytest.mark.exercise("vclib.video.metrics.gap")
@pytest.mark.parametrize(("videos", "classes", "top_k", "seed"),
                         [(30, 12, 5, 0), (50, 40, 20, 1), (8, 6, 6, 2)])
def test_gap_matches_the_per_video_reference(videos, classes, top_k, seed):
    scores, labels = random_case(videos, classes, seed)
    assert gap(scores, labels, top_k=top_k) == pytest.approx(reference_gap(scores, labels, top_k), abs=1e-12)


@pytest.mark.exercise("vclib.video.metrics.gap")
def test_gap_is_sklearn_ap_of_the_pooled_list_scaled_by_recall_reachable():
    scores, labels = random_case(60, 25, seed=4)
    top_scores, top_classes = scores.topk(5, dim=1)
    pooled_hits = labels.gather(1, top_classes).flatten().numpy()
    pooled_ap = average_precision_score(pooled_hits, top_scores.flatten().numpy())
    reachable = pooled_hits.sum() / labels.sum().item()
    assert gap(scores, labels, top_k=5) == pytest.approx(pooled_ap * reachable, abs=1e-9)


def test_gap_accepts_any_label_dtype_and_monotone_scores():
    scores, labels = random_case(40, 10, seed=5)
    expected = gap(scores, labels, top_k=10)
    assert gap(scores, labels.bool(), top_k=10) == expected
    assert gap(scores, labels.long(), top_k=10) == expected
    assert gap(torch.sigmoid(scores.double()), labels, top_k=10) == pytest.approx(expected)
    assert gap(scores, torch.zeros_like(labels), top_k=3) == 0.0


@pytest.mark.exercise("vclib.video.metrics.gap")
@pytest.mark.parametrize(("videos", "classes", "top_k", "seed"),
                         [(400, 60, 20, 6), (50, 7, 20, 11), (30, 5, 5, 12), (1, 3, 1, 13)])
def test_gap_matches_the_official_calculation(videos, classes, top_k, seed):
    scores, labels = random_case(videos, classes, seed)  # continuous scores: no ties
    expected = official_gap(scores.double().numpy(), labels.numpy(), top_k)
    assert gap(scores.double(), labels, top_k=top_k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.exercise("vclib.video.metrics.gap")
def test_gap_edge_cases_follow_the_official_code():
    scores, labels = random_case(6, 4, seed=14)
    # top_k above the number of classes keeps every class, like k = min(k, C) in top_k_by_class
    assert gap(scores, labels, top_k=50) == pytest.approx(gap(scores, labels, top_k=4))
    assert gap(scores, labels, top_k=50) == pytest.approx(official_gap(scores.numpy(), labels.numpy(), 50))
    # no videos, or no positive label: the official calculator returns 0
    assert gap(scores[:0], labels[:0]) == official_gap(scores[:0].numpy(), labels[:0].numpy(), 20) == 0.0
    # kept importable from the shared module
    assert vclib.metrics.gap is gap


def test_hit_at_one_and_perr_by_hand():
    scores = torch.tensor([[0.9, 0.8, 0.1], [0.2, 0.7, 0.3], [0.5, 0.4, 0.6], [0.1, 0.2, 0.3]])
    labels = torch.tensor([[0, 1, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0]])
    # top-1 hits: A no, B yes, C no, D (no labels) no
    assert hit_at_one(scores, labels) == pytest.approx(1 / 4)
    # PERR: A r=1 top {0} -> 0; B r=2 top {1, 2} -> 1; C r=2 top {2, 0} -> 1/2; D skipped
    assert perr(scores, labels) == pytest.approx((0 + 1 + 0.5) / 3)


def test_perr_matches_the_per_video_reference():
    scores, labels = random_case(70, 15, seed=7, density=0.25)
    assert perr(scores, labels) == pytest.approx(reference_perr(scores, labels), abs=1e-12)


def test_mean_ap_matches_sklearn_per_class_including_ties():
    scores, labels = random_case(80, 9, seed=8)
    scores = torch.round(scores * 2) / 2  # many tied scores
    labels[:, 4] = 0  # a class with no positive is skipped
    per_class = average_precision_per_class(scores, labels)
    for c in range(9):
        if c == 4:
            assert torch.isnan(per_class[c])
        else:
            expected = average_precision_score(labels[:, c].numpy(), scores[:, c].numpy())
            assert per_class[c].item() == pytest.approx(expected, abs=1e-12)
    assert mean_ap(scores, labels) == pytest.approx(np.nanmean(per_class.numpy()))


@pytest.mark.parametrize("metric", [gap, hit_at_one, perr, mean_ap])
def test_bad_inputs_raise(metric):
    scores, labels = random_case(5, 4, seed=9)
    with pytest.raises(ValueError, match="scores must have 2 dimensions"):
        metric(scores[0], labels)
    with pytest.raises(ValueError, match=r"same shape \(N, C\)"):
        metric(scores, labels[:, :3])
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        metric(scores, labels * 2)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        metric(scores, labels * 0.5 + labels * 0.25)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        metric(scores, labels - 1)
    bad = scores.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="scores must be finite"):
        metric(bad, labels)
    with pytest.raises(ValueError, match="floating-point"):
        metric(labels.long(), labels)


def test_gap_top_k_is_checked():
    scores, labels = random_case(5, 4, seed=10)
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="top_k must be an int >= 1"):
            gap(scores, labels, top_k=bad)
