"""Fréchet distance on classifier features: torchmetrics' FID with the same extractor, and closed forms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vclib.generative import ClassifierFeatures, classifier_fid, extract_features, frechet_distance
from vclib.generative.fid import gaussian_statistics, trace_sqrt_product


def small_classifier(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(),  # (B, 4 * 13 * 13)
        nn.Linear(4 * 13 * 13, 12), nn.ReLU(), nn.Dropout(0.3), nn.Linear(12, 10),
    )


def test_features_are_the_input_of_the_last_linear_layer() -> None:
    classifier = small_classifier()
    extractor = ClassifierFeatures(classifier)
    assert extractor.num_features == 12
    images = torch.rand(5, 1, 28, 28)
    classifier.eval()
    expected = classifier[:6](images)  # everything before the last Linear
    torch.testing.assert_close(extractor(images), expected)
    first = ClassifierFeatures(classifier, layer=classifier[3])
    torch.testing.assert_close(first(images), classifier[:3](images))
    with pytest.raises(ValueError, match="classifier must contain an nn.Linear layer"):
        ClassifierFeatures(nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_extract_features_batches_in_eval_mode_and_restores_the_mode() -> None:
    extractor = ClassifierFeatures(small_classifier()).train()
    images = torch.rand(7, 1, 28, 28)
    features = extract_features(extractor, images, batch_size=3)
    assert features.shape == (7, 12) and features.dtype == torch.float64
    assert extractor.training and extractor.classifier.training
    extractor.eval()
    with torch.no_grad():
        torch.testing.assert_close(features, extractor(images).double())


def test_matches_torchmetrics_fid_with_the_same_extractor() -> None:
    fid_module = pytest.importorskip("torchmetrics.image.fid")
    extractor = ClassifierFeatures(small_classifier()).eval()
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(120, 1, 28, 28, generator=generator)
    fake = torch.rand(90, 1, 28, 28, generator=generator).pow(2)  # darker images
    metric = fid_module.FrechetInceptionDistance(feature=extractor, normalize=True)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    expected = metric.compute().item()
    ours = classifier_fid(extractor, real, fake)
    assert ours == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert ours > 0


def test_closed_forms() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(500, 6, generator=generator, dtype=torch.float64)
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0, 0.0, 3.0], dtype=torch.float64)
    assert frechet_distance(features, features + shift) == pytest.approx(shift.pow(2).sum().item(), rel=1e-8)
    # One dimension: (m_a - m_b)^2 + (s_a - s_b)^2.
    a = torch.randn(1000, 1, generator=generator, dtype=torch.float64)
    b = 3.0 * torch.randn(1000, 1, generator=generator, dtype=torch.float64) + 1.0
    expected = (a.mean() - b.mean()).pow(2) + (a.std() - b.std()).pow(2)
    assert frechet_distance(a, b) == pytest.approx(expected.item(), rel=1e-8)


def test_trace_sqrt_product_against_eigenvalues_of_the_product() -> None:
    generator = torch.Generator().manual_seed(1)
    factor_a = torch.randn(5, 5, generator=generator, dtype=torch.float64)
    factor_b = torch.randn(5, 3, generator=generator, dtype=torch.float64)  # rank-deficient covariance
    cov_a, cov_b = factor_a @ factor_a.T, factor_b @ factor_b.T
    expected = torch.linalg.eigvals(cov_a @ cov_b).real.clamp(min=0).sqrt().sum()
    torch.testing.assert_close(trace_sqrt_product(cov_a, cov_b), expected)
    torch.testing.assert_close(trace_sqrt_product(cov_a, cov_a), cov_a.trace())  # Tr((C^2)^(1/2)) = Tr C


def test_gaussian_statistics_match_torch_cov() -> None:
    features = torch.randn(40, 3, generator=torch.Generator().manual_seed(2))
    mean, covariance = gaussian_statistics(features)
    torch.testing.assert_close(mean, features.double().mean(0))
    torch.testing.assert_close(covariance, torch.cov(features.double().T))


def test_more_features_than_samples_is_finite() -> None:
    generator = torch.Generator().manual_seed(3)
    a = torch.randn(10, 50, generator=generator)
    b = torch.randn(10, 50, generator=generator) + 1
    distance = frechet_distance(a, b)
    assert distance == distance and distance > 0  # not NaN


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (torch.randn(10, 3), torch.randn(10, 4), "features_b must have 3 features like features_a"),
        (torch.randn(1, 3), torch.randn(10, 3), "features_a must hold at least 2 samples"),
        (torch.randn(10), torch.randn(10, 3), "features_a must have 2 dimensions"),
        (torch.randn(10, 3), torch.ones(10, 3, dtype=torch.long), "features_b must have a floating-point"),
    ],
)
def test_bad_inputs_raise(a: torch.Tensor, b: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        frechet_distance(a, b)
