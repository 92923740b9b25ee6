"""Time ``vclib.detection``'s mAP and from-scratch NMS against torchmetrics and torchvision in the same run.

mAP: 2,000 images, 50 detections and 3 to 7 targets each, 10 classes; ``mean_average_precision`` against
``torchmetrics.detection.MeanAveragePrecision(box_format="xyxy", iou_type="bbox")`` (update + compute, the
pycocotools backend). Both must give the same values (to 1e-6) before they are timed.

NMS: ``vclib.detection.nms`` against ``torchvision.ops.nms`` on clustered boxes, same kept indices required.
The from-scratch version is expected to be slower: it computes the full N x N IoU matrix and then visits the
boxes in a Python loop (a few microseconds of interpreter and tensor-call overhead per box), where
torchvision runs the same greedy loop in C++ and computes each IoU only while the box is still alive.

Usage: python benchmarks/bench_detection.py [--threads 2] [--rounds 5] [--device cpu]
"""

from __future__ import annotations

import torch
import torchvision.ops as tvops
from common import interleaved_medians, parse_args
from torchmetrics.detection import MeanAveragePrecision

from vclib.detection import mean_average_precision, nms

IMAGES, DETECTIONS, CLASSES = 2000, 50, 10


def detection_set(generator: torch.Generator) -> tuple[list[dict], list[dict]]:
    """Targets, and detections of which the first are noisy copies of the targets (80% with the right class)."""
    preds, targets = [], []
    for _ in range(IMAGES):
        num_targets = int(torch.randint(3, 8, (1,), generator=generator))
        xy = torch.rand(num_targets, 2, generator=generator) * 400
        target_boxes = torch.cat([xy, xy + 20 + torch.rand(num_targets, 2, generator=generator) * 100], 1)
        target_labels = torch.randint(0, CLASSES, (num_targets,), generator=generator)
        xy = torch.rand(DETECTIONS, 2, generator=generator) * 400
        boxes = torch.cat([xy, xy + 20 + torch.rand(DETECTIONS, 2, generator=generator) * 100], 1)
        labels = torch.randint(0, CLASSES, (DETECTIONS,), generator=generator)
        copies = torch.randint(0, num_targets, (2 * num_targets,), generator=generator)  # two per target
        boxes[: len(copies)] = target_boxes[copies] + torch.randn(len(copies), 4, generator=generator) * 6
        boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        right = torch.rand(len(copies), generator=generator) < 0.8
        labels[: len(copies)] = torch.where(right, target_labels[copies], labels[: len(copies)])
        scores = torch.rand(DETECTIONS, generator=generator)
        scores[: len(copies)] = 0.4 + 0.6 * scores[: len(copies)]
        preds.append({"boxes": boxes, "scores": scores, "labels": labels})
        targets.append({"boxes": target_boxes, "labels": target_labels})
    return preds, targets


def clustered_boxes(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    centres = torch.rand(n // 20 + 1, 2, generator=generator) * 800
    xy = centres[torch.randint(0, len(centres), (n,), generator=generator)]
    xy = xy + torch.randn(n, 2, generator=generator) * 15
    wh = 30 + torch.rand(n, 2, generator=generator) * 60
    return torch.cat([xy - wh / 2, xy + wh / 2], 1), torch.rand(n, generator=generator)


def main() -> None:
    args = parse_args(__doc__)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    preds, targets = detection_set(generator)

    def ours() -> dict:
        return mean_average_precision(preds, targets)

    def theirs() -> dict:
        metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True)
        metric.update(preds, targets)
        return metric.compute()

    a, b = ours(), theirs()
    keys = ("map", "map_50", "map_75", "mar_100")
    agree = all(abs(float(a[k]) - float(b[k])) < 1e-6 for k in keys)
    agree &= torch.allclose(a["map_per_class"].float(), b["map_per_class"].flatten(), atol=1e-6)
    print(f"mAP: {IMAGES} images x {DETECTIONS} detections, 3-7 targets, {CLASSES} classes, {args.threads} threads")
    print("values (ours / torchmetrics): " + ", ".join(f"{k} {float(a[k]):.4f} / {float(b[k]):.4f}" for k in keys))
    print("equal to 1e-6 (map, map_50, map_75, mar_100, map_per_class):", agree)
    times = interleaved_medians({"vclib": ours, "torchmetrics": theirs}, args.rounds, args.threads, torch.device("cpu"))
    for name, seconds in times.items():
        print(f"{name:>14}: {seconds:8.3f} s per evaluation")
    print(f"speed-up torchmetrics / vclib: {times['torchmetrics'] / times['vclib']:.1f}x")

    for n in (1000, 4000):
        boxes, scores = clustered_boxes(n, generator)
        boxes, scores = boxes.to(device), scores.to(device)
        same = torch.equal(nms(boxes, scores, 0.5).cpu(), tvops.nms(boxes, scores, 0.5).cpu())
        kept = len(tvops.nms(boxes, scores, 0.5))
        times = interleaved_medians({"vclib nms": lambda b=boxes, s=scores: nms(b, s, 0.5),
                                     "torchvision nms": lambda b=boxes, s=scores: tvops.nms(b, s, 0.5)},
                                    args.rounds, args.threads, device)
        print(f"NMS, {n} boxes ({kept} kept), device {device}: same indices: {same}; "
              f"vclib {times['vclib nms'] * 1e3:.2f} ms, torchvision {times['torchvision nms'] * 1e3:.2f} ms, "
              f"vclib is {times['vclib nms'] / times['torchvision nms']:.0f}x slower")


if __name__ == "__main__":
    main()
