"""Segmentation training helpers, model inspection and the augmentation gallery."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402
from torchvision import tv_tensors  # noqa: E402

from vclib.augment import scene_transforms  # noqa: E402
from vclib.augment_gallery import SINGLE_TRANSFORMS, augmentation_panel  # noqa: E402
from vclib.data import make_loader  # noqa: E402
from vclib.data.scenes import IGNORE_INDEX, DigitScenes  # noqa: E402
from vclib.segmentation import (  # noqa: E402
    SegNet,
    UNet,
    collate_masks,
    decoder_inputs,
    draw_level_shapes,
    evaluate_segmentation,
    level_shapes,
    pixel_cross_entropy,
    train_segmentation,
)


def test_pixel_cross_entropy_weights_and_ignore() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, requires_grad=True)
    masks = torch.randint(0, 4, (2, 5, 6))
    masks[0, 0] = IGNORE_INDEX
    weight = torch.tensor([0.1, 1.0, 2.0, 1.0])
    ours = pixel_cross_entropy(logits, masks, weight=weight)
    valid = masks != IGNORE_INDEX
    per_pixel = F.cross_entropy(logits, masks.clamp(max=3), reduction="none")  # (2, 5, 6)
    w = weight[masks.clamp(max=3)] * valid
    assert torch.allclose(ours, (per_pixel * w).sum() / w.sum())
    ours.backward()
    assert (logits.grad[0, :, 0] == 0).all() and logits.grad[1].abs().sum() > 0


def test_collate_masks_accepts_tensors_and_dicts() -> None:
    image = tv_tensors.Image(torch.rand(3, 4, 4))
    mask = tv_tensors.Mask(torch.zeros(4, 4, dtype=torch.uint8))
    for item in ((image, mask), (image, {"mask": mask, "boxes": None})):
        images, masks = collate_masks([item, item])
        assert type(images) is torch.Tensor and type(masks) is torch.Tensor
        assert images.shape == (2, 3, 4, 4) and masks.shape == (2, 4, 4) and masks.dtype == torch.int64


def test_train_segmentation_learns_and_keeps_frozen_parameters() -> None:
    torch.manual_seed(0)
    images = torch.rand(16, 3, 16, 16)
    masks = (images[:, 0] > 0.5).long()  # class 1 where the red channel is bright: learnable per pixel
    loader = make_loader(TensorDataset(images, masks), batch_size=8, shuffle=True)
    model = UNet(3, 2, base_channels=4, depth=2)
    model.up.requires_grad_(False)
    frozen = model.up[0].weight.clone()
    before = float(evaluate_segmentation(model, loader, 2)["miou"])
    history = train_segmentation(model, loader, epochs=15, lr=1e-2, val_loader=loader)
    assert torch.equal(model.up[0].weight, frozen)
    assert len(history) == 15 and {"train_loss", "val_loss", "val_miou"} <= set(history[-1])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_miou"] > max(before, 0.6)


def test_level_shapes_and_decoder_inputs() -> None:
    x = torch.zeros(1, 3, 20, 28)
    shapes = dict(level_shapes(UNet(3, 5, base_channels=4, depth=3), x))
    assert shapes["encoder.0"] == (1, 4, 20, 28) and shapes["encoder.2"] == (1, 16, 5, 7)
    assert shapes["up.0"] == (1, 4, 20, 28) and shapes["head"] == (1, 5, 20, 28)
    unet_inputs = decoder_inputs(UNet(3, 5, base_channels=4, depth=3), x)
    assert unet_inputs[0].shape == (1, 8, 20, 28)  # skip (4) concatenated with upsampled (4)
    segnet = SegNet(3, 5, base_channels=4, depth=2)
    received = decoder_inputs(segnet, torch.randn(1, 3, 8, 8))
    assert received[0].shape == (1, 4, 8, 8)
    nonzero = (received[0] != 0).reshape(1, 4, 4, 2, 4, 2).sum(dim=(3, 5))  # per 2x2 window
    assert (nonzero <= 1).all()
    assert level_shapes(segnet, torch.zeros(1, 3, 8, 8))[-1] == ("head", (1, 5, 8, 8))
    fig, ax = plt.subplots()
    draw_level_shapes(ax, level_shapes(segnet, torch.zeros(1, 3, 8, 8)))
    assert len(ax.patches) == len(level_shapes(segnet, torch.zeros(1, 3, 8, 8)))
    plt.close(fig)


def test_augmentation_panel_draws_every_transform_and_checks_arguments() -> None:
    scenes = DigitScenes("train", 2, size=48, source="embedded")
    for name in SINGLE_TRANSFORMS:
        fig = augmentation_panel(scenes, name, 0.8, index=1, draws=2)
        assert len(fig.axes) == 6
        plt.close(fig)
    with pytest.raises(ValueError, match="transform"):
        augmentation_panel(scenes, "shear")
    with pytest.raises(ValueError, match="strength"):
        augmentation_panel(scenes, "rotation", 1.5)


def test_scene_transforms_mask_fill() -> None:
    torch.manual_seed(0)
    mask = tv_tensors.Mask(torch.ones(32, 32, dtype=torch.int64))
    image = tv_tensors.Image(torch.rand(3, 32, 32))
    filled = set()
    for _ in range(10):
        boxes = tv_tensors.BoundingBoxes(torch.tensor([[8.0, 8.0, 24.0, 24.0]]), format="XYXY", canvas_size=(32, 32))
        target = {"mask": mask, "boxes": boxes, "labels": torch.tensor([1])}
        _, out = scene_transforms(True, 32, mask_fill=IGNORE_INDEX)(image, target)
        filled |= set(out["mask"].unique().tolist())
    assert filled == {1, IGNORE_INDEX}
