# %% [markdown]
# # Project 2: Object Detection, Segmentation and Data Augmentation
#
# Dense prediction and the building blocks of modern vision models. This notebook has seven parts:
#
# 1. **Digit scenes**: the data set that the segmentation and detection sections share: real MNIST digits
#    composed into cluttered colour scenes, each with a per-pixel mask and one box per digit.
# 2. **Semantic segmentation**: per-pixel cross-entropy with ignored pixels, the confusion matrix, IoU and
#    mIoU.
# 3. **U-Net and SegNet**: two encoder-decoders, one with skip connections and one with max-unpooling,
#    trained and compared.
# 4. **FCN-8s and fine-tuning**: a classifier made fully convolutional, bilinear upsampling, skips, and
#    what a pretrained backbone is worth at small label budgets.
# 5. **Data augmentation**: random geometric and photometric changes, applied to an image, its mask and its
#    boxes *jointly*, with `torchvision.transforms.v2`, and what they are worth on 200 scenes.
# 6. **Object detection and localization: YOLOv3**: grid, anchors, targets, the three heads, the loss,
#    decoding, non-maximum suppression and mean average precision, all written from scratch.
# 7. **Design attention blocks for a Vision Transformer**.
#
# Every function used here lives in `vclib` and is tested against its PyTorch twin; `vclib.show_source`
# prints it so you can read exactly what runs.

# %%
import importlib.util

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
import torchvision.ops as tvops
from torch import nn
from torch.utils.data import Subset, TensorDataset
from torchvision.transforms import v2

import vclib
from vclib import detection as det
from vclib import segmentation as seg
from vclib import transformer
from vclib.augment import scene_transforms
from vclib.augment_gallery import augmentation_gallery
from vclib.data import make_loader
from vclib.data.pets import PETS_CLASSES, load_pets_segmentation
from vclib.data.photo import load_sample_photo
from vclib.data.scenes import CLASS_NAMES as SCENE_CLASSES
from vclib.data.scenes import IGNORE_INDEX, DigitScenes
from vclib.data.voc_detection import VOC_CLASSES, load_voc_detection
from vclib.data.voc_segmentation import VOC_SEGMENTATION_CLASSES, load_voc_segmentation
from vclib.detection.metrics import average_precision, match_detections
from vclib.detection.plots import detection_browser, draw_boxes, plot_assignment, show_image
from vclib.train import fit
from vclib.transformer import attention
from vclib.viz.attention import attention_explorer, draw_attention_overlay

cfg = vclib.setup()

# %% [markdown]
# ## Digit scenes
#
# Detection and segmentation need images with several objects, each with a class, a box and the exact
# pixels it covers. `DigitScenes` composes them from **real MNIST digits** (the same loader as Project 1:
# the embedded digits in quick mode, torchvision's MNIST in full mode), in the spirit of the M2NIST data set.
# Each scene holds one to four digits, scaled between about 0.7x and 2x, placed without overlap, coloured,
# and drawn on a textured background with clutter strokes of the same colours and thickness, so that
# neither a brightness threshold nor a colour rule finds the digits: a model has to recognise shapes.
# Training scenes use only training digits, test scenes only test digits.
#
# Labels follow Pascal VOC. The mask holds 0 for background and $d + 1$ for digit $d$; the soft edge of
# each digit, neither clearly ink nor clearly background, is **255, ignored** by losses and metrics, as VOC
# marks object borders. A digit's box is the tight box around its labelled pixels.

# %%
vclib.show_source(DigitScenes.__getitem__)

# %%
preview = DigitScenes("train", 8, size=96, source=cfg.data_source)
fig, axes = plt.subplots(2, 4, figsize=(13, 6.6), dpi=100, layout="constrained")
for column in range(4):
    image, target = preview[column]
    show_image(axes[0, column], image, f"scene {column}: {len(target['boxes'])} digits")
    draw_boxes(axes[0, column], target["boxes"], target["labels"] - 1, class_names=[str(d) for d in range(10)])
    shown_mask = target["mask"].float().masked_fill(target["mask"] == IGNORE_INDEX, float("nan"))
    axes[1, column].imshow(shown_mask, cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
    axes[1, column].set(title="mask (white: ignored edge)", xticks=[], yticks=[])
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
rows, cols = torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij")  # (96, 96) pixel indices
inside_own_box = []
for _image, target in preview:
    for k in set(target["mask"].unique().tolist()) - {0, IGNORE_INDEX}:
        covered = torch.zeros(96, 96, dtype=torch.bool)
        for (x0, y0, x1, y1), label in zip(target["boxes"].tolist(), target["labels"].tolist(), strict=True):
            if label == k:
                covered |= (cols >= x0) & (cols < x1) & (rows >= y0) & (rows < y1)
        inside_own_box.append(bool(((target["mask"] == k) <= covered).all()))
print("every digit pixel lies inside a box of its own class:", all(inside_own_box))
again = DigitScenes("train", 8, size=96, source=cfg.data_source)
print("the same arguments draw the same scenes:", torch.equal(again.images, preview.images))

# %% [markdown]
# ## Semantic Segmentation
#
# Segmentation classifies **every pixel**. A model maps an image $(3, H, W)$ to class scores
# $(C, H, W)$, and the loss is the cross-entropy of each pixel, averaged over the pixels that are labelled:
#
# $$\mathcal{L} = -\frac{1}{\sum_c w_c N_c} \sum_{i:\, y_i \neq 255} w_{y_i} \log \operatorname{softmax}(z_i)_{y_i},$$
#
# where $N_c$ counts the pixels of class $c$. Pixels labelled 255 (the soft digit edges) are left out of
# the sum: they give no loss and no gradient. The class weights $w_c$ matter here because background covers
# about nine pixels in ten: with $w = 1$ everywhere a network first learns to call everything background,
# which is already 90% accurate. We give background the weight 0.1, which makes the background and the
# digits weigh about the same in the loss.
#
# The scores come from one **confusion matrix** $M$, where $M_{tp}$ counts pixels of true class $t$
# predicted as $p$. The intersection over union of class $c$ is
# $\mathrm{IoU}_c = M_{cc} / (\sum_p M_{cp} + \sum_t M_{tc} - M_{cc})$, and **mIoU** is its mean over the
# classes (those with an empty union are left out). Pixel accuracy $\sum_c M_{cc} / \sum M$ is the number
# that looks good for a model that only knows the background; mIoU is the one to watch.

# %%
vclib.show_source(seg.confusion_matrix)
vclib.show_source(seg.segmentation_scores)

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(cfg.seed)
preds_check = torch.randint(0, 11, (4, 33, 47))  # odd sizes on purpose
targets_check = torch.randint(0, 11, (4, 33, 47)).masked_fill(torch.rand(4, 33, 47) < 0.1, IGNORE_INDEX)
scores_check = seg.segmentation_scores(seg.confusion_matrix(preds_check, targets_check, 11))
valid = targets_check != IGNORE_INDEX
by_hand = []
for c in range(11):
    predicted, true = (preds_check == c) & valid, targets_check == c
    by_hand.append((predicted & true).sum() / (predicted | true).sum())
print("IoU per class equals |P and T| / |P or T| counted by hand:",
      torch.allclose(scores_check["iou"], torch.stack(by_hand).float()))
if importlib.util.find_spec("torchmetrics"):  # a test tool ([dev]); Colab may not have it
    from torchmetrics.classification import MulticlassJaccardIndex

    jaccard = MulticlassJaccardIndex(11, average="macro", ignore_index=IGNORE_INDEX)(preds_check, targets_check)
    print("mIoU equals torchmetrics' MulticlassJaccardIndex:", torch.allclose(scores_check["miou"], jaccard))
else:
    print("torchmetrics is not installed (pip install torchmetrics): comparison skipped")
logits_check = torch.randn(2, 11, 8, 8, requires_grad=True)
masks_check = torch.randint(0, 11, (2, 8, 8))
masks_check[:, :4] = IGNORE_INDEX
seg.pixel_cross_entropy(logits_check, masks_check).backward()
print("ignored pixels get no gradient:", bool((logits_check.grad[:, :, :4] == 0).all()))

# %% [markdown]
# The segmentation sections use smaller scenes than the detector: 48 x 48 pixels with up to three digits,
# so that a from-scratch network trains in about two minutes on a laptop CPU. Full mode segments pets instead
# (Oxford-IIIT Pet, 160 x 160, classes background and pet, borders ignored) and, for FCN, Pascal VOC 2012.

# %%
if cfg.quick:
    seg_size, seg_classes = 48, list(SCENE_CLASSES)
    seg_train_scenes = DigitScenes("train", 2000, size=seg_size, max_digits=3, source=cfg.data_source)
    seg_test_scenes = DigitScenes("test", 300, size=seg_size, max_digits=3, source=cfg.data_source)
    seg_train, seg_test = seg_train_scenes.tensors(), seg_test_scenes.tensors()
    class_weights = torch.ones(len(seg_classes)).index_fill_(0, torch.tensor([0]), 0.1)  # background 0.1
else:
    seg_size, seg_classes = 160, list(PETS_CLASSES)
    # A mirrored pet is still a pet: full mode adds flips. Areas brought in from outside are ignored (255).
    flips = v2.Compose([v2.RandomHorizontalFlip(), scene_transforms(True, seg_size, IGNORE_INDEX)])
    seg_train = load_pets_segmentation("train", seg_size, transforms=flips)
    seg_test = load_pets_segmentation("test", seg_size)
    class_weights = None
seg_train_loader = make_loader(seg_train, batch_size=32, shuffle=True, seed=cfg.seed, collate_fn=seg.collate_masks)
seg_test_loader = make_loader(seg_test, batch_size=100, collate_fn=seg.collate_masks)
seg_epochs = cfg.pick(quick=12, full=40)
print(f"{len(seg_train)} training and {len(seg_test)} test images of {seg_size} x {seg_size}, "
      f"{len(seg_classes)} classes")

# %% [markdown]
# ## U-Net and SegNet
#
# Both are **encoder-decoder** networks. The encoder halves the resolution at every level and doubles the
# channels, trading *where* for *what*; the decoder climbs back to full resolution. They differ in what the
# decoder is given to recover the detail that pooling threw away:
#
# - **U-Net** (Ronneberger et al., 2015) **copies the encoder's feature maps** across (skip connections)
#   and concatenates them with the upsampled decoder features: the decoder sees the fine features
#   themselves.
# - **SegNet** (Badrinarayanan et al., 2017) keeps only the **positions of the maxima** of every 2x2
#   max-pooling and uses them to **unpool**: each value goes back to the position it came from and the other
#   three positions get zero. That costs one integer per pooled value instead of a whole feature map.
#
# The shapes below are read from the models with forward hooks, so the diagram is the code.

# %%
vclib.show_source(seg.UNet.forward)
vclib.show_source(seg.max_unpool2d)

# %%
unet = seg.UNet(3, len(seg_classes), base_channels=16, depth=3)
segnet = seg.SegNet(3, len(seg_classes), base_channels=16, depth=3)
fig, axes = plt.subplots(1, 2, figsize=(14, 4.4), dpi=100, layout="constrained")
for ax, (name, net) in zip(axes, (("U-Net", unet), ("SegNet", segnet)), strict=True):
    shapes = seg.level_shapes(net, torch.zeros(1, 3, seg_size, seg_size))
    seg.draw_level_shapes(ax, shapes, title=f"{name}: output of every block for a {seg_size} x {seg_size} input")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
x_check = torch.randn(2, 5, 8, 10, requires_grad=True)
pooled_check, indices_check = F.max_pool2d(x_check, 2, return_indices=True)
ours = seg.max_unpool2d(pooled_check, indices_check, (8, 10))
theirs = F.max_unpool2d(pooled_check, indices_check, 2, output_size=(8, 10))
print("max_unpool2d equals F.max_unpool2d:", torch.equal(ours, theirs))
print("unpooling keeps one value in every 2x2 window:", bool((ours != 0).float().sum() <= ours.numel() / 4))
print("U-Net and SegNet keep any input size, e.g. 67 x 93:",
      all(net(torch.zeros(1, 3, 67, 93)).shape[-2:] == (67, 93) for net in (unet, segnet)))

# %% [markdown]
# Both train for the same number of epochs with Adam and a one-cycle learning rate (it warms up, then
# decays to zero). The progress bars show the loss; the table afterwards compares the two on the test scenes.

# %%
vclib.show_source(seg.train_segmentation)

# %%
comparison = {}
for name, net in (("U-Net", unet), ("SegNet", segnet)):
    torch.manual_seed(cfg.seed)
    history = seg.train_segmentation(net, seg_train_loader, seg_epochs, lr=5e-3, class_weights=class_weights,
                                     desc=name)
    comparison[name] = {"scores": seg.evaluate_segmentation(net, seg_test_loader, len(seg_classes)),
                        "seconds per epoch": sum(h["seconds"] for h in history) / len(history),
                        "parameters": sum(p.numel() for p in net.parameters())}
unet_miou = cfg.log_metric("unet_miou", float(comparison["U-Net"]["scores"]["miou"]))
segnet_miou = cfg.log_metric("segnet_miou", float(comparison["SegNet"]["scores"]["miou"]))
print(f"{'':8} {'parameters':>10} {'s/epoch':>8} {'pixel acc':>9} {'mIoU':>6}  IoU per class "
      f"({', '.join(seg_classes)})")
for name, row in comparison.items():
    scores = row["scores"]
    print(f"{name:8} {row['parameters']:>10,} {row['seconds per epoch']:>8.1f} {float(scores['pixel_accuracy']):>9.3f}"
          f" {float(scores['miou']):>6.3f}  " + " ".join(f"{float(v):.2f}" for v in scores["iou"]))

# %%
# NBVAL_CHECK_OUTPUT
print("U-Net mIoU >= 0.55 (chance is about 0.05):", unet_miou >= 0.55)
print("SegNet mIoU >= 0.40:", segnet_miou >= 0.40)
print("both are far better than background everywhere (mIoU 0.08):", min(unet_miou, segnet_miou) > 0.2)

# %%
images_show, masks_show = next(iter(seg_test_loader))
images_show, masks_show = images_show[:6], masks_show[:6]
with torch.no_grad():
    predictions = {name: net.eval()(images_show).argmax(1) for name, net in (("U-Net", unet), ("SegNet", segnet))}
fig, axes = plt.subplots(4, 6, figsize=(13, 9), dpi=100, layout="constrained")
rows = {"image": None, "ground truth": masks_show, **predictions}
for r, (title, maps) in enumerate(rows.items()):
    for column in range(6):
        ax = axes[r, column]
        if maps is None:
            ax.imshow(images_show[column].permute(1, 2, 0))
        else:
            shown = maps[column].float().masked_fill(maps[column] == IGNORE_INDEX, float("nan"))
            ax.imshow(shown, cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
        ax.set(xticks=[], yticks=[], title=title if column == 0 else "")
plt.show()

# %% [markdown]
# **What each decoder level receives.** Below, for the first test scene: the U-Net decoder's finest level
# gets the encoder's copy (left half of its input channels: sharp edges at full resolution) next to the
# upsampled coarse features (smooth, but they know *which* digit). SegNet's finest decoder level gets the
# unpooled map: sparse, one value per 2x2 window, placed where the encoder's maximum was. The decoder's
# convolutions must fill the gaps.

# %%
unet_inputs = seg.decoder_inputs(unet, images_show[:1])[0][0]  # (2 * 16, H, W): [skip, upsampled]
segnet_input = seg.decoder_inputs(segnet, images_show[:1])[0][0]  # (16, H, W), sparse
half = unet_inputs.shape[0] // 2
panels = {"input": images_show[0].permute(1, 2, 0),
          "U-Net: the skip (encoder copy)": unet_inputs[:half].abs().mean(0),
          "U-Net: upsampled from below": unet_inputs[half:].abs().mean(0),
          "SegNet: unpooled map": segnet_input.abs().mean(0),
          "SegNet: non-zero, one channel": (segnet_input[0] != 0).float()}
fig, axes = plt.subplots(1, 5, figsize=(15, 3.4), dpi=100, layout="constrained")
for ax, (title, panel) in zip(axes, panels.items(), strict=True):
    ax.imshow(panel, cmap=None if panel.ndim == 3 else "magma", interpolation="nearest")
    ax.set(title=title, xticks=[], yticks=[])
plt.show()
print(f"SegNet's finest decoder level: {float((segnet_input != 0).float().mean()):.0%} of the positions of a "
      "channel hold a value (at most 25%, one per 2x2 window)")

# %% [markdown]
# With the same budget U-Net beats SegNet here, at the price of carrying whole feature maps across; SegNet's
# decoder has to rebuild the detail from positions alone. Both separate digits from background well (the
# background IoU is close to 1); the errors are mostly *which* digit, as the mixed colours inside some of
# SegNet's digits above show. The thin digit 1 scores lowest for both: one pixel of error along a stroke
# two pixels wide is a large part of its area. Neither network reaches the course's target of 0.75 mIoU in
# this quick budget.
#
# **Questions**
#
# 1. U-Net's first skip carries 16 channels at full resolution, SegNet's only the positions of maxima. For a
#    512 x 512 image and 64 channels in float32, how much memory does each need to keep for the decoder?
# 2. Why would pixel accuracy rank a model that predicts only background well, and mIoU not?
# 3. U-Net pads the input to a multiple of $2^{depth-1}$ and crops the output. What would go wrong at a
#    concatenation without that padding, for a 67-pixel input?

# %% [markdown]
# ## FCN-8s and Fine-tuning
#
# The FCN paper (Long, Shelhamer and Darrell, 2015) turns a *classification* network into a segmentation
# network, so it can start from what the classifier already learned:
#
# 1. **Convolutionalise** the classifier. A fully connected layer on a $(c, k, k)$ feature map is a
#    $k \times k$ convolution with the same weights; on a larger image it slides, and the network outputs
#    a coarse map of class scores (stride 32) instead of one vector.
# 2. **Upsample** the coarse scores with a transposed convolution, initialised as **bilinear
#    interpolation**. Starting from interpolation gives a sensible output from the first step (a random
#    transposed convolution would scramble the scores), and since the weights stay trainable the network can
#    then learn a better upsampling than interpolation.
# 3. **Skips**: FCN-16s adds scores predicted from pool4 (stride 16), FCN-8s also from pool3 (stride 8). The
#    skip layers start at zero, so each finer network starts exactly where the coarser one was.
#
# In quick mode the classifier is a small VGG-style network (`DigitVGG`) trained on one-digit 32 x 32 scenes;
# full mode starts from torchvision's ImageNet VGG16 and segments Pascal VOC 2012.

# %%
vclib.show_source(seg.bilinear_upsampling)
vclib.show_source(seg.FCN.forward)

# %%
# NBVAL_CHECK_OUTPUT
x_check = torch.randn(1, 3, 12, 12)
for factor in (2, 4, 8):
    ours = seg.bilinear_upsampling(3, factor)(x_check)
    theirs = F.interpolate(x_check, scale_factor=factor, mode="bilinear", align_corners=False)
    inner = (slice(None), slice(None), slice(factor, -factor), slice(factor, -factor))
    print(f"factor {factor}: output {tuple(ours.shape[-2:])}, equals bilinear interpolation away from the border:",
          torch.allclose(ours[inner], theirs[inner], atol=1e-5))
fc_check = torch.nn.Linear(4 * 3 * 3, 7)
as_conv = seg.convolutionalize(fc_check, 4, 3)
features_check = torch.randn(2, 4, 3, 3)
print("a convolutionalised Linear gives the same scores on its own input size:",
      torch.allclose(fc_check(features_check.flatten(1)), as_conv(features_check)[:, :, 1, 1], atol=1e-5))

# %%
if cfg.quick:
    crops = DigitScenes("train", 4000, size=32, max_digits=1, source=cfg.data_source)  # one digit each
    crop_labels = torch.stack([labels[0] - 1 for labels in crops.labels])  # (N,) digit 0..9
    crops_test = DigitScenes("test", 1000, size=32, max_digits=1, source=cfg.data_source)
    crop_test_labels = torch.stack([labels[0] - 1 for labels in crops_test.labels])
    torch.manual_seed(cfg.seed)
    classifier = seg.DigitVGG(base_channels=8, hidden_size=128)
    crop_loader = make_loader(TensorDataset(crops.tensors().tensors[0], crop_labels), batch_size=32, shuffle=True,
                              seed=cfg.seed)
    fit(classifier, crop_loader, epochs=12, optimizer=torch.optim.Adam(classifier.parameters(), lr=2e-3),
        desc="DigitVGG")
    with torch.no_grad():
        crop_accuracy = float((classifier.eval()(crops_test.tensors().tensors[0]).argmax(1) == crop_test_labels)
                              .float().mean())
    print(f"DigitVGG on one-digit test scenes: accuracy {crop_accuracy:.3f} (chance 0.1)")
    make_backbone = classifier.to_backbone

    def make_random_backbone() -> seg.VGGBackbone:
        return seg.DigitVGG(base_channels=8, hidden_size=128).to_backbone()

    fcn_classes, fcn_train, fcn_test_loader = seg_classes, seg_train, seg_test_loader
else:
    make_backbone = seg.vgg16_backbone  # ImageNet weights from torchvision

    def make_random_backbone() -> seg.VGGBackbone:
        return seg.vgg16_backbone(weights=None)

    fcn_classes = list(VOC_SEGMENTATION_CLASSES)
    fcn_train = load_voc_segmentation("train", 320, transforms=v2.Compose([v2.RandomHorizontalFlip(),
                                                                           scene_transforms(True, 320, IGNORE_INDEX)]))
    fcn_test_loader = make_loader(load_voc_segmentation("test", 320), batch_size=16, collate_fn=seg.collate_masks)
    class_weights = None

# %% [markdown]
# How much is the classifier worth as a starting point? We train FCN-8s on the first 50, 200 and all of the
# training scenes in three ways: **fine-tuned** (every layer starts from the classifier), **frozen** (the
# classifier's convolutions are fixed; only fc6/fc7, the score layers and the upsampling train) and
# **from scratch** (the same architecture with random weights). Each run takes the same number of
# optimiser steps, so smaller budgets see their scenes more often.

# %%
fcn_budgets = cfg.pick(quick=(50, 200, len(fcn_train)), full=(100, 400, len(fcn_train)))
fcn_steps = cfg.pick(quick=300, full=3000)
fcn_results: dict[str, list[float]] = {"fine-tuned": [], "frozen": [], "from scratch": []}
fcn_models = {}
for budget in fcn_budgets:
    subset = Subset(fcn_train, range(budget))
    for start in fcn_results:
        torch.manual_seed(cfg.seed)
        fcn = seg.FCN8s(len(fcn_classes), make_backbone() if start != "from scratch" else make_random_backbone())
        if start == "frozen":
            fcn.freeze_features()
        loader = make_loader(subset, batch_size=16, shuffle=True, seed=cfg.seed, collate_fn=seg.collate_masks)
        epochs = -(-fcn_steps // len(loader))
        seg.train_segmentation(fcn, loader, epochs, lr=3e-3, class_weights=class_weights,
                               desc=f"{start}, {budget}")
        fcn_results[start].append(float(seg.evaluate_segmentation(fcn, fcn_test_loader, len(fcn_classes))["miou"]))
        fcn_models[start, budget] = fcn
fig, ax = plt.subplots(figsize=(6.5, 4), dpi=100)
for start, values in fcn_results.items():
    ax.plot(fcn_budgets, values, "o-", label=start)
ax.set(xscale="log", xlabel="labelled training scenes", ylabel="test mIoU", title="FCN-8s: mIoU against label budget")
ax.legend()
plt.show()
for start, values in fcn_results.items():
    print(f"{start:>13}: " + ", ".join(f"{b} scenes {v:.3f}" for b, v in zip(fcn_budgets, values, strict=True)))
gain = fcn_results["fine-tuned"][0] - fcn_results["from scratch"][0]
cfg.log_metric("fcn8s_finetune_gain_smallest_budget", gain)
cfg.log_metric("fcn8s_miou", fcn_results["fine-tuned"][-1])

# %%
# NBVAL_CHECK_OUTPUT
print("fine-tuning beats training from scratch at every budget:",
      all(f > s for f, s in zip(fcn_results["fine-tuned"], fcn_results["from scratch"], strict=True)))

# %% [markdown]
# **What each skip adds.** FCN-32s and FCN-16s are the same code with fewer skips. Each is fine-tuned from
# the classifier on every training scene with the same number of steps as FCN-8s above, and we compare
# their predictions on the same test scenes.

# %%
strides_models = {"FCN-32s": seg.FCN32s, "FCN-16s": seg.FCN16s}
strides_miou = {}
for name, cls in strides_models.items():
    torch.manual_seed(cfg.seed)
    fcn = cls(len(fcn_classes), make_backbone())
    loader = make_loader(fcn_train, batch_size=16, shuffle=True, seed=cfg.seed, collate_fn=seg.collate_masks)
    seg.train_segmentation(fcn, loader, -(-fcn_steps // len(loader)), lr=3e-3, class_weights=class_weights, desc=name)
    strides_models[name] = fcn
    strides_miou[name] = float(seg.evaluate_segmentation(fcn, fcn_test_loader, len(fcn_classes))["miou"])
strides_models["FCN-8s"] = fcn_models["fine-tuned", fcn_budgets[-1]]
strides_miou["FCN-8s"] = fcn_results["fine-tuned"][-1]
fig, axes = plt.subplots(3, 5, figsize=(13, 8), dpi=100, layout="constrained")
fcn_images = next(iter(fcn_test_loader))[0][:5]
for r, (name, fcn) in enumerate(strides_models.items()):
    with torch.no_grad():
        shown = fcn.eval()(fcn_images).argmax(1)
    for column in range(5):
        axes[r, column].imshow(shown[column], cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
        axes[r, column].set(xticks=[], yticks=[], title=f"{name}: mIoU {strides_miou[name]:.2f}" if column == 0 else "")
plt.show()

# %% [markdown]
# Fine-tuning beats training from scratch at every budget, and the network trained from scratch hardly gets
# past "everything is background" in this many steps. The gains are modest, though, because the starting
# point is weak: the small classifier recognises only about a quarter of the one-digit scenes, and FCN's
# coarse grid suits these small scenes poorly. Freezing the backbone costs almost nothing at 50 scenes and
# clearly falls behind full fine-tuning with all the labels, where there is enough data to adapt the
# features. In full mode the starting point is torchvision's ImageNet VGG16, and there fine-tuning is what
# makes FCN work at all.
#
# FCN-32s scores on a grid of 32-pixel cells, two by two for a 48-pixel scene, and finds almost nothing. Each
# skip brings a finer grid: FCN-16s finds some digits, and FCN-8s finds more and scores best. Even FCN-8s
# paints blobs, far coarser than U-Net, whose decoder climbs back to full resolution one level at a time.
#
# In full mode the same cells fine-tune torchvision's ImageNet VGG16 on Pascal VOC 2012 *train* and report
# mIoU on VOC 2012 *val* (the test masks are not public). The FCN paper's 62.2 mIoU for FCN-8s is on the
# VOC 2012 *test* set through the evaluation server, and was trained on more images (the SBD annotations),
# so compare with care.
#
# **Questions**
#
# 1. The frozen backbone is about as good as full fine-tuning at 50 scenes and falls behind with all the
#    labels. Why?
# 2. What would happen if the upsampling layers started from random weights instead of bilinear
#    interpolation? (Try it: replace `bilinear_upsampling` by a default `nn.ConvTranspose2d`.)
# 3. The skip score layers start at zero. What does FCN-8s compute at the first step, and why is that a good
#    starting point?

# %% [markdown]
# ## Data augmentation
#
# A detector should not care whether a digit is a little larger, rotated by a few degrees, shifted, or
# seen in different light. Augmentation draws such changes at random every time an image is used, so the
# model never sees exactly the same picture twice and learns the invariance from the data.
#
# For dense labels the change must be applied to **the image and its labels together**: a rotation moves
# the pixels of the mask and the corners of the boxes by the same map. `torchvision.transforms.v2`
# dispatches on the tensor's type: an `Image` is interpolated bilinearly, a `Mask` with nearest neighbours
# (so no new label values such as 4.5 appear), and `BoundingBoxes` are transformed as boxes and then
# clipped to the image; boxes that leave the image are removed with their labels. Horizontal flips are
# left out on purpose: a mirrored 7 is not a 7.

# %%
vclib.show_source(scene_transforms)

# %%
torch.manual_seed(cfg.seed)
augmented = DigitScenes("train", 8, size=96, source=cfg.data_source, transforms=scene_transforms(True, 96))
fig, axes = plt.subplots(2, 5, figsize=(15, 6.4), dpi=100, layout="constrained")
for column in range(5):
    image, target = preview[1] if column == 0 else augmented[1]
    title = "original" if column == 0 else f"random draw {column}"
    show_image(axes[0, column], image, title)
    draw_boxes(axes[0, column], target["boxes"], target["labels"] - 1, class_names=[str(d) for d in range(10)])
    shown_mask = target["mask"].float().masked_fill(target["mask"] == IGNORE_INDEX, float("nan"))
    axes[1, column].imshow(shown_mask, cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
    axes[1, column].set(title="its mask", xticks=[], yticks=[])
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
label_values = set(range(11)) | {IGNORE_INDEX}
draws = [augmented[i % 8] for i in range(40)]
print("masks keep only the original label values:",
      all(set(t["mask"].unique().tolist()) <= label_values for _, t in draws))
print("one label per box after boxes are clipped and removed:",
      all(len(t["boxes"]) == len(t["labels"]) for _, t in draws))
print("images stay in [0, 1]:", all(0 <= image.min() and image.max() <= 1 for image, _ in draws))
print("repeated draws of one scene differ:", not torch.equal(draws[0][0], draws[8][0]))

# %% [markdown]
# ### Augmentation gallery
#
# One transform at a time, at a strength you choose, on one scene: the image with its boxes on top and the
# mask below, for four random draws. The last transform, the horizontal flip, is in the list to show what
# goes wrong: the mask and boxes follow perfectly, but a mirrored 2 is no longer a 2, so the label lies.

# %%
gallery_scenes = DigitScenes("train", 8, size=96, source=cfg.data_source)
augmentation_gallery(gallery_scenes)

# %% [markdown]
# ### Does augmentation help? U-Net on 200 scenes
#
# Augmentation matters most when data is scarce. We train the same U-Net as above on only 200 training
# scenes, once on the scenes as they are and once with a fresh random draw of `scene_transforms` every
# time a scene is used, and follow the test mIoU after every epoch.

# %%
small_budget, small_epochs = 200, cfg.pick(quick=25, full=40)
if cfg.quick:
    small_sets = {
        "no augmentation": DigitScenes("train", small_budget, size=seg_size, max_digits=3, source=cfg.data_source),
        "augmented": DigitScenes("train", small_budget, size=seg_size, max_digits=3, source=cfg.data_source,
                                 transforms=scene_transforms(True, seg_size)),
    }
else:
    small_sets = {"no augmentation": Subset(load_pets_segmentation("train", seg_size), range(small_budget)),
                  "augmented": Subset(seg_train, range(small_budget))}  # seg_train draws flips and scene_transforms
small_histories = {}
for name, dataset in small_sets.items():
    torch.manual_seed(cfg.seed)
    net = seg.UNet(3, len(seg_classes), base_channels=16, depth=3)
    loader = make_loader(dataset, batch_size=16, shuffle=True, seed=cfg.seed, collate_fn=seg.collate_masks)
    small_histories[name] = seg.train_segmentation(net, loader, small_epochs, lr=5e-3, class_weights=class_weights,
                                                   val_loader=seg_test_loader, desc=name)
fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
for name, history in small_histories.items():
    ax.plot([h["epoch"] for h in history], [h["val_miou"] for h in history], label=name)
ax.set(xlabel="epoch", ylabel="test mIoU", title=f"U-Net trained on {small_budget} scenes")
ax.legend()
plt.show()
final_miou = {name: history[-1]["val_miou"] for name, history in small_histories.items()}
for name, value in final_miou.items():
    print(f"{name}: test mIoU {value:.3f} after {small_epochs} epochs")
augmentation_gain = final_miou["augmented"] - final_miou["no augmentation"]
cfg.log_metric("unet_200_augmentation_gain", augmentation_gain)

# %%
# NBVAL_CHECK_OUTPUT
final_train_loss = {name: history[-1]["train_loss"] for name, history in small_histories.items()}
print("augmented scenes are harder to fit (higher final training loss):",
      final_train_loss["augmented"] > final_train_loss["no augmentation"])

# %% [markdown]
# **Read the curves with care.** With this budget of steps augmentation did not help: the curves give
# the final test mIoU of each run, and neither run has stopped improving, so neither has started to
# overfit its 200 scenes. Augmentation is a regulariser. It makes every step's task harder (the training
# loss stays higher) in exchange for less overfitting, and that trade pays only once a model trains long
# enough to memorise its data, which these two runs have not reached (try `small_epochs = 150`, and see the
# questions).
#
# The boxes follow the digits through rotation and scaling, and the masks keep their label values. A
# rotated box is the axis-aligned box around the rotated corners, so it grows a little: rotation makes
# box labels looser, which is one reason detectors are trained with small angles only.
#
# **Questions**
#
# 1. Why must the mask be resampled with nearest neighbours, and what would bilinear interpolation do to the
#    label of a pixel between digit 3 (label 4) and digit 5 (label 6)?
# 2. `RandomResizedCrop` can cut a digit in half. What happens to its box and its label, and is a half digit
#    still a fair training example?
# 3. Which of these augmentations would be wrong for a road-scene data set, and which one would you add?
# 4. Train the 200-scene U-Nets for 150 epochs. Does the run without augmentation start to overfit (its test
#    mIoU falling while its training loss keeps falling), and does the augmented run overtake it?

# %% [markdown]
# ## Object Detection and Localization: YOLOv3
#
# ![YOLOv3: Darknet, feature pyramid, three heads and their grids](../assets/2_yolo1.png)
#
# A detector answers *what* and *where*: a set of boxes, each with a class and a score. YOLOv3 (Redmon and
# Farhadi, 2018) does it in one forward pass. It lays a grid over the image at three strides $s$; every cell
# predicts, for each of its $A = 3$ **anchors** (typical box shapes $p_w \times p_h$), an offset, a size,
# an objectness and $C$ class scores:
#
# $$b_x = s\,(\sigma(t_x) + c_x), \quad b_y = s\,(\sigma(t_y) + c_y), \quad
# b_w = p_w\, e^{t_w}, \quad b_h = p_h\, e^{t_h},$$
#
# where $(c_x, c_y)$ is the cell's column and row. The sigmoid keeps the centre inside its cell, and the
# exponential keeps sizes positive and makes $t_w$ a log-ratio to the anchor. During training each object
# is the responsibility of exactly **one** anchor in **one** cell: the anchor (out of all nine, across the
# three strides) whose shape matches it best, in the cell that holds its centre. Fine strides take small
# objects, coarse strides large ones.
#
# The quick mode detects the ten digit classes in the digit scenes above; full mode
# trains on Pascal VOC (below).

# %%
if cfg.quick:
    image_size, class_names, collate = 96, [str(d) for d in range(10)], det.collate_digit_detection
    train_scenes = DigitScenes("train", 1500, size=image_size, source=cfg.data_source)
    test_scenes = DigitScenes("test", 300, size=image_size, source=cfg.data_source)
    box_sizes = torch.cat([b[:, 2:] - b[:, :2] for b in train_scenes.boxes])  # (N, 2) widths and heights
    # Digits are 10 to 50 pixels: read Darknet's pyramid one stage earlier, at strides 4, 8 and 16.
    model_config = {"width": 8, "depths": (1, 1, 2, 2), "strides": (4, 8, 16)}
else:
    image_size, class_names, collate = 416, list(VOC_CLASSES), det.collate_detection
    train_scenes = load_voc_detection("train", image_size, transforms=scene_transforms(True, image_size))
    test_scenes = load_voc_detection("test", image_size)
    box_sizes = torch.cat([part.box_sizes() for part in train_scenes.datasets])
    model_config = {"width": 32, "depths": (1, 2, 8, 8, 4), "strides": (8, 16, 32)}  # Darknet-53
print(f"{len(train_scenes)} training and {len(test_scenes)} test images of {image_size} x {image_size}, "
      f"{len(box_sizes)} training boxes, {len(class_names)} classes")

# %% [markdown]
# ### Anchors by k-means
#
# Anchors should be shapes that the training boxes actually have. YOLOv2 found them by k-means on the
# boxes' widths and heights, with the distance $d(\text{box}, \text{anchor}) = 1 - \text{IoU}$ of the two
# placed at the same centre, so that a 10-pixel error matters more on a small box than on a large one.
# Our clusters hold the **median** box (robust to outliers); the anchors come out sorted by area, so the
# first three go to the finest stride.

# %%
vclib.show_source(det.wh_iou)
vclib.show_source(det.kmeans_anchors)

# %%
anchors = det.kmeans_anchors(box_sizes, 9, seed=0)
ks = list(range(1, 13))
coverage = [det.mean_best_iou(box_sizes, det.kmeans_anchors(box_sizes, k, seed=0)) for k in ks]
print("anchors (w x h):", ", ".join(f"{w:.0f}x{h:.0f}" for w, h in anchors.tolist()))
print(f"mean best IoU of a box with its anchor: {coverage[8]:.2f} with 9 anchors, {coverage[0]:.2f} with 1")

fig, (ax_scatter, ax_elbow) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100, layout="constrained")
shown = box_sizes[torch.randperm(len(box_sizes), generator=torch.Generator().manual_seed(0))[:3000]]
ax_scatter.scatter(shown[:, 0], shown[:, 1], s=3, alpha=0.3, label="training boxes")
for level, colour in zip(range(3), ("tab:red", "tab:orange", "tab:green"), strict=True):
    group = anchors[3 * level : 3 * level + 3]
    ax_scatter.scatter(group[:, 0], group[:, 1], s=120, marker="*", color=colour,
                       label=f"anchors of stride {model_config['strides'][level]}")
ax_scatter.set(title="box sizes and the 9 k-means anchors", xlabel="width (pixels)", ylabel="height (pixels)")
ax_scatter.legend(fontsize=8)
ax_elbow.plot(ks, coverage, marker="o")
ax_elbow.axvline(9, color="gray", linestyle="--", label="YOLOv3: k = 9")
ax_elbow.set(title="the elbow: coverage against k", xlabel="k (anchors)", ylabel="mean best IoU")
ax_elbow.legend()
plt.show()

# %% [markdown]
# The elbow flattens: after a handful of anchors each extra one buys little coverage, and nine (three
# per stride) cover the boxes well. In quick mode, tall thin anchors (for ones) separate from squarer ones
# (zeros, eights).
#
# ### The grid: which cell and which anchor is responsible
#
# ![Each digit's responsible cell and anchor](../assets/2_yolo2.png)
#
# `build_targets` turns a scene's boxes into targets in the heads' layout `(B, A, H/s, W/s, ...)`: for each
# box, the best anchor overall, the cell of that anchor's stride that holds the centre, the offsets
# $(\sigma(t_x), \sigma(t_y))$ of the centre in its cell and the log-ratios $t_w = \log(w / p_w)$,
# $t_h = \log(h / p_h)$. Its core:

# %%
vclib.show_source(det.encode_boxes)

# %%
def assign(images_and_targets: list) -> tuple[torch.Tensor, list[dict], dict]:
    images, targets = collate(images_and_targets)
    encoded = det.build_targets([t["boxes"] for t in targets], [t["labels"] for t in targets], anchors,
                                model_config["strides"], image_size)
    return images, targets, encoded


# The first test scene with objects at all three strides.
for index in range(len(test_scenes)):
    scene, scene_targets, example = assign([test_scenes[index]])
    if all(level["mask"].any() for level in example["levels"]):
        break
print(f"test scene {index}")
plot_assignment(scene[0], example, class_names=class_names)
plt.suptitle("responsible cells (cyan), objects (yellow) and their assigned anchors (magenta, dashed)")
plt.show()
for stride, level in zip(model_config["strides"], example["levels"], strict=True):
    for anchor, row, col in level["mask"][0].nonzero().tolist():
        print(f"stride {stride:2d}: anchor {anchor}, cell (row {row}, col {col}), offsets "
              f"{level['offsets'][0, anchor, row, col].tolist()}, log(w/p_w), log(h/p_h) = "
              f"{[round(v, 2) for v in level['log_wh'][0, anchor, row, col].tolist()]}")

# %% [markdown]
# Each object lights up one cell at one stride; its anchor has nearly the object's shape, so the network
# only has to predict small log-ratios.
#
# ### The model: Darknet, a feature pyramid and three heads
#
# The backbone is Darknet: stride-2 convolutions, each followed by residual blocks (a 1×1 convolution
# halving the channels, a 3×3 restoring them, plus the input). The head at the coarsest stride sees the
# most context; its features are reduced, **upsampled** 2× and **concatenated** with the backbone's
# finer features for the next head, and again for the finest, so that small objects are predicted from
# features that know the context. Every head ends in a 1×1 convolution with $A (5 + C)$ outputs per cell.

# %%
vclib.show_source(det.ResidualBlock)
vclib.show_source(det.YOLOv3.forward)

# %%
torch.manual_seed(cfg.seed)
model = det.YOLOv3(len(class_names), anchors, **model_config).to(cfg.device)
outputs = model(scene.to(cfg.device))
print(f"YOLOv3 ({model_config}): {sum(p.numel() for p in model.parameters()):,} parameters")
for stride, out in zip(model.strides, outputs, strict=True):
    print(f"stride {stride:2d}: {tuple(out.shape)} = (B, A, H/{stride}, W/{stride}, 5 + C)")

# %% [markdown]
# ### The loss, and training
#
# Three terms, summed over the heads and divided by the batch size:
#
# - **box**: the paper's squared error on $(\sigma(t_x), \sigma(t_y), t_w, t_h)$ of the responsible anchors;
# - **objectness**: binary cross-entropy, 1 at responsible anchors, 0 elsewhere, except that a prediction
#   whose box already overlaps some object with IoU > 0.5 is **ignored** (it is a good box that simply was
#   not chosen, and should not be punished); empty cells are down-weighted, as YOLOv1's $\lambda_{noobj}$;
# - **classes**: one independent binary cross-entropy per class (YOLOv3 has no softmax, so labels could
#   overlap, as "woman" and "person" do).

# %%
vclib.show_source(det.yolo_loss)

# %%
epochs = cfg.pick(quick=8, full=50)
train_loader = make_loader(train_scenes, batch_size=16, shuffle=True, seed=cfg.seed, collate_fn=collate)
history = det.train_yolo(model, train_loader, epochs, lr=3e-3)

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), dpi=100, layout="constrained")
steps = [h["step"] for h in history]
for ax, part in zip(axes, ("box", "obj", "cls"), strict=True):
    values = torch.tensor([h[part] for h in history])
    ax.plot(steps, values, alpha=0.3, label="per batch")
    smooth = torch.nn.functional.avg_pool1d(values[None, None], 15, 1, 7, count_include_pad=False)[0, 0]
    ax.plot(steps, smooth, label="running mean")
    ax.set(title=f"{part} loss", xlabel="step", ylabel="loss per image")
    ax.legend()
plt.show()
tenth = max(len(history) // 10, 1)
for part in ("box", "obj", "cls"):
    first, last = (sum(h[part] for h in chunk) / len(chunk) for chunk in (history[:tenth], history[-tenth:]))
    print(f"{part} loss per image: {first:.2f} over the first tenth of the steps, {last:.2f} over the last tenth")

# %% [markdown]
# Compare the three terms: finding *where* the objects are (box, objectness) and deciding *which* class
# they are need not be learned at the same pace. Which term falls first, and which is still falling when
# training stops?

# %% [markdown]
# ### Decoding and non-maximum suppression
#
# `decode` inverts the encoding: every anchor of every cell becomes a box in pixels with an objectness
# and class probabilities. A detection's score is objectness × its best class probability. Most of the
# thousands of boxes are empty background; a **confidence threshold** removes them. What remains are
# clusters of near-identical boxes around each object: **non-maximum suppression** keeps the best box and
# removes every box of the same class that overlaps it with IoU above a threshold, then repeats.

# %%
vclib.show_source(det.decode_boxes)
vclib.show_source(det.nms)

# %%
model.eval()
with torch.no_grad():
    decoded = det.decode(model(scene.to(cfg.device)), model.anchors, model.strides).cpu()  # (1, N, 5 + C)
scores, labels = (decoded[0, :, 4:5] * decoded[0, :, 5:]).max(1)
confident = scores > 0.25
kept = det.batched_nms(decoded[0, confident, :4], scores[confident], labels[confident], 0.45)
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), dpi=100, layout="constrained")
stages = [(torch.ones_like(confident), None, "every decoded box"), (confident, None, "score > 0.25"),
          (confident, kept, "after NMS (IoU 0.45)")]
for ax, (keep, after_nms, title) in zip(axes, stages, strict=True):
    boxes, box_scores, box_labels = decoded[0, keep, :4], scores[keep], labels[keep]
    if after_nms is not None:
        boxes, box_scores, box_labels = boxes[after_nms], box_scores[after_nms], box_labels[after_nms]
    show_image(ax, scene[0], f"{title}: {len(boxes)} boxes")
    if after_nms is None and len(boxes) > 60:  # too many to read: the 100 best, without captions
        top = box_scores.topk(100).indices
        draw_boxes(ax, boxes[top].clamp(0, image_size - 1), color="yellow", linewidth=0.4)
        ax.set_title(f"{title}: {len(boxes)} boxes (the 100 best drawn)")
    else:
        draw_boxes(ax, boxes, box_labels, box_scores, class_names)
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
generator = torch.Generator().manual_seed(0)
same = []
for _ in range(20):
    centres = torch.rand(300, 2, generator=generator) * image_size
    sizes = 4 + torch.rand(300, 2, generator=generator) * image_size / 4
    random_boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], 1)
    random_scores = torch.rand(300, generator=generator)
    classes = torch.randint(0, 3, (300,), generator=generator)
    same.append(torch.equal(det.nms(random_boxes, random_scores, 0.5), tvops.nms(random_boxes, random_scores, 0.5)))
    same.append(torch.equal(det.batched_nms(random_boxes, random_scores, classes, 0.5),
                            tvops.batched_nms(random_boxes, random_scores, classes, 0.5)))
print("from-scratch nms and batched_nms keep the same boxes, in the same order, as torchvision:", all(same))
print("the scene's detections after NMS overlap less than 0.45 within a class:",
      bool(all(tvops.box_iou(b, b).fill_diagonal_(0).max() <= 0.45 for c in labels[confident][kept].unique()
               for b in [decoded[0, confident, :4][kept][labels[confident][kept] == c]])))

# %% [markdown]
# ### Evaluation: mean average precision
#
# A detection is a true positive when it overlaps a not-yet-matched object of its class with IoU ≥ $t$
# (detections are matched from the highest score down). Sweeping the score threshold traces a
# precision-recall curve per class; **AP** is the area under it (COCO: the mean precision at the 101 recall
# levels 0, 0.01, …, 1, after making precision non-increasing), and **mAP** averages over classes.
# mAP@0.5 uses $t = 0.5$ (Pascal VOC's metric); COCO's mAP@[.5:.95] averages over
# $t = 0.50, 0.55, \dots, 0.95$ and rewards precise boxes.

# %%
vclib.show_source(match_detections)
vclib.show_source(average_precision)

# %%
test_loader = make_loader(test_scenes, batch_size=64, collate_fn=collate)
preds, targets = det.detect(model, test_loader)
scores_map = det.mean_average_precision(preds, targets)
map_50 = cfg.log_metric("yolov3_map_50", float(scores_map["map_50"]))
map_coco = cfg.log_metric("yolov3_map_50_95", float(scores_map["map"]))
print(f"YOLOv3 on {len(test_scenes)} test images: mAP@0.5 = {map_50:.3f}, mAP@[.5:.95] = {map_coco:.3f}")

# %%
# NBVAL_CHECK_OUTPUT
if importlib.util.find_spec("torchmetrics") and importlib.util.find_spec("pycocotools"):  # test tools ([dev])
    from torchmetrics.detection import MeanAveragePrecision

    torchmetrics_map = MeanAveragePrecision(box_format="xyxy", iou_type="bbox")
    torchmetrics_map.update(preds, targets)
    torchmetrics_map = torchmetrics_map.compute()
    print("mAP equals torchmetrics (map, map_50, map_75) to 1e-6:",
          all(abs(float(scores_map[k]) - float(torchmetrics_map[k])) < 1e-6 for k in ("map", "map_50", "map_75")))
else:
    print("torchmetrics and pycocotools are not installed (pip install torchmetrics pycocotools): comparison skipped")
print("mAP@0.5 >= 0.35:", map_50 >= 0.35)
print("mAP@[.5:.95] is below mAP@0.5 (precise boxes are harder):", map_coco < map_50)

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=100)
precision_at_50 = scores_map["precision"][0]  # (R, C) at IoU 0.5
for c, label in enumerate(scores_map["classes"].tolist()):
    ax.plot(scores_map["recall_thresholds"], precision_at_50[:, c].clamp(min=0),
            label=f"{class_names[label]}: AP {float(precision_at_50[:, c].mean()):.2f}")
ax.set(title="precision-recall at IoU 0.5, per class", xlabel="recall", ylabel="interpolated precision",
       xlim=(0, 1), ylim=(0, 1.02))
ax.legend(fontsize=7, ncol=2)
plt.show()

# %% [markdown]
# Each curve ends at the highest recall the detector reaches at IoU 0.5, and its height is the fraction of
# correct detections among those scored at least as high. A class whose curve drops early is often
# confused with another class or missed; the legend gives each class's AP. Below, the kinds of error
# at a score threshold of 0.25: a **missed** object (no box of any class on it), a **wrong class** (a box
# on an object of another class), a **duplicate** (a second box of the right class that NMS did not
# remove) and a **background** detection.

# %%
confident_preds = [{key: value[p["scores"] > 0.25] for key, value in p.items()} for p in preds]
errors = [det.detection_errors(p, t) for p, t in zip(confident_preds, targets, strict=True)]
totals = {kind: sum(len(e[kind]) for e in errors) for kind in ("matched", "missed", "wrong_class", "duplicates",
                                                               "background")}
print(f"{sum(len(t['boxes']) for t in targets)} test objects; at score > 0.25:", totals)
fig, axes = plt.subplots(1, 4, figsize=(15, 4.2), dpi=100, layout="constrained")
for ax, kind in zip(axes, ("missed", "wrong_class", "duplicates", "background"), strict=True):
    index = next((i for i, e in enumerate(errors) if len(e[kind])), 0)
    show_image(ax, test_scenes[index][0], f"{kind.replace('_', ' ')} (scene {index})")
    draw_boxes(ax, targets[index]["boxes"], targets[index]["labels"], class_names=class_names, color="white",
               linestyle="--")
    draw_boxes(ax, confident_preds[index]["boxes"], confident_preds[index]["labels"],
               confident_preds[index]["scores"], class_names)
    if kind == "missed":
        draw_boxes(ax, targets[index]["boxes"][errors[index][kind]], color="red", linewidth=2.5)
    else:
        draw_boxes(ax, confident_preds[index]["boxes"][errors[index][kind]], color="red", linewidth=2.5)
fig.suptitle("failure cases: ground truth dashed white, detections yellow, the error in red")
plt.show()

# %% [markdown]
# ### Detection browser
#
# Step through test scenes and move the thresholds. A low confidence threshold shows the duplicates
# and background boxes that NMS and the threshold remove; a high NMS IoU threshold lets duplicates
# survive, a very low one merges neighbouring objects of the same class.

# %%
browse_images, browse_targets = collate([test_scenes[i] for i in range(32)])
with torch.no_grad():
    browse_decoded = det.decode(model(browse_images.to(cfg.device)), model.anchors, model.strides).cpu()
detection_browser(browse_images, browse_decoded, browse_targets, class_names)

# %% [markdown]
# ### Full mode: Pascal VOC
#
# With `VCLIB_MODE=full` the same code trains the full Darknet-53 YOLOv3 (strides 8, 16, 32) on Pascal
# VOC 2007 + 2012 trainval (16,551 images, 20 classes) at 416 × 416 and tests on VOC 2007 test (4,952
# images), with VOC's "difficult" objects left out. Published reference points for mAP@0.5 on VOC 2007
# test: YOLOv2 at 416 × 416 reaches 76.8 (Redmon and Farhadi, 2017, Table 3), and the YOLOv3 paper reports
# only COCO (55.3 mAP@0.5 at 416 on test-dev). Both start from a Darknet backbone **pretrained on
# ImageNet**; trained from scratch as here, expect clearly lower numbers after the same number of epochs.
#
# **Questions**
#
# 1. Each object is assigned to a single anchor, and other good boxes are only *ignored*. What would go
#    wrong if every anchor with IoU > 0.5 were trained as a positive, with NMS at test time?
# 2. Lower the confidence threshold of `postprocess` to 0.001. Why does mAP usually go up, not down,
#    even though far more false positives appear?
# 3. The digit scenes use strides 4, 8 and 16 rather than YOLOv3's 8, 16 and 32. Using the anchor plot,
#    explain what would happen to the stride-32 head on 96 × 96 scenes.


# %% [markdown]
# ## Design Attention Blocks for Vision Transformer
#
# ![Multi-head attention, and attention maps on a photograph](../assets/2_transformers.png)
#
# Attention is a soft lookup. Each **query** is compared with every **key**; the scores become weights with
# a softmax, and the output is the weighted average of the **values**:
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{E}} + M\right) V,
# \qquad Q \in \mathbb{R}^{L \times E},\; K \in \mathbb{R}^{S \times E},\; V \in \mathbb{R}^{S \times E_v}.$$
#
# Dividing by $\sqrt{E}$ keeps the scores' spread independent of the width, so the softmax does not saturate.
# The mask $M$ removes pairs: in `vclib` a boolean mask is **True where a query may attend** (as in
# `F.scaled_dot_product_attention`), and a float mask is added to the scores.

# %%
vclib.show_source(transformer.scaled_dot_product_attention)

# %% [markdown]
# ### One head
#
# A Vision Transformer's tokens are image patches (Project 1's `patchify`). Take a real photograph, cut it
# into 16×16 patches, and let each patch attend to all the others with the raw, centred and normalised patch
# pixels as queries, keys and values (no learned projections yet). A patch attends most to patches that
# *look* like it, skin to skin and dark cloth to dark cloth, wherever they are in the image.

# %%
photo = load_sample_photo(224)  # (1, 3, 224, 224): matplotlib's portrait of Grace Hopper
patch_size, grid = 16, 224 // 16
patches = transformer.patchify(photo, patch_size)  # (1, 196, 768)
centred = patches - patches.mean(dim=1, keepdim=True)  # (1, 196, 768): remove the average patch
tokens = F.normalize(centred, dim=-1) * 2 * 768**0.25  # unit length, scaled so that QK^T / sqrt(E) = 4 cos
output, weights = transformer.scaled_dot_product_attention(tokens, tokens, tokens, need_weights=True)
print("tokens", tuple(tokens.shape), "-> weights", tuple(weights.shape), "-> output", tuple(output.shape))

queries = {"face": 6 * grid + 6, "cap": 3 * grid + 7, "coat": 12 * grid + 3, "background": 1 * grid + 12}
fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), layout="constrained")
shared_max = weights[0, list(queries.values())].max().item()  # one colour scale for all four panels
for ax, (name, query) in zip(axes, queries.items(), strict=True):
    shown = draw_attention_overlay(ax, photo[0], weights[0, query], query, patch_size, vmax=shared_max)
    ax.set(title=f"query: {name}", xlabel="key patches", ylabel="image rows")
fig.colorbar(shown, ax=axes, label="attention weight", shrink=0.85)
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print(
    "equals F.scaled_dot_product_attention:",
    torch.allclose(output, F.scaled_dot_product_attention(tokens, tokens, tokens), atol=1e-5),
)

# %% [markdown]
# **Masks.** A causal mask lets query $i$ see keys $0..i$ only (language models); a padding mask hides
# tokens that are not there (sequences of different lengths in one batch). Both are boolean masks that
# broadcast against the $(L, S)$ scores.

# %%
q, k, v = torch.randn(3, 2, 6, 8).unbind(0)  # (B=2, L=S=6, E=8) each
real = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])  # (B, S): the second sequence has 4 tokens
causal = attention.causal_mask(6)  # (L, S)
_, causal_weights = transformer.scaled_dot_product_attention(q, k, v, causal, need_weights=True)
_, padded_weights = transformer.scaled_dot_product_attention(q, k, v, real[:, None, :], need_weights=True)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
for ax, (title, shown) in zip(
    axes, (("causal mask", causal_weights[0]), ("padding mask", padded_weights[1])), strict=True
):
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1)
    ax.set(title=title, xlabel="key", ylabel="query")
    ax.grid(False)
fig.colorbar(image, ax=axes, label="attention weight")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print(
    "causal mask equals is_causal=True:",
    torch.allclose(
        transformer.scaled_dot_product_attention(q, k, v, causal),
        F.scaled_dot_product_attention(q, k, v, is_causal=True),
        atol=1e-6,
    ),
)
print(
    "padding mask equals torch's boolean attn_mask:",
    torch.allclose(
        transformer.scaled_dot_product_attention(q, k, v, real[:, None, :]),
        F.scaled_dot_product_attention(q, k, v, attn_mask=real[:, None, :]),
        atol=1e-6,
    ),
)
print(
    "no weight on masked keys:", bool((causal_weights[0].triu(1) == 0).all() and (padded_weights[1, :, 4:] == 0).all())
)

# %% [markdown]
# ### Multi-head attention
#
# A single head compares tokens in one way. Multi-head attention first projects the tokens into $H$ smaller
# subspaces of size $D = E / H$, attends in each independently, and mixes the heads' outputs with one more
# linear map:
#
# $$\operatorname{head}_i = \operatorname{Attention}(X W_i^Q, X W_i^K, X W_i^V), \qquad
# \operatorname{MultiHead}(X) = [\operatorname{head}_1, \dots, \operatorname{head}_H]\, W^O.$$
#
# `vclib`'s `MultiHeadAttention` stores the three input projections stacked in one `in_proj_weight`
# $(3E, E)$ and $W^O$ as `out_proj`, the layout of `nn.MultiheadAttention`, so the two load each other's
# `state_dict`. Its constructor and `forward` take torch's arguments with torch's defaults (so
# `batch_first=False` unless you ask, and the weights averaged over heads unless `average_attn_weights=False`).
# One difference is deliberate: boolean masks mean **True = attend** (torch's `key_padding_mask` and boolean
# `attn_mask` mean True = *ignore*, so pass `~mask` to torch). `forward` sorts out the layout and the masks;
# the multi-head computation itself is `attend`:

# %%
vclib.show_source(transformer.MultiHeadAttention.attend)

# %% [markdown]
# **Shapes, step by step**, for a batch of 2 images of 196 patch tokens, width $E = 64$ and $H = 4$ heads,
# recomputed by hand from the module's own parameters:

# %%
torch.manual_seed(0)
mha = transformer.MultiHeadAttention(embed_dim=64, num_heads=4, batch_first=True)
x = torch.randn(2, 196, 64)  # (B, N, E)
qkv = x @ mha.in_proj_weight.T + mha.in_proj_bias  # (B, N, 3E)
q, k, v = qkv.chunk(3, dim=-1)  # 3 x (B, N, E)
q, k, v = (t.view(2, 196, 4, 16).transpose(1, 2) for t in (q, k, v))  # 3 x (B, H, N, D)
scores = q @ k.transpose(-2, -1) / 16**0.5  # (B, H, N, N)
head_weights = scores.softmax(dim=-1)  # (B, H, N, N)
heads = head_weights @ v  # (B, H, N, D)
merged = heads.transpose(1, 2).reshape(2, 196, 64)  # (B, N, H*D)
by_hand = mha.out_proj(merged)  # (B, N, E)
for name, value in (
    ("x", x),
    ("qkv", qkv),
    ("q per head", q),
    ("scores", scores),
    ("heads", heads),
    ("merged", merged),
    ("output", by_hand),
):
    print(f"{name:<11} {tuple(value.shape)}")

# %%
# NBVAL_CHECK_OUTPUT
module_output, module_weights = mha(x, x, x, average_attn_weights=False)
print(
    "by hand == MultiHeadAttention:",
    torch.allclose(by_hand, module_output, atol=1e-5),
    torch.allclose(head_weights, module_weights, atol=1e-6),
)
reference = nn.MultiheadAttention(64, 4, batch_first=True)
reference.load_state_dict(mha.state_dict())
real = torch.ones(2, 196, dtype=torch.bool)
real[1, 150:] = False  # the second sequence is padded after 150 tokens
ours, ours_weights = mha(x, x, x, key_padding_mask=real, average_attn_weights=False)
theirs, theirs_weights = reference(x, x, x, key_padding_mask=~real, average_attn_weights=False)  # torch: True = pad
print(
    "equals nn.MultiheadAttention with a padding mask (output, per-head weights):",
    torch.allclose(ours, theirs, atol=1e-5),
    torch.allclose(ours_weights, theirs_weights, atol=1e-6),
)
grad_ours = torch.autograd.grad(ours.sum(), mha.in_proj_weight)[0]
grad_theirs = torch.autograd.grad(theirs.sum(), reference.in_proj_weight)[0]
print("equal gradients:", torch.allclose(grad_ours, grad_theirs, atol=1e-4))
try:
    transformer.MultiHeadAttention(embed_dim=64, num_heads=5)
except ValueError as error:
    print("64 dims, 5 heads:", error)

# %% [markdown]
# ### The full block
#
# A Transformer encoder block wraps attention and a two-layer MLP in residual connections. In the pre-norm
# form that ViTs use, each branch sees a LayerNorm of its input:
#
# $$x \leftarrow x + \operatorname{MultiHead}(\operatorname{LN}(x)), \qquad
# x \leftarrow x + W_2\, \operatorname{GELU}(W_1 \operatorname{LN}(x)).$$
#
# Attention mixes information **across** tokens; the MLP transforms each token on its own. The residual
# path lets each block add a refinement instead of replacing its input, which keeps deep stacks trainable.
#
# `TransformerEncoderBlock` is the twin of `nn.TransformerEncoderLayer`: the same arguments and defaults
# (post-norm and ReLU, as in the original Transformer, unless `norm_first=True` and `activation="gelu"`), and
# a call that returns a tensor; `forward_with_weights` also returns each head's attention. Both run `encode`:

# %%
vclib.show_source(transformer.TransformerEncoderBlock.encode)

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
vit_block = {"dim_feedforward": 256, "dropout": 0.0, "activation": "gelu", "batch_first": True, "norm_first": True}
block = transformer.TransformerEncoderBlock(64, 4, **vit_block)
torch_block = nn.TransformerEncoderLayer(64, 4, **vit_block)
torch_block.load_state_dict(block.state_dict())
block_output = block(x, src_key_padding_mask=real)
print(
    "equals nn.TransformerEncoderLayer(norm_first=True), padding mask included:",
    torch.allclose(block_output, torch_block(x, src_key_padding_mask=~real), atol=1e-5),
)
post_norm, torch_post_norm = transformer.TransformerEncoderBlock(64, 4).eval(), nn.TransformerEncoderLayer(64, 4).eval()
torch_post_norm.load_state_dict(post_norm.state_dict())
tokens_first = x.transpose(0, 1)  # (N, B, E): torch's default layout
print("with torch's defaults (post-norm, ReLU, (N, B, E)) too:",
      torch.allclose(post_norm(tokens_first), torch_post_norm(tokens_first), atol=1e-5))

# %%
print(
    "parameters:",
    sum(p.numel() for p in block.parameters()),
    "= attention",
    sum(p.numel() for p in block.self_attn.parameters()),
    "+ MLP",
    sum(p.numel() for p in (*block.linear1.parameters(), *block.linear2.parameters())),
    "+ norms",
    sum(p.numel() for p in (*block.norm1.parameters(), *block.norm2.parameters())),
)

# %% [markdown]
# ### Attention maps on a real image
#
# Now the real thing: patch embedding (a 16×16 convolution with stride 16), sine-cosine position embeddings,
# and a stack of four pre-norm blocks with four heads each, run on the photograph. These weights are
# **untrained**. What does attention look like before any learning? Each head compares patches through
# its own random projection of their content and position; with small random weights the scores are
# all close to each other, so the softmax spreads each query's weight fairly evenly over the 196
# patches (no weight far above 1/196, printed below). All panels share **one colour scale** (the
# colorbar), so a flat map looks flat: coloured with its own scale, each panel would blow up small
# differences around 1/196 into apparent structure.

# %%
torch.manual_seed(0)
embed_dim, num_heads, depth = 96, 4, 4
embed = transformer.PatchEmbedding(image_size=224, patch_size=patch_size, in_channels=3, embed_dim=embed_dim)
blocks = nn.ModuleList(
    transformer.TransformerEncoderBlock(embed_dim, num_heads, **{**vit_block, "dim_feedforward": 2 * embed_dim})
    for _ in range(depth)
)
with torch.no_grad():
    hidden = embed(photo) + transformer.sincos_position_embedding(grid, embed_dim)  # (1, 196, E)
    layer_weights = []
    for block in blocks:
        hidden, block_weights = block.forward_with_weights(hidden)  # (1, 196, E), (1, H, 196, 196)
        layer_weights.append(block_weights[0])  # (H, 196, 196)
attention_maps = torch.stack(layer_weights)  # (layers, heads, 196, 196)
face = queries["face"]
face_maps = attention_maps[:, :, face]  # (layers, heads, 196): where the face patch looks
uniform = 1 / 196
print(f"face query, untrained: weights from {face_maps.min():.4f} to {face_maps.max():.4f} "
      f"(uniform: {uniform:.4f}); top-10 patches hold {face_maps.topk(10).values.sum(-1).mean():.0%} "
      f"of the weight on average (uniform: {10 * uniform:.0%})")

fig, axes = plt.subplots(depth, num_heads, figsize=(12, 11), layout="constrained")
for layer in range(depth):
    for head in range(num_heads):
        ax = axes[layer, head]
        shown = draw_attention_overlay(ax, photo[0], face_maps[layer, head], face, patch_size,
                                       vmax=face_maps.max().item())
        ax.set(title=f"layer {layer}, head {head}", ylabel="image rows")
fig.colorbar(shown, ax=axes, label="attention weight (one scale for all panels)", shrink=0.6)
fig.suptitle("untrained ViT blocks, query: the face patch (cyan box)")
plt.show()

# %% [markdown]
# The printed range shows how close to uniform the untrained maps are. Project 3 trains a ViT and shows
# attention that has learned what to look for. Pick a layer, a head and a query patch (row and column in
# the 14×14 grid); the widget keeps the shared colour scale:

# %%
attention_explorer(photo[0], attention_maps, patch_size)

# %%
# NBVAL_CHECK_OUTPUT
print("untrained attention is near uniform: no weight above 4 x 1/196:", bool(attention_maps.max() < 4 * uniform))
print("the raw-pixel attention above is not: its face query puts over 4 x 1/196 on some patch:",
      bool(weights[0, face].max() > 4 * uniform))

# %% [markdown]
# **Questions**
#
# 1. Raise the scale of the raw-pixel tokens from `2 * 768**0.25` to `4 * 768**0.25`. Predict how the four
#    maps of the first figure change, then check. What does this say about the role of $1/\sqrt{E}$?
# 2. In the untrained ViT, multiply the patch embedding's weights by 10. Does attention stay near uniform?
#    Why does a trained model's attention sharpen?
# 3. A padding mask hides keys, not queries. What happens to the outputs at padded query positions, and
#    why is that harmless for a classifier that reads the class token?
