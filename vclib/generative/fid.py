"""The Fréchet distance between two sets of images, measured on a classifier's features.

Fit a Gaussian to the features of each set, N(m_a, C_a) and N(m_b, C_b); the Fréchet (2-Wasserstein)
distance between the two Gaussians is

    d^2 = ||m_a - m_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))

With Inception-v3 features this is the FID of Heusel et al. (2017). For digits, the penultimate layer
of a digit classifier is a better-suited feature space: it is what the classifier uses to tell digits
apart, so a generator that draws unconvincing or too few kinds of digits is far from the real data.
"""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_positive_int, check_tensor
from vclib.train import eval_mode


class ClassifierFeatures(nn.Module):
    """The input of a classifier's last ``nn.Linear`` layer, as a feature extractor.

    Also usable as ``feature=`` of ``torchmetrics.image.fid.FrechetInceptionDistance``.

    Args:
        classifier: maps ``(B, C, H, W)`` images to ``(B, K)`` logits and contains an ``nn.Linear``.
        layer: the layer whose input is the feature; default: the last ``nn.Linear`` in ``classifier``.
    """

    def __init__(self, classifier: nn.Module, layer: nn.Linear | None = None) -> None:
        super().__init__()
        if layer is None:
            linears = [module for module in classifier.modules() if isinstance(module, nn.Linear)]
            if not linears:
                kind = type(classifier).__name__
                raise ValueError(f"classifier must contain an nn.Linear layer, got {kind} without one")
            layer = linears[-1]
        self.classifier = classifier
        self.layer = layer
        self.num_features = layer.in_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, C, H, W)`` -> features ``(B, num_features)``."""
        captured: list[torch.Tensor] = []
        handle = self.layer.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
        try:
            self.classifier(images)
        finally:
            handle.remove()
        return captured[-1].flatten(1)  # (B, num_features)


@torch.no_grad()
def extract_features(extractor: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Features of ``images (N, C, H, W)`` in eval mode, batch by batch: ``(N, D)`` float64 on the CPU."""
    check_tensor(images, "images", ndim=4, floating=True)
    check_positive_int(batch_size, "batch_size")
    device = next(extractor.parameters()).device
    with eval_mode(extractor):
        return torch.cat([extractor(chunk.to(device)).cpu().double() for chunk in images.split(batch_size)])


def gaussian_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of ``features (N, D)``, N >= 2, float64 on the CPU."""
    check_tensor(features, "features", ndim=2, floating=True)
    if features.shape[0] < 2:
        raise ValueError(f"features must hold at least 2 samples, got shape {tuple(features.shape)}")
    features = features.detach().cpu().double()  # float64 on the CPU (MPS has no float64)
    mean = features.mean(dim=0)  # (D,)
    centred = features - mean  # (N, D)
    covariance = centred.T @ centred / (features.shape[0] - 1)  # (D, D)
    return mean, covariance


def trace_sqrt_product(cov_a: torch.Tensor, cov_b: torch.Tensor) -> torch.Tensor:
    """``Tr((C_a C_b)^(1/2))`` for symmetric positive semi-definite ``(D, D)`` matrices.

    C_a C_b is not symmetric, but it is similar to the symmetric PSD matrix S C_b S with S = C_a^(1/2):
    both have the same eigenvalues, so the trace is the sum of the square roots of S C_b S's
    eigenvalues, computed with the stable symmetric eigensolver. Round-off can make tiny eigenvalues
    negative; they are clipped at zero.
    """
    eigenvalues_a, eigenvectors_a = torch.linalg.eigh(cov_a)
    sqrt_a = eigenvectors_a @ torch.diag(eigenvalues_a.clamp(min=0).sqrt()) @ eigenvectors_a.T  # (D, D)
    middle = sqrt_a @ cov_b @ sqrt_a  # (D, D), symmetric PSD
    middle = (middle + middle.T) / 2
    return torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to ``features_a (N, D)`` and ``features_b (M, D)``."""
    for features, name in ((features_a, "features_a"), (features_b, "features_b")):
        check_tensor(features, name, ndim=2, floating=True)
        if features.shape[0] < 2:
            raise ValueError(f"{name} must hold at least 2 samples, got shape {tuple(features.shape)}")
    if features_a.shape[1] != features_b.shape[1]:
        raise ValueError(
            f"features_b must have {features_a.shape[1]} features like features_a, "
            f"got shape {tuple(features_b.shape)}"
        )
    mean_a, cov_a = gaussian_statistics(features_a)
    mean_b, cov_b = gaussian_statistics(features_b)
    mean_term = (mean_a - mean_b).pow(2).sum()
    distance = mean_term + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt_product(cov_a, cov_b)
    return distance.item()


def classifier_fid(extractor: nn.Module, images_a: torch.Tensor, images_b: torch.Tensor,
                   batch_size: int = 500) -> float:
    """Fréchet distance between image sets ``(N, C, H, W)`` and ``(M, C, H, W)`` on ``extractor``'s
    features, e.g. :class:`ClassifierFeatures` of a digit classifier."""
    return frechet_distance(extract_features(extractor, images_a, batch_size),
                            extract_features(extractor, images_b, batch_size))
