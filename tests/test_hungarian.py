"""Hungarian matching and DETR's matching cost, against brute force over every assignment."""

import itertools

import pytest
import torch

from vclib.detection import box_convert, detr_match_cost, generalized_box_iou, hungarian_match


def brute_force_cost(cost: torch.Tensor) -> float:
    """The smallest total cost over every one-to-one assignment of min(Q, G) pairs."""
    rows, cols = cost.shape
    if rows >= cols:  # every target gets a distinct prediction
        return min(sum(cost[q, g].item() for g, q in enumerate(chosen))
                   for chosen in itertools.permutations(range(rows), cols))
    return min(sum(cost[q, g].item() for q, g in enumerate(chosen))
               for chosen in itertools.permutations(range(cols), rows))


def check_valid_matching(cost: torch.Tensor, query_idx: torch.Tensor, target_idx: torch.Tensor) -> None:
    pairs = min(cost.shape)
    assert query_idx.dtype == torch.int64 and target_idx.dtype == torch.int64
    assert query_idx.shape == target_idx.shape == (pairs,)
    assert len(set(query_idx.tolist())) == pairs and len(set(target_idx.tolist())) == pairs  # one-to-one
    assert torch.equal(target_idx, target_idx.sort().values)  # listed target by target


@pytest.mark.parametrize("queries", range(1, 7))
@pytest.mark.parametrize("targets", range(1, 5))
def test_matches_brute_force(queries, targets):
    generator = torch.Generator().manual_seed(100 * queries + targets)
    for _ in range(5):
        cost = torch.randn(queries, targets, generator=generator, dtype=torch.float64)
        query_idx, target_idx = hungarian_match(cost)
        check_valid_matching(cost, query_idx, target_idx)
        assert cost[query_idx, target_idx].sum().item() == pytest.approx(brute_force_cost(cost), abs=1e-12)


def test_float32_and_integer_valued_ties():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        cost = torch.randint(0, 3, (5, 3), generator=generator).float()  # many equal-cost optima
        query_idx, target_idx = hungarian_match(cost)
        check_valid_matching(cost, query_idx, target_idx)
        assert cost[query_idx, target_idx].sum().item() == brute_force_cost(cost)


def test_constant_cost_matches_every_target():
    query_idx, target_idx = hungarian_match(torch.ones(6, 4))
    check_valid_matching(torch.ones(6, 4), query_idx, target_idx)
    assert torch.equal(target_idx, torch.arange(4))


def test_identity_cost_picks_the_diagonal():
    cost = 1 - torch.eye(4)  # zero on the diagonal, one elsewhere
    perm = torch.tensor([2, 0, 3, 1])
    query_idx, target_idx = hungarian_match(cost[perm])
    assert torch.equal(perm[query_idx], target_idx)


@pytest.mark.parametrize("shape", [(5, 0), (0, 3), (0, 0)])
def test_empty(shape):
    query_idx, target_idx = hungarian_match(torch.zeros(shape))
    assert query_idx.shape == target_idx.shape == (0,)
    assert query_idx.dtype == target_idx.dtype == torch.int64


def test_rectangular_more_targets_than_queries():
    cost = torch.tensor([[5.0, 1.0, 9.0], [1.0, 4.0, 0.5]])
    query_idx, target_idx = hungarian_match(cost)
    assert sorted(zip(query_idx.tolist(), target_idx.tolist(), strict=True)) == [(0, 1), (1, 2)]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_cost_raises(bad):
    cost = torch.zeros(3, 2)
    cost[1, 0] = bad
    with pytest.raises(ValueError, match="cost"):
        hungarian_match(cost)


@pytest.mark.parametrize("cost", [torch.zeros(3), torch.zeros(2, 2, 2), [[0.0]], torch.zeros(2, 2, dtype=torch.int64)])
def test_bad_cost_raises(cost):
    with pytest.raises(ValueError, match="cost"):
        hungarian_match(cost)


def random_cxcywh(n: int, generator: torch.Generator) -> torch.Tensor:
    centres = 0.2 + 0.6 * torch.rand(n, 2, generator=generator)
    sizes = 0.05 + 0.3 * torch.rand(n, 2, generator=generator)
    return torch.cat([centres, sizes], 1)


def test_detr_cost_matches_its_definition():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 4, generator=generator)  # 3 classes and "no object"
    pred, true = random_cxcywh(6, generator), random_cxcywh(3, generator)
    labels = torch.tensor([2, 0, 2])
    cost = detr_match_cost(logits, pred, labels, true)
    probabilities = logits.softmax(-1)
    giou = generalized_box_iou(box_convert(pred, "cxcywh", "xyxy"), box_convert(true, "cxcywh", "xyxy"))
    for q in range(6):
        for g in range(3):
            expected = (-probabilities[q, labels[g]] + 5 * (pred[q] - true[g]).abs().sum() - 2 * giou[q, g]).item()
            assert cost[q, g].item() == pytest.approx(expected, abs=1e-5)
    assert not cost.requires_grad


def test_detr_cost_matching_recovers_a_permutation():
    """Predictions that are the targets in shuffled order (plus empty slots) are matched back exactly."""
    generator = torch.Generator().manual_seed(2)
    true, labels = random_cxcywh(4, generator), torch.tensor([0, 1, 2, 1])
    perm = torch.tensor([5, 2, 0, 3])  # target g sits at query perm[g]
    pred = random_cxcywh(6, generator)
    pred[perm] = true
    logits = torch.full((6, 4), -5.0)
    logits[:, 3] = 5.0  # "no object" everywhere ...
    logits[perm, labels] = 5.0  # ... except at the true objects
    logits[perm, 3] = -5.0
    query_idx, target_idx = hungarian_match(detr_match_cost(logits, pred, labels, true))
    assert torch.equal(target_idx, torch.arange(4)) and torch.equal(query_idx, perm)


def test_detr_cost_empty_targets_and_bad_labels():
    logits, pred = torch.randn(5, 4), random_cxcywh(5, torch.Generator().manual_seed(3))
    assert detr_match_cost(logits, pred, torch.zeros(0, dtype=torch.int64), torch.zeros(0, 4)).shape == (5, 0)
    with pytest.raises(ValueError, match="target_labels"):
        detr_match_cost(logits, pred, torch.tensor([3]), pred[:1])  # 3 is "no object", not a class
    with pytest.raises(ValueError, match="pred_boxes"):
        detr_match_cost(logits, pred[:4], torch.tensor([0]), pred[:1])
    with pytest.raises(ValueError, match="l1_weight"):
        detr_match_cost(logits, pred, torch.tensor([0]), pred[:1], l1_weight=-1.0)
