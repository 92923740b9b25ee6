"""Architecture diagrams for P4 (VAE, GAN) and P5 (PointNet, PointCLIP), sizes read from vclib modules."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import nn

from vclib.figures.drawing import COLOURS, arrow, box, diagram, image_at, shape_text, side, trace_shapes
from vclib.figures.results import GAN_STEPS, VAE_EPOCHS, digits, trained_gan, trained_vae


def _layer_text(layer: nn.Module) -> str:
    """A short name for one layer: ``Conv2d 4x4 s2``, ``Linear``, ``ConvTranspose2d 4x4 s2``, ..."""
    name = type(layer).__name__
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        return f"{name}\n{layer.kernel_size[0]}x{layer.kernel_size[1]}, stride {layer.stride[0]}"
    return name


def _sequential_boxes(ax, model: nn.Module, prefix: str, inputs: tuple, xs: list[float], y: float, colour: str,
                      skip: tuple[type, ...] = (nn.ReLU, nn.LeakyReLU, nn.BatchNorm2d, nn.Sigmoid)) -> list[tuple]:
    """One box per layer of the ``nn.Sequential`` ``model.<prefix>`` (activations and norms folded into the
    previous box), labelled with the layer and its output shape; returns the boxes."""
    sequential = model.get_submodule(prefix)
    kept = [str(i) for i, layer in enumerate(sequential) if not isinstance(layer, skip)]
    shapes = trace_shapes(model, inputs, [f"{prefix}.{i}" for i in kept])
    rects = []
    for x, index in zip(xs, kept, strict=True):
        layer = sequential[int(index)]
        rect = box(ax, x, y, 1.65, 0.95, f"{_layer_text(layer)}\n{shape_text(shapes[f'{prefix}.{index}'][0])}",
                   colour, fontsize=9)
        if rects:
            arrow(ax, side(rects[-1], "right" if x > rects[-1][0] else "left"),
                  side(rect, "left" if x > rects[-1][0] else "right"))
        rects.append(rect)
    return rects


def vae_graph() -> Figure:
    """``4_VAE.png``: :class:`vclib.generative.ConvVAE`'s encoder, reparameterisation, decoder and loss."""
    vae = trained_vae()
    test = digits("test")
    x = test.images[test.labels == 3][:2]  # (2, 1, 28, 28): two test threes
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        reconstruction = vae.decode(mu)
    fig, ax = diagram(13.0, 5.6)
    ax.text(0.2, 5.45, f"Variational auto-encoder (vclib.generative.ConvVAE, latent_dim = {vae.latent_dim}): "
            r"encoder $q(z|x)$, reparameterisation, decoder $p(x|z)$", fontsize=11, weight="bold", va="top")
    image_at(ax, x[0], 0.85, 4.0, 1.2, f"x {shape_text(x.shape)}")
    encoder = _sequential_boxes(ax, vae, "encoder", (x,), [2.35, 4.2, 6.05, 7.9], 4.0, COLOURS["conv"])
    arrow(ax, (1.5, 4.0), side(encoder[0], "left"))
    stats = box(ax, 9.85, 4.0, 1.75, 0.95, r"split: $\mu$, $\log\sigma^2$" + f"\n2 x {shape_text(mu.shape)}",
                COLOURS["latent"], fontsize=9.5)
    arrow(ax, side(encoder[-1], "right"), side(stats, "left"))
    z = box(ax, 11.8, 3.0, 2.0, 1.1, r"$z = \mu + \sigma \odot \varepsilon$" + "\n"
            + r"$\varepsilon \sim \mathcal{N}(0, I)$" + f"\n{shape_text(mu.shape)}", COLOURS["latent"], fontsize=9.5)
    arrow(ax, side(stats, "right"), side(z, "top"), rad=-0.3)
    decoder = _sequential_boxes(ax, vae, "decoder", (x,), [9.3, 6.95, 4.6], 2.0, COLOURS["layer"],
                                skip=(nn.ReLU, nn.Unflatten))
    arrow(ax, side(z, "bottom"), side(decoder[0], "right"), rad=-0.3)
    sigmoid = box(ax, 2.85, 2.0, 1.3, 0.8, "sigmoid\n" + r"$\hat x$ in [0, 1]", COLOURS["norm"], fontsize=9)
    arrow(ax, side(decoder[-1], "left"), side(sigmoid, "right"))
    image_at(ax, reconstruction[0], 0.85, 2.0, 1.2, r"$\hat x$ (decoded $\mu$)")
    arrow(ax, side(sigmoid, "left"), (1.5, 2.0))
    ax.text(6.5, 0.85, r"loss $L(x) = ||\hat x - x||^2 + \beta \sum_i (\mu_i^2 + \sigma_i^2 - \log\sigma_i^2 - 1)$"
            f"   (the pictures: a test digit and its reconstruction after {VAE_EPOCHS} epochs, beta = 0.5)",
            ha="center", fontsize=10)
    ax.text(6.5, 0.35, "layer output shapes read by forward hooks on the module (B = batch); ReLUs not drawn",
            ha="center", fontsize=9.5, color="0.3")
    return fig


def gan_loop() -> Figure:
    """``4_GAN.png``: one training step of P4's DCGAN: generator, discriminator, the two losses."""
    generator, discriminator = trained_gan()
    z = generator.noise(16, torch.Generator().manual_seed(0))  # (16, latent_dim)
    with torch.no_grad():
        fakes = generator(z)  # (16, 1, 28, 28)
    test = digits("test")
    real = test.images[[int((test.labels == d).nonzero()[0]) for d in range(10)]]  # (10, 1, 28, 28): 0 to 9

    fig, ax = diagram(13.0, 6.0)
    ax.text(0.2, 5.85, r"GAN training loop (vclib.generative DCGAN): $\min_G \max_D\; E_x[\log D(x)] + "
            r"E_z[\log(1 - D(G(z)))]$", fontsize=11, weight="bold", va="top")
    noise = box(ax, 0.9, 4.3, 1.4, 0.8, r"$z \sim \mathcal{N}(0, I)$" + f"\n{shape_text(z.shape)}",
                COLOURS["latent"], fontsize=9)
    g_boxes = _sequential_boxes(ax, generator, "net", (z,), [3.0, 5.2, 7.4], 4.3, COLOURS["layer"],
                                skip=(nn.ReLU, nn.BatchNorm2d, nn.Sigmoid, nn.Unflatten))
    arrow(ax, side(noise, "right"), side(g_boxes[0], "left"))
    ax.text(5.3, 4.95, "generator G (BatchNorm, ReLU; sigmoid output)", ha="center", fontsize=9.5)
    mosaic = fakes[:9, 0].reshape(3, 3, 28, 28).permute(0, 2, 1, 3).reshape(84, 84)
    image_at(ax, mosaic, 9.65, 4.3, 1.35, f"G(z) after {GAN_STEPS} steps")
    arrow(ax, side(g_boxes[-1], "right"), (8.95, 4.3))
    real_mosaic = real[:9, 0].reshape(3, 3, 28, 28).permute(0, 2, 1, 3).reshape(84, 84)
    image_at(ax, real_mosaic, 0.9, 1.9, 1.35, "real digits x")
    d_boxes = _sequential_boxes(ax, discriminator, "net", (real,), [3.0, 5.2, 7.4], 1.9,
                                COLOURS["conv"], skip=(nn.LeakyReLU, nn.BatchNorm2d, nn.Flatten))
    arrow(ax, (1.6, 1.9), side(d_boxes[0], "left"))
    arrow(ax, (9.65, 3.6), side(d_boxes[0], "top"), "fakes, detached for the D step", rad=0.0,
          text_offset=(0.6, -0.35))
    ax.text(5.3, 1.2, "discriminator D (LeakyReLU 0.2, BatchNorm); D(x) = sigmoid(logit)", ha="center", fontsize=9.5)
    loss_d = box(ax, 11.35, 2.5, 2.9, 0.85, r"$L_D = -E[\log D(x)] - E[\log(1 - D(G(z)))]$" + "\n"
                 "Adam step on D's weights", COLOURS["loss"], fontsize=9)
    loss_g = box(ax, 11.35, 1.3, 2.9, 0.85, "non-saturating " + r"$L_G = -E[\log D(G(z))]$" + "\n"
                 "Adam step on G's weights (through D)", COLOURS["loss"], fontsize=9)
    arrow(ax, side(d_boxes[-1], "right"), side(loss_d, "left"))
    arrow(ax, side(d_boxes[-1], "right"), side(loss_g, "left"))
    ax.text(11.35, 0.7, "each step: D first, then G;\nAdam, lr 2e-4, betas (0.5, 0.999)", ha="center", va="top",
            fontsize=9)
    return fig


def pointnet_diagram() -> Figure:
    """``5_PointNet.png``: :class:`vclib.pointcloud.pointnet.PointNet` with its two T-Nets."""
    from vclib.data.shapes import ProceduralShapes
    from vclib.pointcloud.pointnet import PointNet

    shapes = ProceduralShapes("test", num_per_class=1, num_points=1024, seed=0)
    points = shapes.points[:2]  # (2, N, 3)
    model = PointNet(len(shapes.class_names))  # the paper's sizes: global feature 1024
    traced = trace_shapes(model, (points,), ["input_tnet", "local", "feature_tnet", "glob", "head"])
    local = [layer.out_channels for layer in model.local if isinstance(layer, nn.Conv1d)]
    glob = [layer.out_channels for layer in model.glob if isinstance(layer, nn.Conv1d)]
    head = [layer.out_features for layer in model.head if isinstance(layer, nn.Linear)]
    tnet_mlp = [layer.out_channels for layer in model.input_tnet.features if isinstance(layer, nn.Conv1d)]
    n = points.shape[1]

    fig, ax = diagram(13.0, 5.0)
    ax.text(0.2, 4.85, f"PointNet (vclib.pointcloud.pointnet.PointNet, {len(shapes.class_names)} classes): "
            "shared per-point MLPs, two T-Nets, a symmetric max-pool", fontsize=11, weight="bold", va="top")
    chair = shapes.points[shapes.class_names.index("chair")]
    inset = ax.inset_axes((0.15, 1.35, 1.3, 1.3), transform=ax.transData)
    inset.scatter(chair[:, 0], chair[:, 2], s=0.5, c="0.3")
    inset.set(xticks=[], yticks=[], aspect="equal")
    inset.set_title(f"points {shape_text(points.shape)}", fontsize=9)
    y = 2.0
    steps = [
        (2.4, "input transform\nbmm with 3x3\n" + shape_text((2, 3, n)), COLOURS["norm"]),
        (4.3, "shared MLP\n" + "-".join(map(str, [3, *local])) + f"\n{shape_text(traced['local'][0])}",
         COLOURS["conv"]),
        (6.2, "feature transform\nbmm with 64x64\n" + shape_text(traced["local"][0]), COLOURS["norm"]),
        (8.1, "shared MLP\n" + "-".join(map(str, [local[-1], *glob])) + f"\n{shape_text(traced['glob'][0])}",
         COLOURS["conv"]),
        (9.9, f"max over the\n{n} points\n{shape_text(traced['glob'][0][:2])}", COLOURS["attention"]),
        (11.85, "MLP head\n" + "-".join(map(str, [glob[-1], *head])) + f"\nlogits {shape_text(traced['head'][0])}",
         COLOURS["head"]),
    ]
    rects = []
    for x, text, colour in steps:
        rects.append(box(ax, x, y, 1.7 if x < 11 else 1.9, 1.1, text, colour, fontsize=9))
        if len(rects) > 1:
            arrow(ax, side(rects[-2], "right"), side(rects[-1], "left"))
    arrow(ax, (1.45, y), side(rects[0], "left"))
    for x_from, x_to, name, size in ((1.6, 2.4, "input_tnet", 3), (4.3, 6.2, "feature_tnet", 64)):
        tnet = box(ax, (x_from + x_to) / 2 + 0.3, 3.75, 2.3, 0.85,
                   f"T-Net({size}): MLP " + "-".join(map(str, [size, *tnet_mlp[1:]])) + ", max,\n"
                   f"FC -> {shape_text(traced[name][0])} + identity", COLOURS["latent"], fontsize=9)
        arrow(ax, (x_from if size == 3 else x_from + 0.3, y + 0.55), side(tnet, "bottom"), colour="0.45")
        arrow(ax, side(tnet, "right"), side(rects[0 if size == 3 else 2], "top"), colour="0.45", rad=-0.3)
    ax.text(6.5, 0.7, "the max-pool is symmetric, so the output does not depend on the order of the points; the "
            "points that win it are the critical points", ha="center", fontsize=9.5)
    ax.text(6.5, 0.3, f"paper sizes (global feature {glob[-1]}); shapes read by forward hooks, B = batch, "
            "N = points; BatchNorm and ReLU inside every MLP", ha="center", fontsize=9.5, color="0.3")
    return fig


def pointclip_diagram() -> Figure:
    """``5_CLIP.png``: PointCLIP's projection into depth maps, the two encoders and the view-weighted scores."""
    from vclib.data.shapes import ProceduralShapes
    from vclib.pointcloud.pointclip import ZeroShotPointClassifier
    from vclib.pointcloud.representations import VIEW_NAMES, depth_maps
    from vclib.pointcloud.tinyclip import TinyCLIP

    shapes = ProceduralShapes("test", num_per_class=1, num_points=1024, seed=0)
    torch.manual_seed(0)
    clip = TinyCLIP(shapes.class_names).eval()
    classifier = ZeroShotPointClassifier(clip.image_encoder, clip.encode_text, shapes.class_names)
    chair = shapes.points[shapes.class_names.index("chair")][None]  # (1, N, 3)
    maps = depth_maps(chair, classifier.num_views, classifier.image_size)  # (1, V, H, W)
    with torch.no_grad():
        views = classifier.view_features(chair.expand(2, -1, -1))  # (B, V, E)
        text = classifier.text_features()  # (C, E)
        scores = classifier(chair.expand(2, -1, -1))  # (B, C)
    image_shapes = trace_shapes(clip.image_encoder, (maps[0, :, None],), ["features", "project"])
    ids = clip.tokenizer(classifier.prompts())  # (C, L)

    fig, ax = diagram(13.0, 5.6)
    ax.text(0.2, 5.45, "PointCLIP (vclib.pointcloud.pointclip.ZeroShotPointClassifier): project, encode views and "
            "prompts, compare", fontsize=11, weight="bold", va="top")
    inset = ax.inset_axes((0.15, 2.9, 1.3, 1.3), transform=ax.transData)
    inset.scatter(chair[0, :, 0], chair[0, :, 2], s=0.5, c="0.3")
    inset.set(xticks=[], yticks=[], aspect="equal")
    inset.set_title(f"cloud {shape_text(chair.shape)}", fontsize=9)
    arrow(ax, (1.45, 3.55), (1.7, 3.55))
    for v, name in enumerate(VIEW_NAMES[: classifier.num_views]):
        image_at(ax, maps[0, v], 2.1 + 0.78 * (v % 3), 4.0 - 0.95 * (v // 3), 0.65, name)
    ax.text(2.9, 2.5, f"depth_maps: V = {classifier.num_views} views\n{shape_text((2, *maps.shape[1:]))}",
            ha="center", va="top", fontsize=9)
    encoder = box(ax, 6.0, 3.6, 2.2, 1.1, f"image encoder\nconvs {shape_text(image_shapes['features'][0], 'B x V')}\n"
                  f"-> mean, Linear\n{shape_text(image_shapes['project'][0], 'B x V')}", COLOURS["conv"], fontsize=9)
    arrow(ax, (4.1, 3.6), side(encoder, "left"))
    view_box = box(ax, 8.5, 3.6, 1.9, 0.9, f"unit view features\n{shape_text(views.shape)}", COLOURS["layer"],
                   fontsize=9)
    arrow(ax, side(encoder, "right"), side(view_box, "left"))
    prompts = classifier.prompts()
    ax.text(0.2, 1.75, "prompts, one per class:\n" + "\n".join(f'"{p}"' for p in prompts[:3]) + "\n...",
            va="top", fontsize=9)
    tokens = box(ax, 3.9, 1.2, 1.7, 0.8, f"tokenizer\nids {shape_text(ids.shape, 'C')}", COLOURS["norm"],
                 fontsize=9)
    arrow(ax, (2.7, 1.2), side(tokens, "left"))
    text_encoder = box(ax, 6.0, 1.2, 2.2, 0.8, f"text encoder\n{shape_text(text.shape, 'C')}", COLOURS["conv"],
                       fontsize=9)
    arrow(ax, side(tokens, "right"), side(text_encoder, "left"))
    text_box = box(ax, 8.5, 1.2, 1.9, 0.8, f"unit class features\n{shape_text(text.shape, 'C')}", COLOURS["layer"],
                   fontsize=9)
    arrow(ax, side(text_encoder, "right"), side(text_box, "left"))
    cosine = box(ax, 11.5, 2.4, 2.6, 1.5, "cosine similarity per view\n" + r"$u_v \cdot w_c$: (B, V, C)"
                 + "\n" + r"score$_c = \sum_v \alpha_v\, u_v \cdot w_c$" + f"\n{shape_text(scores.shape)}",
                 COLOURS["attention"], fontsize=9.5)
    arrow(ax, side(view_box, "right"), side(cosine, "left"))
    arrow(ax, side(text_box, "right"), side(cosine, "left"))
    ax.text(6.5, 0.3, "quick mode: TinyCLIP encoders trained on shaded renders (drawn here: sizes only); full mode: "
            "open_clip ViT-B/32 with pretrained weights", ha="center", fontsize=9.5, color="0.3")
    return fig
