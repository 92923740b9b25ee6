"""Video-level models: parity with their defining formulas, gradients, fusion structure, and training
with vclib.train.fit and binary cross-entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from vclib.data import make_loader
from vclib.data.youtube8m import SyntheticConfig, load_youtube8m
from vclib.train import fit, predict
from vclib.video import FusionMLP, LogisticModel, MoeModel
from vclib.video.metrics import gap


def moe_probabilities(model: MoeModel, x: torch.Tensor) -> torch.Tensor:
    """The starter code's formula: p = sum_m softmax(gates)_m * sigmoid(expert_m), dummy gate dropped."""
    classes, mixtures = model.num_classes, model.num_mixtures
    gates = torch.softmax(model.gates(x).reshape(-1, mixtures + 1), dim=1)  # (B*C, M+1)
    experts = torch.sigmoid(model.experts(x).reshape(-1, mixtures))  # (B*C, M)
    return (gates[:, :mixtures] * experts).sum(dim=1).reshape(-1, classes)  # (B, C)


def test_logistic_is_one_linear_layer():
    model = LogisticModel(12, 5)
    x = torch.randn(7, 12)
    torch.testing.assert_close(model(x), F.linear(x, model.linear.weight, model.linear.bias))
    with pytest.raises(ValueError, match=r"features must have shape \(\*, 12\)"):
        model(torch.randn(7, 11))
    with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
        LogisticModel(12, 0)


@pytest.mark.parametrize("mixtures", [1, 2, 4])
def test_moe_logits_match_the_mixture_formula(mixtures):
    model = MoeModel(10, 6, num_mixtures=mixtures).double()
    x = torch.randn(9, 10, dtype=torch.float64)
    torch.testing.assert_close(torch.sigmoid(model(x)), moe_probabilities(model, x))


def test_moe_logits_stay_finite_where_probabilities_saturate():
    model = MoeModel(4, 3).double()
    x = 300 * torch.randn(16, 4, dtype=torch.float64)
    logits = model(x)
    assert torch.isfinite(logits).all()
    p = moe_probabilities(model, x)
    confident = (p > 1e-6) & (p < 1 - 1e-6)
    torch.testing.assert_close(torch.sigmoid(logits)[confident], p[confident])


def test_moe_gradients():
    model = MoeModel(5, 3, num_mixtures=2).double()
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,))


def test_moe_checks_arguments():
    with pytest.raises(ValueError, match="num_mixtures must be an int >= 1"):
        MoeModel(8, 4, num_mixtures=0)
    with pytest.raises(ValueError, match=r"features must have shape \(\*, 8\)"):
        MoeModel(8, 4)(torch.randn(2, 9))


def test_late_fusion_adds_per_modality_evidence_early_fusion_does_not():
    torch.manual_seed(1)
    rgb, audio, other_audio = torch.randn(6, 16), torch.randn(6, 8), torch.randn(6, 8)
    other_rgb = torch.randn(6, 16)
    for fusion, additive in (("late", True), ("early", False)):
        model = FusionMLP(5, hidden_size=12, fusion=fusion, rgb_dim=16, audio_dim=8).eval()
        effect = model(rgb, audio) - model(rgb, other_audio)  # what changing the audio does...
        effect_elsewhere = model(other_rgb, audio) - model(other_rgb, other_audio)  # ...for other rgb
        assert model(rgb, audio).shape == (6, 5)
        assert torch.allclose(effect, effect_elsewhere, atol=1e-6) == additive


def test_fusion_mlp_checks_inputs():
    model = FusionMLP(5, hidden_size=8, rgb_dim=16, audio_dim=8)
    with pytest.raises(ValueError, match=r"audio must have shape \(2, 8\)"):
        model(torch.randn(2, 16), torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"audio must have shape \(2, 8\), got \(3, 8\)"):
        model(torch.randn(2, 16), torch.randn(3, 8))
    with pytest.raises(ValueError, match="fusion must be one of"):
        FusionMLP(5, fusion="middle")


def test_moe_separates_two_looks_that_logistic_cannot():
    """Class present when |x_0| is large: both looks (x_0 > 0 and x_0 < 0) need the gate."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(800, 2, generator=generator)
    y = (x[:, :1].abs() > 1.0).float()  # (N, 1)
    dataset = TensorDataset(x, y)
    results = {}
    for name, model in (("logistic", LogisticModel(2, 1)), ("moe", MoeModel(2, 1, num_mixtures=2))):
        torch.manual_seed(0)
        fit(model, make_loader(dataset, 100, shuffle=True), epochs=20, optimizer=torch.optim.Adam(
            model.parameters(), lr=0.05), loss_fn=F.binary_cross_entropy_with_logits, progress_bar=False)
        outputs, targets = predict(model, make_loader(dataset, 800), progress_bar=False)
        results[name] = gap(outputs, targets, top_k=1)
    assert results["moe"] > 0.9
    assert results["logistic"] < 0.6


TINY = SyntheticConfig(num_classes=12, train_videos=300, validate_videos=100, test_videos=10,
                       videos_per_shard=100, num_topics=3, signal=1.0)


@pytest.mark.parametrize(("name", "modality"), [("logistic", "both"), ("moe", "both"), ("early", "split"),
                                                  ("late", "split")])
def test_each_model_trains_with_fit_on_streamed_shards(tmp_path, name, modality):
    train = load_youtube8m("train", data_dir=tmp_path, modality=modality, shuffle=True, synthetic=TINY)
    validate = load_youtube8m("validate", data_dir=tmp_path, modality=modality, synthetic=TINY)
    model = {"logistic": lambda: LogisticModel(1152, 12), "moe": lambda: MoeModel(1152, 12),
             "early": lambda: FusionMLP(12, hidden_size=32, fusion="early"),
             "late": lambda: FusionMLP(12, hidden_size=32, fusion="late")}[name]()
    history = fit(model, DataLoader(train, batch_size=50), epochs=4, val_loader=DataLoader(validate, 50),
                  loss_fn=F.binary_cross_entropy_with_logits, metrics={"gap": lambda s, y: gap(s, y, 5)},
                  optimizer=torch.optim.Adam(model.parameters(), lr=3e-3), progress_bar=False)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_gap"] > history[0]["val_gap"] - 0.05 and history[-1]["val_gap"] > 0.3


def test_prediction_drawing_marks_true_labels_and_lists_missed_ones():
    import matplotlib.pyplot as plt

    from vclib.video.browser import HIT, MISS, draw_predictions, prediction_browser

    scores = torch.tensor([3.0, 2.0, 1.0, -1.0, -2.0])
    labels = torch.tensor([0, 1, 0, 0, 1])
    fig, ax = plt.subplots()
    draw_predictions(ax, scores, labels, "v", top_k=3)
    colours = [bar.get_facecolor() for bar in ax.patches]
    assert colours == [plt.matplotlib.colors.to_rgba(c) for c in (MISS, HIT, MISS)]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["class 0", "class 1", "class 2"]
    assert "1/2 labels in top 3" in ax.get_title()
    assert any("class 4" in text.get_text() for text in ax.texts)
    with pytest.raises(ValueError, match="same videos"):
        prediction_browser(torch.randn(3, 5), torch.zeros(3, 5), ["a", "b"])
