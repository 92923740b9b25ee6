"""Time ``vclib.segmentation`` mIoU (one bincount confusion matrix + scores) against torchmetrics'
``MulticlassJaccardIndex(average="macro", ignore_index=255)`` in the same run.

Inputs: 100 class maps of 512 x 512 with 21 classes (VOC), about 5% of target pixels set to 255.
Both contenders must agree on the mIoU. Prints seconds per call and the ratio ours / torchmetrics.

Usage: python benchmarks/bench_segmentation_metrics.py [--threads 2] [--rounds 5] [--device cpu]
"""

from __future__ import annotations

import torch
from common import interleaved_medians, parse_args
from torchmetrics.functional.classification import multiclass_jaccard_index

from vclib.segmentation.metrics import confusion_matrix, segmentation_scores

NUM_CLASSES, MAPS, SIZE = 21, 100, 512


def main() -> None:
    args = parse_args(__doc__)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, NUM_CLASSES, (MAPS, SIZE, SIZE), generator=generator)
    preds = torch.where(torch.rand(targets.shape, generator=generator) < 0.7, targets,
                        torch.randint(0, NUM_CLASSES, targets.shape, generator=generator))
    targets[torch.rand(targets.shape, generator=generator) < 0.05] = 255
    preds, targets = preds.to(device), targets.to(device)

    def ours() -> torch.Tensor:
        return segmentation_scores(confusion_matrix(preds, targets, NUM_CLASSES))["miou"]

    def theirs() -> torch.Tensor:
        return multiclass_jaccard_index(preds, targets, NUM_CLASSES, average="macro", ignore_index=255)

    agree = torch.allclose(ours().cpu(), theirs().float().cpu(), atol=1e-6)
    print(f"{MAPS} maps of {SIZE} x {SIZE}, {NUM_CLASSES} classes, device {device}, {args.threads} threads")
    print("mIoU agrees with torchmetrics:", agree)
    times = interleaved_medians({"vclib": ours, "torchmetrics": theirs}, args.rounds, args.threads, device)
    for name, seconds in times.items():
        print(f"{name:>12}: {seconds * 1e3:8.1f} ms per call")
    print(f"ratio vclib / torchmetrics: {times['vclib'] / times['torchmetrics']:.2f}")


if __name__ == "__main__":
    main()
