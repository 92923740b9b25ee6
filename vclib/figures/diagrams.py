"""Architecture diagrams for P1-P3, drawn from instantiated vclib modules (sizes read by forward hooks).

Each function returns a matplotlib figure; :mod:`vclib.figures` saves it under its asset name.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from vclib.figures.drawing import COLOURS, arrow, box, diagram, image_at, shape_text, side, trace_shapes


def conv_arithmetic() -> Figure:
    """``1_conv_arithmetic.png``: the seven cases of :data:`vclib.basics.CONV_CASES`, first kernel position."""
    from vclib.basics.conv_explorer import draw_conv_cases

    fig = draw_conv_cases(step=0)
    last = fig.axes[-1]
    last.text(0.5, 0.5, "dark blue: input cells under the kernel\nlight blue: padding under the kernel\n"
              "grey: input, white: padding\ndark green: the output cell it fills",
              ha="center", va="center", fontsize=12, transform=last.transAxes)
    fig.suptitle("Convolution arithmetic: o = floor((i + 2p - k) / s) + 1, drawn by "
                 "vclib.basics.conv_explorer", fontsize=14)
    fig.tight_layout()
    return fig


def video_models() -> Figure:
    """``1_video.png``: video-level features into the logistic, mixture-of-experts and fusion models."""
    from vclib.video import FusionMLP, LogisticModel, MoeModel

    rgb_dim, audio_dim, num_classes = 1024, 128, 100
    rgb, audio = torch.zeros(2, rgb_dim), torch.zeros(2, audio_dim)
    features = torch.cat([rgb, audio], dim=1)  # (2, 1152)
    logistic, moe = LogisticModel(rgb_dim + audio_dim, num_classes), MoeModel(rgb_dim + audio_dim, num_classes)
    fusion = FusionMLP(num_classes, rgb_dim=rgb_dim, audio_dim=audio_dim)
    logistic_shapes = trace_shapes(logistic, (features,), ["linear"])
    moe_shapes = trace_shapes(moe, (features,), ["gates", "experts"])
    fusion_shapes = trace_shapes(fusion, (rgb, audio), ["joint.0", "joint.3"])
    mixtures = moe.num_mixtures

    fig, ax = diagram(12.5, 4.9)
    ax.text(0.2, 4.8, "P1 video classification: YouTube-8M video-level features, three multi-label models "
            "(sizes read from vclib.video)", fontsize=11, weight="bold", va="top")
    rgb_box = box(ax, 1.3, 3.3, 2.2, 0.75, f"mean RGB feature\n{shape_text(rgb.shape)}", COLOURS["data"])
    audio_box = box(ax, 1.3, 1.7, 2.2, 0.75, f"mean audio feature\n{shape_text(audio.shape)}", COLOURS["data"])
    concat = box(ax, 3.9, 2.5, 1.6, 0.75, f"concatenate\n{shape_text(features.shape)}", COLOURS["norm"])
    arrow(ax, side(rgb_box, "right"), side(concat, "left"))
    arrow(ax, side(audio_box, "right"), side(concat, "left"))
    logistic_box = box(ax, 7.2, 4.0, 3.6, 0.75, f"LogisticModel: Linear {rgb_dim + audio_dim} -> {num_classes}\n"
                       f"logits {shape_text(logistic_shapes['linear'][0])}", COLOURS["layer"])
    gates, experts = moe_shapes["gates"][0], moe_shapes["experts"][0]
    moe_box = box(ax, 7.2, 2.5, 3.6, 1.45,
                  f"MoeModel, M = {mixtures} experts per class\n"
                  f"gates: Linear -> {shape_text(gates)} = (B, C x (M + 1))\n"
                  f"softmax over M + 1 (one dummy expert)\n"
                  f"experts: Linear -> {shape_text(experts)}, sigmoid\n"
                  r"$p_c = \sum_m g_{c,m}\,\sigma(e_{c,m})$", COLOURS["attention"], fontsize=9.5)
    hidden = fusion_shapes["joint.0"][0]
    fusion_box = box(ax, 7.2, 0.9, 3.6, 0.75, f"FusionMLP (early): Linear -> {shape_text(hidden)}, ReLU,\n"
                     f"dropout, Linear -> {shape_text(fusion_shapes['joint.3'][0])}", COLOURS["conv"])
    for target in (logistic_box, moe_box, fusion_box):
        arrow(ax, side(concat, "right"), side(target, "left"))
    scores = box(ax, 10.95, 2.5, 2.3, 1.45, f"{num_classes} independent\nclass scores\n"
                 r"$\sigma(\mathrm{logit}_c)$" + f"\n{shape_text(gates[:1] + (num_classes,))}", COLOURS["head"])
    for source in (logistic_box, moe_box, fusion_box):
        arrow(ax, side(source, "right"), side(scores, "left"))
    ax.text(10.95, 1.45, "ranked per video:\nGAP@20, Hit@1, PERR", ha="center", va="top", fontsize=9.5)
    return fig


def gru_cell() -> Figure:
    """``3_GRU.png``: the GRU cell of :class:`vclib.sequence.GRUImageClassifier`, its gates and weight shapes."""
    from vclib.sequence import GRUImageClassifier

    model = GRUImageClassifier()  # reads a 28 x 28 image row by row
    gru = model.gru
    images = torch.zeros(2, 1, 28, 28)
    tokens = model.tokenize(images)  # (2, T, 28)
    shapes = trace_shapes(model, (images,), ["gru", "head"])
    hidden, size = gru.hidden_size, gru.input_size
    w_i = tuple(gru.weight_ih_l0.chunk(3)[0].shape)  # each of W_ir, W_iz, W_in
    w_h = tuple(gru.weight_hh_l0.chunk(3)[0].shape)
    x_shape, h_shape = shape_text(tokens[:, 0].shape), shape_text((2, hidden))

    fig, ax = diagram(12.5, 6.6)
    ax.text(0.2, 6.45, f"GRU cell of vclib.sequence.GRUImageClassifier: an image read as T = {tokens.shape[1]} rows of "
            f"{size} pixels, hidden size H = {hidden}", fontsize=11, weight="bold", va="top")
    h_prev = box(ax, 1.2, 4.2, 1.9, 0.8, r"$h_{t-1}$" + f"\n{h_shape}", COLOURS["data"])
    x_t = box(ax, 1.2, 1.6, 1.9, 0.8, r"$x_t$ (row t)" + f"\n{x_shape}", COLOURS["data"])
    gates = {
        "z": (4.55, r"update gate  $z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz})$", COLOURS["norm"]),
        "r": (3.05, r"reset gate  $r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr})$", COLOURS["attention"]),
        "n": (1.25, r"new gate  $n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))$",
              COLOURS["conv"]),
    }
    rects = {}
    for name, (y, text, colour) in gates.items():
        rects[name] = box(ax, 6.0, y, 5.6, 0.85, f"{text}\n" + r"$W_{i\cdot}$" + f" {w_i},  " + r"$W_{h\cdot}$"
                          + f" {w_h},  output {h_shape}", colour, fontsize=9.5)
        arrow(ax, side(h_prev, "right"), side(rects[name], "left"), colour="0.45")
        arrow(ax, side(x_t, "right"), side(rects[name], "left"), colour="0.45")
    arrow(ax, side(rects["r"], "bottom"), side(rects["n"], "top"), r"$r_t$", text_offset=(0.25, -0.1))
    mix = box(ax, 10.75, 3.0, 2.9, 1.1, r"$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$" + f"\n{h_shape}",
              COLOURS["latent"], fontsize=10)
    arrow(ax, side(rects["z"], "right"), side(mix, "top"), r"$z_t$", rad=-0.3, text_offset=(0.2, 0.05))
    arrow(ax, side(rects["n"], "right"), side(mix, "bottom"), r"$n_t$", rad=0.3, text_offset=(0.45, -0.3))
    arrow(ax, side(h_prev, "top"), (10.75, 5.45), "", rad=-0.1, colour="0.45")
    ax.text(6.0, 6.0, r"$h_{t-1}$ copied forward where $z_t \approx 1$: the path that keeps gradients alive",
            ha="center", fontsize=9.5, color="0.3")
    ax.plot([10.75, 10.75], [5.45, 3.55], color="0.45", linewidth=1.2)
    ax.text(10.75, 0.75, f"after the last row: h_T -> Linear\n-> logits {shape_text(shapes['head'][0])}",
            ha="center", va="top", fontsize=9.5)
    ax.text(0.2, 0.25, f"weight_ih = [W_ir; W_iz; W_in] {tuple(gru.weight_ih_l0.shape)}, "
            f"weight_hh = [W_hr; W_hz; W_hn] {tuple(gru.weight_hh_l0.shape)}: the layout of nn.GRU",
            fontsize=9.5, color="0.3")
    return fig


def vit_pipeline() -> Figure:
    """``3_VIT.png``: a digit through :class:`vclib.transformer.VisionTransformer`: patches, tokens, blocks, head."""
    from vclib.data.mnist import load_mnist
    from vclib.transformer import VisionTransformer, patchify

    model = VisionTransformer()
    digit = load_mnist("test", source="embedded").images[:1]  # (1, 1, 28, 28)
    batch = digit.expand(2, -1, -1, -1)
    depth, patch = len(model.blocks), model.patch_embed.patch_size
    names = ["patch_embed", *[f"blocks.{i}" for i in range(depth)], "norm", "head"]
    shapes = trace_shapes(model, (batch,), names)
    with torch.no_grad():
        embedded = model.embed(batch)  # (2, 1 + N, E)
    patches = patchify(digit, patch)[0]  # (N, P * P)
    block = model.blocks[0]
    heads, mlp = block.self_attn.num_heads, block.linear1.out_features
    grid = model.patch_embed.grid_size

    fig, ax = diagram(13.0, 4.2)
    ax.text(0.2, 4.05, f"Vision Transformer (vclib.transformer.VisionTransformer, defaults): image -> "
            f"{grid}x{grid} patches -> tokens -> {depth} encoder blocks -> class-token head", fontsize=11,
            weight="bold", va="top")
    inset = image_at(ax, digit[0], 1.0, 2.3, 1.6, f"image {shape_text(batch.shape)}")
    for k in range(1, grid):
        inset.axhline(k * patch - 0.5, color="tab:orange", linewidth=1)
        inset.axvline(k * patch - 0.5, color="tab:orange", linewidth=1)
    for i in range(len(patches)):
        image_at(ax, patches[i].reshape(patch, patch), 2.3 + 0.27 * (i % grid), 3.05 - 0.3 * (i // grid), 0.24)
    ax.text(2.7, 1.65, f"{len(patches)} patches\n{patch}x{patch} = {patches.shape[1]} px", ha="center",
            va="top", fontsize=9.5)
    tokens = box(ax, 4.85, 2.3, 1.8, 1.35, f"patch embedding\nConv2d k={patch}, s={patch}\n"
                 f"tokens\n{shape_text(shapes['patch_embed'][0])}", COLOURS["conv"], fontsize=9.5)
    arrow(ax, (3.4, 2.3), side(tokens, "left"))
    position = box(ax, 7.0, 2.3, 1.9, 1.35, f"prepend [class]\n+ position emb.\n(learned)\n"
                   f"{shape_text(embedded.shape)}", COLOURS["norm"], fontsize=9.5)
    arrow(ax, side(tokens, "right"), side(position, "left"))
    encoder = box(ax, 9.3, 2.3, 2.1, 2.2, f"encoder block x {depth}\n\nLayerNorm\nmulti-head attn.\n"
                  f"({heads} heads) + residual\nLayerNorm\nMLP {model.head.in_features}-{mlp}-"
                  f"{model.head.in_features}, GELU\n+ residual\n\n{shape_text(shapes[f'blocks.{depth - 1}'][0])}",
                  COLOURS["attention"], fontsize=9.5)
    arrow(ax, side(position, "right"), side(encoder, "left"))
    head = box(ax, 11.85, 2.3, 1.9, 1.35, f"class token\nLayerNorm {shape_text(shapes['norm'][0])}\n"
               f"Linear head\nlogits {shape_text(shapes['head'][0])}", COLOURS["head"], fontsize=9.5)
    arrow(ax, side(encoder, "right"), side(head, "left"))
    ax.text(0.2, 0.35, f"{sum(p.numel() for p in model.parameters()):,} parameters; tokens: 1 class token + "
            f"{model.patch_embed.num_patches} patch tokens of width E = {model.head.in_features}; shapes read by "
            "forward hooks (B = batch)", fontsize=9.5, color="0.3")
    return fig


def transformer_attention() -> Figure:
    """``2_transformers.png``: multi-head attention step by step (shapes from the module), and one head's
    attention maps over the patches of the sample photo."""
    from vclib.data.photo import load_sample_photo
    from vclib.transformer import MultiHeadAttention, patchify, scaled_dot_product_attention
    from vclib.viz.attention import draw_attention_overlay

    torch.manual_seed(0)
    photo, patch_size = load_sample_photo(224), 16
    grid = photo.shape[-1] // patch_size
    mha = MultiHeadAttention(embed_dim=64, num_heads=4, batch_first=True)
    x = torch.zeros(2, grid * grid, 64)  # (B, N, E): one token per patch
    shapes = trace_shapes(mha, (x, x, x), ["out_proj"])
    with torch.no_grad():
        _, head_weights = mha(x, x, x, average_attn_weights=False)  # (B, H, N, N)
    heads, head_dim, embed = mha.num_heads, mha.head_dim, mha.embed_dim
    per_head = shape_text((2, heads, grid * grid, head_dim))

    fig, ax = diagram(13.0, 7.4)
    ax.text(0.2, 7.25, f"Multi-head attention (vclib.transformer.MultiHeadAttention, E = {embed}, H = {heads}) on "
            f"N = {grid}x{grid} = {grid * grid} patch tokens", fontsize=11, weight="bold", va="top")
    steps = [
        (f"tokens X\n{shape_text(x.shape)}", COLOURS["data"]),
        (f"in_proj\nweight {tuple(mha.in_proj_weight.shape)}\nQ, K, V: 3 x\n{shape_text(x.shape)}", COLOURS["layer"]),
        (f"split heads\nD = E / H = {head_dim}\n3 x {per_head}", COLOURS["norm"]),
        ("weights\n" + r"softmax$(QK^\top/\sqrt{D})$" + f"\n{shape_text(head_weights.shape)}", COLOURS["attention"]),
        (f"weights @ V\n{per_head}", COLOURS["attention"]),
        (f"merge heads\n{shape_text(x.shape)}", COLOURS["norm"]),
        (f"out_proj\nweight {tuple(mha.out_proj.weight.shape)}\n{shape_text(shapes['out_proj'][0])}",
         COLOURS["head"]),
    ]
    previous = None
    for i, (text, colour) in enumerate(steps):
        rect = box(ax, 0.95 + 1.85 * i, 5.85, 1.65, 1.25, text, colour, fontsize=9.5)
        if previous is not None:
            arrow(ax, side(previous, "right"), side(rect, "left"))
        previous = rect

    patches = patchify(photo, patch_size)  # (1, N, 3 P P)
    centred = patches - patches.mean(dim=1, keepdim=True)  # remove the average patch
    tokens = torch.nn.functional.normalize(centred, dim=-1) * 2 * patches.shape[-1] ** 0.25  # QK^T / sqrt(E) = 4 cos
    _, weights = scaled_dot_product_attention(tokens, tokens, tokens, need_weights=True)  # (1, N, N)
    queries = {"face": 6 * grid + 6, "cap": 3 * grid + 7, "coat": 12 * grid + 3, "background": 1 * grid + 12}
    vmax = weights[0, list(queries.values())].max().item()
    ax.text(0.2, 4.75, "One head, raw patch pixels as queries, keys and values (no learned weights): where each "
            "query patch (cyan) attends, one colour scale", fontsize=10.5, va="top")
    for i, (name, query) in enumerate(queries.items()):
        panel = fig.add_axes((0.02 + 0.222 * i, 0.04, 0.19, 0.54))
        shown = draw_attention_overlay(panel, photo[0], weights[0, query], query, patch_size, vmax=vmax)
        panel.set_title(f"query: {name}", fontsize=10)
    colorbar = fig.colorbar(shown, cax=fig.add_axes((0.9, 0.08, 0.012, 0.46)), format="%.3f")
    colorbar.set_label("attention weight", fontsize=9.5)
    return fig


def yolo_heads() -> Figure:
    """``2_yolo1.png``: the quick-mode :class:`vclib.detection.YOLOv3`: Darknet stages, the feature pyramid,
    three heads and their grids on a digit scene."""
    from vclib.data.scenes import DigitScenes
    from vclib.detection import YOLOv3

    config = {"width": 8, "depths": (1, 1, 2, 2), "strides": (4, 8, 16)}  # P2's quick-mode model
    anchors = torch.tensor([[10.0, 14.0], [14, 22], [18, 30], [22, 38], [26, 44], [30, 50], [36, 56], [42, 60],
                            [48, 66]])  # placeholders: the heads' shapes do not depend on the anchor sizes
    model = YOLOv3(10, anchors, **config)
    scene = DigitScenes("test", 1, size=96, source="embedded")[0][0][None]  # (1, 3, 96, 96)
    stages = [f"backbone.stages.{i}" for i in range(len(config["depths"]))]
    names = ["backbone.stem", *stages, "head32", "lateral32", "head16", "lateral16", "head8"]
    shapes = trace_shapes(model, (scene.expand(2, -1, -1, -1),), names)
    outputs = {stride: model.forward(scene)[i].shape for i, stride in enumerate(model.strides)}

    fig, ax = diagram(13.0, 7.0)
    ax.text(0.2, 6.85, f"YOLOv3 of vclib.detection (P2 quick mode: width {config['width']}, depths "
            f"{config['depths']}): Darknet, feature pyramid, three heads", fontsize=11, weight="bold", va="top")
    y_of = {}
    backbone = [("stem", shapes["backbone.stem"][0])] + [
        (f"stage {i + 1}: stride {2 ** (i + 1)}", shapes[name][0]) for i, name in enumerate(stages)]
    previous = None
    for i, (label, shape) in enumerate(backbone):
        y = 6.0 - 1.2 * i
        rect = box(ax, 1.5, y, 2.5, 0.65, f"{label}\n{shape_text(shape)}", COLOURS["conv"], fontsize=9.5)
        y_of[i] = rect
        if previous is not None:
            arrow(ax, side(previous, "bottom"), side(rect, "top"))
        previous = rect
    heads = [("head32", "lateral32", 16), ("head16", "lateral16", 8), ("head8", None, 4)]
    head_rects = {}
    for level, (head, lateral, stride) in enumerate(heads):
        y = y_of[len(backbone) - 1 - level][1]
        rect = box(ax, 5.0, y, 2.7, 0.65, f"{head}: 1x1 / 3x3 convs\nroute {shape_text(shapes[head][0])}",
                   COLOURS["layer"], fontsize=9.5)
        head_rects[stride] = rect
        arrow(ax, side(y_of[len(backbone) - 1 - level], "right"), side(rect, "left"),
              "concat" if level else "", text_offset=(0, 0.05))
        out = outputs[stride]
        output = box(ax, 8.6, y, 3.0, 0.65, f"stride {stride}: {out[2]}x{out[3]} cells\n"
                     f"{shape_text(out)} = (B, A, H/s, W/s, 5 + C)", COLOURS["head"], fontsize=9.5)
        arrow(ax, side(rect, "right"), side(output, "left"))
        if lateral is not None:
            target_y = y_of[len(backbone) - 2 - level][1]
            arrow(ax, side(rect, "top"), (5.0, target_y - 0.33), f"{lateral} {shape_text(shapes[lateral][0])}, "
                  "upsample x2", colour="tab:purple", text_offset=(1.45, -0.1))
    ax.text(8.6, 0.65, f"A = {len(anchors) // 3} anchors per cell, 5 = box (4) + objectness,\nC = 10 digit classes; "
            "finest stride for the smallest objects", ha="center", va="top", fontsize=9.5)
    for i, stride in enumerate(model.strides):
        inset = image_at(ax, scene[0], 11.9, 5.75 - 2.05 * i, 1.75, f"grid at stride {stride}")
        for k in range(0, scene.shape[-1] + 1, stride):
            inset.axhline(k - 0.5, color="white", linewidth=0.5, alpha=0.7)
            inset.axvline(k - 0.5, color="white", linewidth=0.5, alpha=0.7)
    return fig
