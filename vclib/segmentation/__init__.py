"""Project 2, semantic segmentation: U-Net, SegNet (max-unpooling), FCN-8s/16s/32s (bilinear upsampling)
and confusion-matrix metrics."""

from vclib.segmentation.deeplab import ASPP, DeepLabV3, dilate_kernel, effective_receptive_field
from vclib.segmentation.fcn import (
    FCN,
    DigitVGG,
    FCN8s,
    FCN16s,
    FCN32s,
    VGGBackbone,
    bilinear_kernel,
    bilinear_upsampling,
    convolutionalize,
    vgg16_backbone,
)
from vclib.segmentation.inspect import decoder_inputs, draw_level_shapes, level_shapes
from vclib.segmentation.metrics import confusion_matrix, segmentation_scores
from vclib.segmentation.segnet import SegNet, max_unpool2d
from vclib.segmentation.training import (
    collate_masks,
    evaluate_segmentation,
    miou_metric,
    pixel_cross_entropy,
    train_segmentation,
)
from vclib.segmentation.unet import UNet

__all__ = [
    "ASPP", "DeepLabV3", "dilate_kernel", "effective_receptive_field",
    "FCN", "FCN8s", "FCN16s", "FCN32s", "DigitVGG", "SegNet", "UNet", "VGGBackbone", "bilinear_kernel",
    "bilinear_upsampling", "confusion_matrix", "convolutionalize", "evaluate_segmentation", "max_unpool2d",
    "miou_metric", "pixel_cross_entropy", "segmentation_scores", "vgg16_backbone", "collate_masks",
    "decoder_inputs", "draw_level_shapes", "level_shapes", "train_segmentation",
]
