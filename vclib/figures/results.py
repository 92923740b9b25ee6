"""Result figures from small seeded runs on the embedded data (each says in its title what was trained).

The short trainings are cached per process, so the VAE that :mod:`vclib.figures.generative_3d` draws is the one
whose traversal is shown here, and ``make_figures`` trains it once.
"""

from __future__ import annotations

from functools import cache

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch.utils.data import TensorDataset

from vclib.data import make_loader
from vclib.figures.drawing import COLOURS

VAE_EPOCHS, CNN_EPOCHS, POINTNET_EPOCHS, GAN_STEPS = 8, 3, 6, 600


@cache
def digits(split: str):
    """The embedded MNIST subset (``ImageDataset``: images ``(N, 1, 28, 28)`` in [0, 1], labels ``(N,)``)."""
    from vclib.data.mnist import load_mnist

    return load_mnist(split, source="embedded")


@cache
def trained_vae():
    """P4's ``ConvVAE`` (latent 8, width 32) after :data:`VAE_EPOCHS` epochs of the course loss, beta = 0.5."""
    from vclib import generative, train

    torch.manual_seed(0)
    images = digits("train").images
    vae = generative.ConvVAE(latent_dim=8, width=32)
    loader = make_loader(TensorDataset(images, images), batch_size=32, shuffle=True)
    train.fit(vae, loader, epochs=VAE_EPOCHS, loss_fn=generative.beta_vae_objective(0.5),
              optimizer=torch.optim.Adam(vae.parameters(), lr=2e-3), progress_bar=False)
    return vae.eval()


@cache
def trained_gan():
    """P4's DCGAN pair after :data:`GAN_STEPS` steps (batch 64, non-saturating loss, DCGAN's Adam)."""
    from vclib import generative

    torch.manual_seed(0)
    generator, discriminator = generative.Generator(), generative.Discriminator()
    loader = make_loader(TensorDataset(digits("train").images), batch_size=64, shuffle=True)
    generative.train_gan(generator, discriminator, loader, epochs=100, max_steps=GAN_STEPS, progress_bar=False)
    return generator.eval(), discriminator.eval()


@cache
def trained_cnn() -> tuple[torch.nn.Module, float]:
    """P1's ``DigitCNN`` after :data:`CNN_EPOCHS` epochs, and its test accuracy."""
    from vclib import train
    from vclib.basics import DigitCNN

    torch.manual_seed(0)
    cnn = DigitCNN()
    train.fit(cnn, make_loader(digits("train").tensors(), batch_size=64, shuffle=True), epochs=CNN_EPOCHS,
              progress_bar=False)
    cnn.eval()
    test = digits("test")
    with torch.no_grad():
        accuracy = (cnn(test.images).argmax(1) == test.labels).float().mean().item()
    return cnn, accuracy


def vae_results() -> Figure:
    """``4_VAE2.png``: latent traversals, prior samples and the test codes of the short-trained VAE."""
    vae = trained_vae()
    test = digits("test")
    with torch.no_grad():
        mu, _ = vae.encode(test.images)  # (N, 8)
        base = mu[test.labels == 3][:1]  # (1, 8): the code of the first test three
        values = torch.linspace(-2.5, 2.5, 9)
        codes = base.repeat(vae.latent_dim * len(values), 1)  # (8 * 9, 8)
        for dim in range(vae.latent_dim):
            codes[dim * len(values):(dim + 1) * len(values), dim] = values
        traversal = vae.decode(codes)  # (72, 1, 28, 28)
        samples = vae.sample(32, generator=torch.Generator().manual_seed(0))  # (32, 1, 28, 28)
    centred = mu - mu.mean(0)
    _, _, directions = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ directions[:2].T  # (N, 2)

    fig = plt.figure(figsize=(14, 5.4), layout="constrained")
    left, middle, right = fig.subfigures(1, 3, width_ratios=(1.1, 1.0, 1.0))
    ax = left.subplots()
    mosaic = traversal.reshape(vae.latent_dim, len(values), 28, 28).permute(0, 2, 1, 3).reshape(vae.latent_dim * 28, -1)
    ax.imshow(mosaic.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set(title="traversal: one latent coordinate from -2.5 to 2.5\n(the others fixed at a test three's code)",
           xlabel="value of the coordinate", ylabel="latent coordinate")
    ax.set_xticks([14 + 28 * i for i in range(len(values))], [f"{v:.1f}" for v in values.tolist()])
    ax.set_yticks([14 + 28 * i for i in range(vae.latent_dim)], [f"z{i}" for i in range(vae.latent_dim)])
    ax = middle.subplots()
    grid = samples.reshape(4, 8, 28, 28).permute(0, 2, 1, 3).reshape(4 * 28, 8 * 28)
    ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set(title="32 samples: z ~ N(0, I), decoded", xticks=[], yticks=[])
    ax = right.subplots()
    scatter = ax.scatter(projected[:, 0], projected[:, 1], c=test.labels, cmap="tab10", s=5)
    ax.legend(*scatter.legend_elements(), title="digit", fontsize=8, title_fontsize=9, loc="upper right",
              ncols=2, markerscale=0.8)
    ax.set(title=f"latent space: means mu(x) of {len(test)} test digits\n(first two principal axes)",
           xlabel="principal axis 1", ylabel="principal axis 2")
    fig.suptitle(f"ConvVAE (vclib.generative), course beta-VAE loss with beta = 0.5, trained {VAE_EPOCHS} epochs "
                 f"on the 4,000 embedded training digits")
    return fig


def adversarial_examples() -> Figure:
    """``4_attacks.png``: FGSM on the short-trained ``DigitCNN``: images, perturbations and accuracy against eps."""
    from vclib.adversarial import fgsm

    cnn, clean_accuracy = trained_cnn()
    test = digits("test")
    first_of_each = [int((test.labels == digit).nonzero()[0]) for digit in range(10)]
    images, labels = test.images[first_of_each], test.labels[first_of_each]  # (10, 1, 28, 28): 0 to 9
    subset_images, subset_labels = test.images[:500], test.labels[:500]
    epsilons = [0.0, 0.05, 0.1, 0.2]
    fig = plt.figure(figsize=(15, 5.8), layout="constrained")
    grid_fig, curve_fig = fig.subfigures(1, 2, width_ratios=(2.6, 1.0))
    axes = grid_fig.subplots(len(epsilons), len(images))
    for row, eps in enumerate(epsilons):
        attacked = images if eps == 0 else fgsm(cnn, images, labels, eps)
        with torch.no_grad():
            predicted = cnn(attacked).argmax(1)
        for col in range(len(images)):
            ax = axes[row, col]
            ax.imshow(attacked[col, 0].detach().numpy(), cmap="gray", vmin=0, vmax=1)
            wrong = bool(predicted[col] != labels[col])
            ax.set_title(f"pred. {int(predicted[col])}", fontsize=10, color="crimson" if wrong else "black")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"eps = {eps}", fontsize=10)
    grid_fig.suptitle("FGSM: x + eps sign(grad_x CE), clipped to [0, 1] (red: wrong prediction)", fontsize=11)
    accuracies = []
    for eps in [0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25]:
        attacked = subset_images if eps == 0 else fgsm(cnn, subset_images, subset_labels, eps)
        with torch.no_grad():
            accuracies.append((eps, (cnn(attacked).argmax(1) == subset_labels).float().mean().item()))
    ax = curve_fig.subplots()
    ax.plot(*zip(*accuracies, strict=True), marker="o", color="crimson")
    ax.set(title="accuracy under FGSM\n(500 test digits)", xlabel="eps (pixel units)", ylabel="accuracy", ylim=(0, 1))
    ax.grid(True, alpha=0.3)
    fig.suptitle(f"DigitCNN (vclib.basics) trained {CNN_EPOCHS} epochs on the embedded digits, clean test accuracy "
                 f"{clean_accuracy:.3f}; attack: vclib.adversarial.fgsm")
    return fig


def yolo_assignment() -> Figure:
    """``2_yolo2.png``: which cell and anchor is responsible for each digit (k-means anchors, no training)."""
    from vclib.data.scenes import DigitScenes
    from vclib.detection import build_targets, collate_digit_detection, kmeans_anchors
    from vclib.detection.plots import plot_assignment

    train_scenes = DigitScenes("train", 300, size=96, source="embedded")
    test_scenes = DigitScenes("test", 40, size=96, source="embedded")
    box_sizes = torch.cat([b[:, 2:] - b[:, :2] for b in train_scenes.boxes])  # (N, 2)
    anchors = kmeans_anchors(box_sizes, 9, seed=0)
    strides = (4, 8, 16)
    for index in range(len(test_scenes)):
        images, targets = collate_digit_detection([test_scenes[index]])
        encoded = build_targets([t["boxes"] for t in targets], [t["labels"] for t in targets], anchors, strides, 96)
        if all(level["mask"].any() for level in encoded["levels"]):
            break
    fig = plot_assignment(images[0], encoded, class_names=[str(d) for d in range(10)])
    fig.set_size_inches(13, 5.0)
    fig.suptitle("YOLOv3 targets (vclib.detection.build_targets): each digit (yellow) is assigned to one cell "
                 "(cyan) at one stride\nand its best k-means anchor (magenta, dashed); target assignment only, "
                 "no trained detector", fontsize=11)
    for ax in fig.axes:
        ax.set_facecolor(COLOURS["data"])
    return fig


def representations_3d() -> Figure:
    """``5_3D_Representation.png``: one procedural chair as mesh, points, voxels, SDF slice and depth maps."""
    from vclib.data.shapes import ProceduralShapes
    from vclib.pointcloud.views import representations_static

    shapes = ProceduralShapes("test", num_per_class=1, num_points=2048, seed=0)
    index = shapes.class_names.index("chair")
    fig = representations_static(shapes.mesh(index), shapes.points[index], resolution=24,
                                 title="Five 3-D representations of one ProceduralShapes chair "
                                       "(vclib.pointcloud.representations)")
    fig.set_size_inches(15, 5.6)
    fig.tight_layout()
    return fig


@cache
def trained_pointnet() -> tuple[torch.nn.Module, float]:
    """P5's quick PointNet (global feature 128) after :data:`POINTNET_EPOCHS` epochs on 300 procedural
    shapes, and its accuracy on 100 test shapes."""
    from vclib import train
    from vclib.data.shapes import ProceduralShapes
    from vclib.pointcloud import pointnet
    from vclib.pointcloud.robustness import accuracy_on

    train_set = ProceduralShapes("train", num_per_class=30, num_points=1024, seed=0)
    test_set = ProceduralShapes("test", num_per_class=10, num_points=1024, seed=0)
    torch.manual_seed(0)
    model = pointnet.PointNet(len(train_set.class_names), emb_dims=128)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    train.fit(model, make_loader(train_set.tensors(), batch_size=32, shuffle=True, drop_last=True),
              epochs=POINTNET_EPOCHS, optimizer=optimizer, loss_fn=pointnet.pointnet_loss, progress_bar=False,
              scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, POINTNET_EPOCHS))
    model.eval()
    return model, accuracy_on(model, test_set.points, test_set.labels)


def critical_points() -> Figure:
    """``5_PointNet1.png``: the critical points and upper-bound shape of the short-trained PointNet on a chair."""
    from vclib.data.shapes import ProceduralShapes
    from vclib.pointcloud import pointnet, representations
    from vclib.pointcloud.views import critical_points_figure

    model, accuracy = trained_pointnet()
    shapes = ProceduralShapes("test", num_per_class=1, num_points=1024, seed=0)
    chair = shapes.points[shapes.class_names.index("chair")][None]  # (1, N, 3)
    critical = pointnet.critical_points(model, chair)[0]
    grid = representations.grid_points(20).reshape(-1, 3)  # (8000, 3) probes
    upper = grid[pointnet.upper_bound_shape(model, chair, grid)[0]]
    fig = critical_points_figure(chair[0], critical, upper)
    fig.set_size_inches(13, 4.8)
    fig.suptitle(f"PointNet (vclib.pointcloud.pointnet, global feature 128) trained {POINTNET_EPOCHS} epochs on 300 "
                 f"procedural shapes (test accuracy {accuracy:.2f}):\nthe points that win the max-pool, and every "
                 "probe point whose features stay below the chair's global feature", fontsize=11)
    fig.tight_layout()
    return fig
