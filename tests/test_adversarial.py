"""FGSM and PGD: closed forms, the eps-ball, clamping, mode handling, bad input, and torchattacks parity."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vclib.adversarial import accuracy_under_attack, adversarial_fit, eval_mode, fgsm, input_gradient, pgd


class ModeRecorder(nn.Module):
    """A small CNN with dropout and batch norm that records the mode it was called in."""

    def __init__(self, channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.dropout = nn.Dropout(0.5)
        self.head = nn.LazyLinear(classes)
        self.seen_modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen_modes.append(self.training)
        return self.head(self.dropout(self.features(x).flatten(1)))


def make_batch(batch: int = 5, channels: int = 1, height: int = 9, width: int = 7, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, channels, height, width, generator=generator)
    targets = torch.randint(0, 10, (batch,), generator=generator)
    return images, targets


def make_model(channels: int = 1, seed: int = 0) -> ModeRecorder:
    torch.manual_seed(seed)
    model = ModeRecorder(channels)
    model(torch.rand(2, channels, 9, 7))  # materialise the lazy layer
    model.seen_modes.clear()
    return model


@pytest.mark.exercise("vclib.adversarial.attacks.fgsm")
def test_fgsm_equals_closed_form() -> None:
    model = make_model()
    images, targets = make_batch()
    eps = 0.1
    model.eval()
    x = images.clone().requires_grad_(True)
    F.cross_entropy(model(x), targets).backward()
    expected = (images + eps * x.grad.sign()).clamp(0, 1)
    torch.testing.assert_close(fgsm(model, images, targets, eps), expected)


@pytest.mark.parametrize("shape", [(1, 1, 9, 7), (3, 3, 9, 7), (6, 2, 9, 7)])
@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_stays_in_ball_and_range(shape: tuple[int, int, int, int], random_start: bool) -> None:
    batch, channels = shape[0], shape[1]
    model = make_model(channels)
    images, targets = make_batch(batch, channels)
    eps = 0.07
    adversarial = pgd(model, images, targets, eps=eps, alpha=0.05, steps=5, random_start=random_start)
    assert adversarial.shape == images.shape
    assert (adversarial - images).abs().max() <= eps + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert not adversarial.requires_grad


def test_fgsm_stays_in_ball_and_clamps() -> None:
    model = make_model()
    images, targets = make_batch()
    images[0, 0, 0, :] = 0.0  # pixels at the edges of the range get clamped, not pushed out
    images[1, 0, 0, :] = 1.0
    eps = 0.3
    adversarial = fgsm(model, images, targets, eps)
    assert (adversarial - images).abs().max() <= eps + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    moved = (adversarial - images).abs()
    interior_moved = moved[(images > eps) & (images < 1 - eps) & (moved > 0)]
    torch.testing.assert_close(interior_moved, torch.full_like(interior_moved, eps))


def test_pgd_one_full_step_without_random_start_is_fgsm() -> None:
    model = make_model(3)
    images, targets = make_batch(4, 3)
    eps = 0.05
    expected = fgsm(model, images, targets, eps)
    actual = pgd(model, images, targets, eps=eps, alpha=eps, steps=1, random_start=False)
    torch.testing.assert_close(actual, expected)


def test_zero_eps_returns_clean_images() -> None:
    model = make_model()
    images, targets = make_batch()
    torch.testing.assert_close(fgsm(model, images, targets, 0.0), images)
    torch.testing.assert_close(pgd(model, images, targets, eps=0.0, alpha=0.1, steps=3), images)


def test_random_start_is_uniform_in_the_ball() -> None:
    """With alpha=0 PGD returns its random start: uniform on [-eps, eps] before clamping."""
    model = make_model()
    images = torch.full((64, 1, 9, 7), 0.5)
    targets = torch.zeros(64, dtype=torch.long)
    eps = 0.2
    generator = torch.Generator().manual_seed(1)
    start = pgd(model, images, targets, eps=eps, alpha=0.0, steps=1, generator=generator)
    noise = (start - images).flatten()
    assert noise.abs().max() <= eps
    assert abs(noise.mean().item()) < 0.01
    assert abs(noise.var().item() - eps**2 / 3) < 0.001  # variance of U(-eps, eps)
    generator = torch.Generator().manual_seed(1)
    again = pgd(model, images, targets, eps=eps, alpha=0.0, steps=1, generator=generator)
    torch.testing.assert_close(start, again)


def test_random_start_clamps_to_image_range() -> None:
    model = make_model()
    images = torch.zeros(8, 1, 9, 7)
    targets = torch.zeros(8, dtype=torch.long)
    start = pgd(model, images, targets, eps=0.3, alpha=0.0, steps=1)
    assert start.min() >= 0.0
    assert (start == 0).float().mean() > 0.3  # about half of the draws were negative and got clamped


def linear_digits(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A linear classifier trained to tell dark images (class 0) from bright ones (class 1)."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, 2, (256,), generator=generator)
    brightness = (0.3 + 0.4 * targets.float()).view(-1, 1, 1, 1)  # (256, 1, 1, 1)
    images = (brightness + 0.05 * torch.randn(256, 1, 6, 6, generator=generator)).clamp(0, 1)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        F.cross_entropy(model(images), targets).backward()
        optimizer.step()
    return model, images, targets


def test_attacks_fool_a_trained_linear_model() -> None:
    model, images, targets = linear_digits()
    with torch.no_grad():
        assert (model(images).argmax(1) == targets).float().mean() > 0.98
    for adversarial in (fgsm(model, images, targets, 0.25),
                        pgd(model, images, targets, eps=0.25, alpha=0.05, steps=10)):
        with torch.no_grad():
            assert (model(adversarial).argmax(1) == targets).float().mean() < 0.05


def test_targeted_pgd_moves_predictions_to_the_target() -> None:
    model, images, targets = linear_digits()
    targets = 1 - targets
    adversarial = pgd(model, images, targets, eps=0.25, alpha=0.05, steps=10, targeted=True)
    with torch.no_grad():
        assert (model(adversarial).argmax(1) == targets).float().mean() > 0.95
        assert F.cross_entropy(model(adversarial), targets) < F.cross_entropy(model(images), targets)


@pytest.mark.parametrize("attack", [partial(fgsm, eps=0.1), partial(pgd, eps=0.1, alpha=0.03, steps=3)])
@pytest.mark.parametrize("start_training", [True, False])
def test_model_runs_in_eval_mode_and_mode_is_restored(attack, start_training: bool) -> None:
    model = make_model()
    model.train(start_training)
    running_mean = model.features[1].running_mean.clone()
    images, targets = make_batch()
    attack(model, images, targets)
    assert model.seen_modes and not any(model.seen_modes)
    assert all(module.training == start_training for module in model.modules())
    torch.testing.assert_close(model.features[1].running_mean, running_mean)  # batch norm untouched
    assert all(parameter.grad is None for parameter in model.parameters())


def test_mixed_submodule_modes_are_restored() -> None:
    model = make_model()
    model.train()
    model.features.eval()  # a frozen backbone inside a training model
    with eval_mode(model):
        assert not any(module.training for module in model.modules())
    assert model.training and model.dropout.training
    assert not model.features.training and not model.features[1].training


def test_mode_is_restored_when_the_model_raises() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(5, 2))  # wrong input size: forward raises
    model.train()
    images, targets = make_batch()
    with pytest.raises(RuntimeError):
        fgsm(model, images, targets, 0.1)
    assert model.training


@pytest.mark.parametrize(
    ("images", "targets", "match"),
    [
        (torch.rand(2, 1, 4, 4) * 2, torch.zeros(2, dtype=torch.long), r"images must lie in \[0.0, 1.0\]"),
        (torch.rand(2, 1, 4, 4) - 0.5, torch.zeros(2, dtype=torch.long), r"images must lie in \[0.0, 1.0\]"),
        (torch.rand(2, 16), torch.zeros(2, dtype=torch.long), "images must have 4 dimensions"),
        ((torch.rand(2, 1, 4, 4) * 255).to(torch.uint8), torch.zeros(2, dtype=torch.long), "floating-point"),
        (torch.rand(2, 1, 4, 4), torch.zeros(2), "targets must have dtype torch.int64"),
        (torch.rand(2, 1, 4, 4), torch.zeros(3, dtype=torch.long), r"expected shape \(2,\)"),
    ],
)
def test_bad_inputs_raise(images: torch.Tensor, targets: torch.Tensor, match: str) -> None:
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(ValueError, match=match):
        fgsm(model, images, targets, 0.1)
    with pytest.raises(ValueError, match=match):
        pgd(model, images, targets, eps=0.1, alpha=0.01, steps=2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eps": -0.1}, "eps must be a number >= 0, got -0.1"),
        ({"alpha": -1.0}, "alpha must be a number >= 0"),
        ({"steps": 0}, "steps must be an int >= 1, got 0"),
        ({"steps": 2.5}, "steps must be an int >= 1"),
        ({"eps": "0.1"}, "eps must be a number >= 0"),
    ],
)
def test_bad_attack_parameters_raise(kwargs: dict, match: str) -> None:
    model = make_model()
    images, targets = make_batch()
    arguments = {"eps": 0.1, "alpha": 0.01, "steps": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        pgd(model, images, targets, **arguments)


def test_input_gradient_matches_autograd_and_leaves_parameters_alone() -> None:
    model = make_model().eval()
    images, targets = make_batch()
    x = images.clone().requires_grad_(True)
    F.cross_entropy(model(x), targets).backward()
    expected = x.grad.clone()
    model.zero_grad(set_to_none=True)
    torch.testing.assert_close(input_gradient(model, images, targets), expected)
    assert all(parameter.grad is None for parameter in model.parameters())


def test_accuracy_under_attack() -> None:
    model, images, targets = linear_digits()
    loader = DataLoader(TensorDataset(images, targets), batch_size=50)
    with torch.no_grad():
        clean = (model(images).argmax(1) == targets).float().mean().item()
    assert accuracy_under_attack(model, loader) == pytest.approx(clean)
    attack = partial(fgsm, eps=0.1)
    adversarial = torch.cat([attack(model, x, y) for x, y in loader])
    with torch.no_grad():
        expected = (model(adversarial).argmax(1) == targets).float().mean().item()
    assert accuracy_under_attack(model, loader, attack) == pytest.approx(expected)
    with pytest.raises(ValueError, match="empty loader"):
        accuracy_under_attack(model, [])


def test_adversarial_fit_improves_robust_accuracy() -> None:
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 2, (256,), generator=generator)
    images = ((0.3 + 0.4 * targets.float()).view(-1, 1, 1, 1)
              + 0.05 * torch.randn(256, 1, 6, 6, generator=generator)).clamp(0, 1)
    loader = DataLoader(TensorDataset(images, targets), batch_size=64, shuffle=True, generator=generator)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    attack = partial(pgd, eps=0.1, alpha=0.04, steps=3)
    before = accuracy_under_attack(model, loader, attack)
    history = adversarial_fit(model, loader, attack, epochs=15,
                              optimizer=torch.optim.Adam(model.parameters(), lr=0.05), progress_bar=False)
    assert [record["epoch"] for record in history] == list(range(1, 16))
    assert set(history[0]) == {"epoch", "train_loss", "train_accuracy", "seconds"}
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert model.training
    assert accuracy_under_attack(model, loader, attack) > max(before, 0.9)


def test_adversarial_fit_rejects_bad_epochs() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        adversarial_fit(model, [], partial(fgsm, eps=0.1), epochs=0)


# ----------------------------------------------------------------------------------------------
# Parity with torchattacks, a widely used reference implementation (optional dev dependency).


@pytest.mark.exercise("vclib.adversarial.attacks.fgsm")
def test_fgsm_matches_torchattacks() -> None:
    torchattacks = pytest.importorskip("torchattacks")
    model = make_model(3).train()
    images, targets = make_batch(6, 3)
    expected = torchattacks.FGSM(model, eps=0.1)(images, targets)
    torch.testing.assert_close(fgsm(model, images, targets, 0.1), expected)


@pytest.mark.exercise("vclib.adversarial.attacks.pgd_step")
@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_matches_torchattacks(random_start: bool, targeted: bool) -> None:
    torchattacks = pytest.importorskip("torchattacks")
    model = make_model(3).train()
    images, targets = make_batch(6, 3)
    reference = torchattacks.PGD(model, eps=0.08, alpha=0.02, steps=7, random_start=random_start)
    if targeted:
        reference.set_mode_targeted_by_label(quiet=True)
    torch.manual_seed(123)  # both draw the random start from torch's global generator, in the same way
    expected = reference(images, targets)
    torch.manual_seed(123)
    actual = pgd(model, images, targets, eps=0.08, alpha=0.02, steps=7,
                 random_start=random_start, targeted=targeted)
    torch.testing.assert_close(actual, expected)
    assert model.training


def test_attack_grid_figure_and_widget() -> None:
    from vclib.adversarial import explorer

    model, images, targets = linear_digits()
    model = nn.Sequential(nn.Upsample(size=(6, 6)), model)  # any (B, 1, H, W) classifier
    figure = explorer.draw_attack_grid(model, images[:4], targets[:4], eps=0.25, attack="FGSM")
    assert len(figure.axes) == 12  # clean, perturbation, adversarial for 4 images
    perturbation = torch.as_tensor(figure.axes[4].images[0].get_array())
    assert perturbation.min() >= 0 and perturbation.max() <= 1  # magnified into the grey range
    adversarial_titles = [ax.get_title() for ax in figure.axes[8:]]
    expected = model(fgsm(model, images[:4], targets[:4], 0.25)).argmax(1)
    assert adversarial_titles == [f"pred {int(p)}" for p in expected]
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for upper, lower in zip(figure.axes[:8], figure.axes[4:], strict=True):  # a panel and the one below it
        assert lower.title.get_window_extent(renderer).y1 <= upper.get_window_extent(renderer).y0  # no overlap
    assert len(explorer.draw_attack_grid(model, images[:3], targets[:3], eps=0.0).axes) == 9
    with pytest.raises(ValueError, match="attack must be one of"):
        explorer.draw_attack_grid(model, images[:2], targets[:2], eps=0.1, attack="CW")
    explorer.attack_explorer(model, images[:2], targets[:2])
