"""Project 2, object detection: boxes and NMS, anchors by k-means, YOLOv3 (model, targets, loss, decoding),
COCO mean average precision, and a detection browser; a small DETR with Hungarian set matching (paper 4)."""

from vclib.detection.anchors import kmeans_anchors, mean_best_iou, wh_iou
from vclib.detection.boxes import (
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    generalized_box_iou,
    nms,
)
from vclib.detection.detr import DETR, detect_detr, detr_loss, postprocess_detr, sine_position_encoding, train_detr
from vclib.detection.hungarian import detr_match_cost, hungarian_match
from vclib.detection.loss import yolo_loss
from vclib.detection.metrics import detection_errors, mean_average_precision
from vclib.detection.targets import build_targets, decode, decode_boxes, encode_boxes, postprocess
from vclib.detection.training import collate_detection, collate_digit_detection, detect, train_yolo
from vclib.detection.yolo import Darknet, Head, ResidualBlock, YOLOv3

__all__ = [
    "DETR", "Darknet", "Head", "ResidualBlock", "YOLOv3", "batched_nms", "box_area", "box_convert", "box_iou",
    "build_targets", "collate_detection", "collate_digit_detection", "decode", "decode_boxes", "detect",
    "detect_detr", "detection_errors", "detr_loss", "detr_match_cost", "encode_boxes", "generalized_box_iou",
    "hungarian_match", "kmeans_anchors", "mean_average_precision", "mean_best_iou", "nms", "postprocess",
    "postprocess_detr", "sine_position_encoding", "train_detr", "train_yolo", "wh_iou", "yolo_loss",
]
