"""YouTube-8M's ranking metrics: GAP@k, Hit@1, PERR and per-class average precision.

Scores ``(N, C)`` of any monotone kind (logits or probabilities) against multi-hot labels ``(N, C)`` in
{0, 1}, with N videos and C classes. ``gap``, ``hit_at_one`` and ``perr`` follow the official evaluation
code (``eval_util.py`` and ``average_precision_calculator.py`` in github.com/google/youtube-8m).
"""

from __future__ import annotations

import torch

from vclib.checks import check_positive_int, check_tensor


def _check_multilabel(scores: torch.Tensor, labels: torch.Tensor) -> int:
    """Check ``scores (N, C)`` finite floats and ``labels (N, C)`` with every entry 0 or 1; return the
    number of positive labels. No full-size float temporaries: this runs on 100,000 x 3,862 inputs."""
    check_tensor(scores, "scores", ndim=2, floating=True)
    check_tensor(labels, "labels", ndim=2)
    if labels.shape != scores.shape:
        raise ValueError(f"scores and labels must have the same shape (N, C), got {tuple(scores.shape)} "
                         f"and {tuple(labels.shape)}")
    if scores.numel() == 0:
        raise ValueError(f"scores must not be empty, got shape {tuple(scores.shape)}")
    low, high = torch.aminmax(scores)  # max and min propagate NaN
    if not (torch.isfinite(low) and torch.isfinite(high)):
        raise ValueError(f"scores must be finite, got values in [{low.item()}, {high.item()}]")
    num_positives = int(torch.count_nonzero(labels))
    if labels.dtype == torch.bool:
        return num_positives
    low, high = torch.aminmax(labels)
    # Within [0, 1], integers are 0 or 1; floats also need every nonzero entry to be exactly 1.
    fractional = labels.is_floating_point() and int(torch.count_nonzero(labels == 1)) != num_positives
    if low < 0 or high > 1 or fractional:
        raise ValueError(f"labels must be 0 or 1 (multi-hot), got values in [{low.item()}, {high.item()}] "
                         "that are not all 0 or 1")
    return num_positives


def gap(scores: torch.Tensor, labels: torch.Tensor, top_k: int = 20) -> float:
    """Global average precision (GAP@k), YouTube-8M's official metric (``eval_util.calculate_gap``).

    Keep each video's ``top_k`` highest-scored classes, pool all N * k (score, is-a-true-label) pairs,
    sort them by score (descending) and compute the average precision of that single list:

        GAP = (1 / P) * sum_i precision@i * hit_i

    where P counts *all* positive labels in ``labels``, including those that fell outside a video's top
    k (they can never be found, so they lower GAP). As in the official code, ``top_k`` larger than C
    keeps all C classes, and no video or no positive label gives 0. The official code breaks ties between
    equal scores in a shuffled order; here equal scores keep their (video, rank) order, so the two agree
    exactly when the pooled scores are distinct.

    Args:
        scores: ``(N, C)`` logits or probabilities, N videos, C classes.
        labels: ``(N, C)`` multi-hot, 0 or 1 (bool, int or float).
        top_k: predictions kept per video (20 in the official evaluation), >= 1.

    Returns:
        GAP in [0, 1].
    """
    check_positive_int(top_k, "top_k")
    if scores.dim() == 2 and scores.shape[0] == 0 and labels.shape == scores.shape:
        return 0.0  # no videos: the official calculator's empty heap
    num_positives = _check_multilabel(scores, labels)
    if num_positives == 0:
        return 0.0
    ### BEGIN SOLUTION
    top_scores, top_classes = scores.topk(min(top_k, scores.shape[1]), dim=1)  # (N, k) each
    hits = labels.gather(1, top_classes).flatten().to(torch.float64)  # (N * k,)
    order = top_scores.flatten().argsort(descending=True, stable=True)  # (N * k,)
    hits = hits[order]
    precision = hits.cumsum(0) / torch.arange(1, hits.numel() + 1, dtype=torch.float64)  # precision@i
    return float((precision * hits).sum() / num_positives)
    ### END SOLUTION


def hit_at_one(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Hit@1: the fraction of videos whose highest-scored class is one of their labels.

    Args:
        scores: ``(N, C)``; labels: ``(N, C)`` multi-hot. A video without labels counts as a miss.
    """
    _check_multilabel(scores, labels)
    top_class = scores.argmax(dim=1, keepdim=True)  # (N, 1)
    return labels.gather(1, top_class).to(torch.float64).mean().item()


def perr(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Precision at equal recall rate: for a video with r labels, the fraction of its r highest-scored
    classes that are labels; averaged over the videos that have at least one label. (The official
    ``calculate_precision_at_equal_recall_rate`` also divides by the videos without labels, each counting
    0, and only counts classes with a positive score, which assumes probabilities.)

    Args:
        scores: ``(N, C)``; labels: ``(N, C)`` multi-hot.
    """
    _check_multilabel(scores, labels)
    num_labels = torch.count_nonzero(labels, dim=1)  # (N,)
    labelled = num_labels > 0
    if not labelled.any():
        raise ValueError("labels must contain at least one video with a label")
    max_labels = int(num_labels.max())
    top_classes = scores.topk(max_labels, dim=1).indices  # (N, r_max)
    hits = labels.gather(1, top_classes).to(torch.float64)  # (N, r_max)
    within_r = torch.arange(max_labels) < num_labels[:, None]  # (N, r_max): rank < r of that video
    precision = (hits * within_r).sum(dim=1)[labelled] / num_labels[labelled]
    return precision.mean().item()


def average_precision_per_class(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Average precision of each class over the videos: ``(C,)``, NaN for a class with no positive.

    AP = sum over score thresholds of (recall gain) * precision, with tied scores forming one threshold
    (the definition of ``sklearn.metrics.average_precision_score``).

    Args:
        scores: ``(N, C)``; labels: ``(N, C)`` multi-hot.
    """
    _check_multilabel(scores, labels)
    count = scores.shape[0]
    sorted_scores, order = scores.sort(dim=0, descending=True)  # (N, C), per class
    hits = labels.gather(0, order).to(torch.float64)  # (N, C)
    true_positives = hits.cumsum(0)  # (N, C)
    precision = true_positives / torch.arange(1, count + 1, dtype=torch.float64)[:, None]  # (N, C)
    # Tied scores share one threshold: use the precision at the last row of each run of equal scores.
    run_end = torch.ones_like(sorted_scores, dtype=torch.bool)  # (N, C)
    run_end[:-1] = sorted_scores[:-1] != sorted_scores[1:]
    row = torch.arange(count)[:, None].expand(count, scores.shape[1])  # (N, C)
    end_row = torch.where(run_end, row, count)  # (N, C): own row at a run end, else "later"
    end_row = end_row.flip(0).cummin(dim=0).values.flip(0)  # (N, C): next run end at or below
    precision_at_threshold = precision.gather(0, end_row)  # (N, C)
    num_positives = hits.sum(dim=0)  # (C,)
    ap = (hits * precision_at_threshold).sum(dim=0) / num_positives
    return torch.where(num_positives > 0, ap, torch.nan)


def mean_ap(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of the per-class average precision (classes without a positive are skipped).

    Args:
        scores: ``(N, C)``; labels: ``(N, C)`` multi-hot.
    """
    per_class = average_precision_per_class(scores, labels)
    if torch.isnan(per_class).all():
        raise ValueError("labels must contain at least one positive")
    return per_class.nanmean().item()
