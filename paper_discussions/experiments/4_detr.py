"""Paper discussion 4: a small DETR against Project 2's YOLOv3 on the digit scenes.

1. Both detectors train on the same 96 x 96 digit scenes (ten classes, one to four digits per scene) and are
   scored on the same test scenes with vclib's COCO mAP. YOLOv3 uses Project 2's quick recipe; DETR
   (``vclib.detection.DETR``: a stride-8 CNN, a 2 + 2 layer transformer, 10 object queries, Hungarian set
   loss with auxiliary decoding losses) gets the rest of the 10-minute budget. DETR's test mAP is recorded
   after every epoch, to show how slowly a set predictor starts.
2. Query specialisation (DETR's Figure 7): where each object query puts its boxes over the test set.
3. "No NMS needed": duplicate detections (same-class pairs with IoU > 0.5 among confident detections)
   of DETR's raw output against YOLOv3's output before and after NMS, and the mAP of each with and without
   NMS.

Writes ``results.json`` and figures into ``--out`` (default ``paper_discussions/results/4_detr``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.utils.data import TensorDataset
from torchvision.ops import roi_align

import vclib
from vclib import detection as det
from vclib.data import make_loader
from vclib.data.scenes import DigitScenes
from vclib.detection.plots import draw_boxes, show_image
from vclib.paper_experiments import experiment_cli  # noqa: E402
from vclib.train import eval_mode

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "results" / "4_detr"
CONFIG = {
    "seed": 0,
    "threads": 2,
    "image_size": 96,
    "train_scenes": 1500,  # Project 2's quick detection set
    "test_scenes": 300,
    "batch_size": 16,
    "yolo_epochs": 8,  # Project 2's quick YOLOv3 recipe
    "yolo_lr": 3e-3,
    "yolo": {"width": 8, "depths": (1, 1, 2, 2), "strides": (4, 8, 16)},
    "detr_epochs": 32,
    "detr_lr": 1e-3,
    "detr_backbone_lr_factor": 0.1,
    "pretrain_epochs": 4,
    "pretrain_lr": 3e-3,
    "pretrain_crop": 32,
    "detr": {"num_queries": 10, "embed_dim": 64, "num_heads": 4, "num_encoder_layers": 2, "num_decoder_layers": 2,
             "ffn_dim": 128, "dropout": 0.0, "backbone_width": 16, "backbone_stages": 3, "reference_points": True},
    "score_threshold": 0.25,  # a "confident" detection (Project 2 draws YOLOv3's boxes above 0.25)
    "duplicate_iou": 0.5,
    "nms_iou": 0.45,  # Project 2's NMS threshold
    "example_scenes": 4,
}
CLASS_NAMES = [str(d) for d in range(10)]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def digit_crops(scenes: DigitScenes, crop_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every digit of ``scenes`` cut out as a square around its box (2 pixels of margin) and resized:
    ``(M, 3, crop_size, crop_size)`` crops and ``(M,)`` labels ``0..9``."""
    images = scenes.images.float() / 255  # (I, 3, H, W)
    boxes = []
    for b in scenes.boxes:
        centres, sides = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]).amax(1, keepdim=True) + 4  # (n, 2), (n, 1)
        boxes.append(torch.cat([centres - sides / 2, centres + sides / 2], 1))
    crops = roi_align(images, boxes, output_size=crop_size, aligned=True)  # (M, 3, crop_size, crop_size)
    return crops, torch.cat(list(scenes.labels)) - 1


def pretrain_backbone(backbone: nn.Module, scenes: DigitScenes, config: dict) -> dict[str, float]:
    """Train ``backbone`` (plus a pooled linear classifier, then discarded) to classify the training digits
    cut out of the scenes: this course's stand-in for DETR's ImageNet-pre-trained ResNet-50."""
    crops, labels = digit_crops(scenes, config["pretrain_crop"])
    classifier = nn.Sequential(backbone, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(backbone.out_channels, 10))
    loader = make_loader(TensorDataset(crops, labels), 64, shuffle=True, seed=config["seed"])
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=config["pretrain_lr"], weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config["pretrain_lr"],
                                                    total_steps=config["pretrain_epochs"] * len(loader))
    classifier.train()
    correct = seen = 0
    for epoch in range(config["pretrain_epochs"]):
        for x, y in loader:
            logits = classifier(x)
            loss = nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if epoch == config["pretrain_epochs"] - 1:
                correct, seen = correct + int((logits.argmax(1) == y).sum()), seen + len(y)
    return {"crops": len(labels), "train_accuracy_last_epoch": correct / max(seen, 1)}


def count_duplicates(preds: list[dict[str, torch.Tensor]], score_threshold: float, iou: float) -> int:
    """Pairs of detections of the same class in the same image, both scoring above ``score_threshold``,
    whose boxes overlap with IoU above ``iou``: the duplicates that NMS exists to remove."""
    pairs = 0
    for p in preds:
        keep = p["scores"] > score_threshold
        boxes, labels = p["boxes"][keep], p["labels"][keep]
        overlap = det.box_iou(boxes, boxes) > iou  # (K, K)
        same = labels[:, None] == labels[None, :]
        pairs += int(torch.triu(overlap & same, diagonal=1).sum())
    return pairs


def apply_nms(preds: list[dict[str, torch.Tensor]], iou: float) -> list[dict[str, torch.Tensor]]:
    """Per-class NMS on every image's detections (vclib's from-scratch ``batched_nms``)."""
    kept = []
    for p in preds:
        keep = det.batched_nms(p["boxes"], p["scores"], p["labels"], iou)
        kept.append({key: value[keep] for key, value in p.items()})
    return kept


@torch.no_grad()
def yolo_raw_detections(model: det.YOLOv3, loader, top_k: int = 100) -> list[dict[str, torch.Tensor]]:
    """YOLOv3's decoded boxes *before* NMS: score = objectness x best class, the ``top_k`` best per image."""
    preds = []
    with eval_mode(model):
        for images, _ in loader:
            decoded = det.decode(model(images), model.anchors, model.strides)  # (B, N, 5 + C)
            for image in decoded:
                scores, labels = (image[:, 4:5] * image[:, 5:]).max(1)  # (N,) each
                order = scores.argsort(descending=True, stable=True)[:top_k]
                preds.append({"boxes": image[order, :4].clamp(0, images.shape[-1]), "scores": scores[order],
                              "labels": labels[order]})
    return preds


def map_scores(preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    scores = det.mean_average_precision(preds, targets)
    return {"map_50": float(scores["map_50"]), "map": float(scores["map"]), "map_75": float(scores["map_75"])}


def plot_queries(preds: list[dict[str, torch.Tensor]], num_queries: int, score_threshold: float, image_size: int,
                 path: Path) -> list[dict[str, float]]:
    """One panel per object query: the centres of its boxes over the test set (DETR's Figure 7), coloured
    by box shape as in the paper (green small, red wide, blue tall), faint grey below ``score_threshold``.
    Returns per-query statistics."""
    boxes = torch.stack([p["boxes"][p["queries"].argsort()] for p in preds])  # (I, N, 4), by query
    scores = torch.stack([p["scores"][p["queries"].argsort()] for p in preds])  # (I, N)
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2  # (I, N, 2)
    sizes = boxes[..., 2:] - boxes[..., :2]  # (I, N, 2)
    columns = (num_queries + 1) // 2
    fig, axes = plt.subplots(2, columns, figsize=(2.3 * columns, 5.0), dpi=200, layout="constrained", squeeze=False)
    stats = []
    for q, ax in enumerate(axes.flat):
        if q >= num_queries:
            ax.axis("off")
            continue
        confident = scores[:, q] > score_threshold
        wide = sizes[:, q, 0] > sizes[:, q, 1]
        large = sizes[:, q].prod(-1) > (image_size / 4) ** 2
        colours = ["tab:red" if w else "tab:blue" for w in wide.tolist()]
        colours = [c if big else "tab:green" for c, big in zip(colours, large.tolist(), strict=True)]
        ax.scatter(*centres[~confident, q].T, s=2, color="0.8")
        ax.scatter(*centres[confident, q].T, s=3, c=[c for c, k in zip(colours, confident.tolist(), strict=True) if k])
        ax.set(xlim=(0, image_size), ylim=(image_size, 0), aspect="equal", xticks=[], yticks=[],
               title=f"query {q}: {int(confident.sum())}")
        count = int(confident.sum())
        mean = centres[confident, q].mean(0).tolist() if count else [None, None]  # JSON has no NaN
        spread = float(centres[confident, q].std(0).mean()) if count > 1 else None
        stats.append({"query": q, "confident": count, "mean_x": mean[0], "mean_y": mean[1], "spread": spread})
    fig.suptitle(f"box centres of each query over {len(preds)} test scenes (score > {score_threshold}; "
                 "green small, red wide, blue tall; grey: no object)", fontsize=9)
    fig.savefig(path)
    plt.close(fig)
    return stats


def plot_examples(scenes: DigitScenes, detections: dict[str, list[dict[str, torch.Tensor]]], count: int,
                  score_threshold: float, path: Path) -> None:
    """A few test scenes with the ground truth and each detector's confident detections."""
    fig, axes = plt.subplots(len(detections) + 1, count, figsize=(2.6 * count, 2.7 * (len(detections) + 1)),
                             dpi=200, layout="constrained", squeeze=False)
    for i in range(count):
        image, target = scenes[i]
        show_image(axes[0, i], image, "ground truth")
        draw_boxes(axes[0, i], target["boxes"], target["labels"] - 1, class_names=CLASS_NAMES, color="white")
        for row, (name, preds) in enumerate(detections.items(), start=1):
            keep = preds[i]["scores"] > score_threshold
            show_image(axes[row, i], image, f"{name}: {int(keep.sum())} boxes")
            draw_boxes(axes[row, i], preds[i]["boxes"][keep], preds[i]["labels"][keep], preds[i]["scores"][keep],
                       CLASS_NAMES)
    for ax in axes.flat:
        ax.set(xlabel="", ylabel="", xticks=[], yticks=[])
    fig.savefig(path)
    plt.close(fig)


def plot_nms(results: dict, path: Path) -> None:
    """Left: duplicate pairs per 100 test scenes; right: mAP@0.5 and mAP@[.5:.95] with and without NMS."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=200, layout="constrained")
    dup = results["duplicates"]
    names = ["DETR\n(raw, no NMS)", "DETR\n+ NMS", "YOLOv3\nbefore NMS", "YOLOv3\n+ NMS"]
    values = [dup["detr_raw_per_100"], dup["detr_nms_per_100"], dup["yolo_raw_per_100"], dup["yolo_nms_per_100"]]
    bars = left.bar(names, values, color=["tab:orange", "tab:orange", "tab:blue", "tab:blue"])
    left.bar_label(bars, fmt="%.0f", fontsize=8)
    left.set(ylabel="duplicate pairs per 100 scenes",
             title=f"same-class pairs, IoU > {results['config']['duplicate_iou']}, score > "
                   f"{results['config']['score_threshold']}")
    nms = results["nms"]
    keys = [("detr", "DETR\nraw"), ("detr_nms", "DETR\n+ NMS"), ("yolo_raw", "YOLOv3\nno NMS"),
            ("yolo", "YOLOv3\n+ NMS")]
    x = torch.arange(len(keys)).float()
    for offset, (metric, label) in zip((-0.2, 0.2), (("map_50", "mAP@0.5"), ("map", "mAP@[.5:.95]")), strict=True):
        heights = [nms[key][metric] for key, _ in keys]
        bars = right.bar((x + offset).tolist(), heights, width=0.4, label=label)
        right.bar_label(bars, fmt="%.2f", fontsize=7)
    right.set_xticks(x.tolist(), [name for _, name in keys])
    right.set(ylabel="mAP on the test scenes", ylim=(0, 1), title="mAP with and without NMS")
    right.legend(loc="upper right", fontsize=8)
    fig.savefig(path)
    plt.close(fig)


def plot_training(detr_curve: list[dict[str, float]], history: list[dict[str, float]], yolo_map: dict[str, float],
                  path: Path) -> None:
    """DETR's test mAP after each epoch (YOLOv3's final mAP as a line) and its loss terms per step."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), dpi=200, layout="constrained")
    epochs = [c["epoch"] + 1 for c in detr_curve]
    left.plot(epochs, [c["map_50"] for c in detr_curve], "o-", ms=3, color="tab:orange", label="DETR mAP@0.5")
    left.plot(epochs, [c["map"] for c in detr_curve], "s-", ms=3, color="tab:red", label="DETR mAP@[.5:.95]")
    left.axhline(yolo_map["map_50"], color="tab:blue", linestyle="--", label="YOLOv3 (8 epochs) mAP@0.5")
    left.axhline(yolo_map["map"], color="tab:cyan", linestyle=":", label="YOLOv3 (8 epochs) mAP@[.5:.95]")
    left.set(xlabel="DETR epoch", ylabel="test mAP", ylim=(0, 1), title="DETR's test mAP during training")
    left.legend(fontsize=7)
    steps = torch.tensor([h["step"] for h in history]).float()
    for part, weight in (("class", 1.0), ("l1", 5.0), ("giou", 2.0)):
        values = torch.tensor([h[part] for h in history]) * weight
        smooth = torch.nn.functional.avg_pool1d(values[None, None], 25, 1, 12, count_include_pad=False)[0, 0]
        right.plot(steps, smooth, label=f"{weight:g} x {part}")
    right.set(xlabel="step", ylabel="loss (last decoder layer)", title="DETR's set-loss terms (running mean)")
    right.legend(fontsize=8)
    fig.savefig(path)
    plt.close(fig)


def main(out: Path, config: dict = CONFIG) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    vclib.setup(seed=config["seed"], threads=config["threads"])
    size = config["image_size"]
    train_scenes = DigitScenes("train", config["train_scenes"], size=size, source="embedded")
    test_scenes = DigitScenes("test", config["test_scenes"], size=size, source="embedded")
    train_loader = make_loader(train_scenes, config["batch_size"], shuffle=True, seed=config["seed"],
                               collate_fn=det.collate_digit_detection)
    test_loader = make_loader(test_scenes, 50, collate_fn=det.collate_digit_detection)
    results: dict = {"config": config, "test_objects": sum(len(b) for b in test_scenes.boxes)}

    # 1a. Project 2's quick YOLOv3.
    torch.manual_seed(config["seed"])
    box_sizes = torch.cat([b[:, 2:] - b[:, :2] for b in train_scenes.boxes])  # (N, 2)
    yolo = det.YOLOv3(10, det.kmeans_anchors(box_sizes, 9, seed=config["seed"]), **config["yolo"])
    start, cpu = time.perf_counter(), time.process_time()
    det.train_yolo(yolo, train_loader, config["yolo_epochs"], lr=config["yolo_lr"])
    results["yolo"] = {"parameters": count_parameters(yolo), "train_seconds": time.perf_counter() - start,
                       "train_cpu_seconds": time.process_time() - cpu, "epochs": config["yolo_epochs"],
                       "steps": config["yolo_epochs"] * len(train_loader)}
    yolo_preds, targets = det.detect(yolo, test_loader, iou_threshold=config["nms_iou"])
    yolo_raw = yolo_raw_detections(yolo, test_loader)
    results["yolo"].update(map_scores(yolo_preds, targets))

    # 1b. The small DETR, evaluated after every epoch.
    torch.manual_seed(config["seed"])
    detr = det.DETR(10, **config["detr"])
    start, cpu = time.perf_counter(), time.process_time()
    pretraining = pretrain_backbone(detr.backbone, train_scenes, config)
    pretraining.update({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu})
    curve = []

    def evaluate(epoch: int) -> None:
        preds, _ = det.detect_detr(detr, test_loader)
        curve.append({"epoch": epoch, **map_scores(preds, targets)})

    start, cpu = time.perf_counter(), time.process_time()
    history = det.train_detr(detr, train_loader, config["detr_epochs"], lr=config["detr_lr"],
                             backbone_lr_factor=config["detr_backbone_lr_factor"], epoch_end=evaluate)
    results["detr"] = {"parameters": count_parameters(detr), "pretraining": pretraining,
                       "train_seconds": time.perf_counter() - start,
                       "train_cpu_seconds": time.process_time() - cpu, "epochs": config["detr_epochs"],
                       "steps": len(history), "curve": curve}
    results["detr"].update({key: curve[-1][key] for key in ("map_50", "map", "map_75")})
    first_good = [c["epoch"] + 1 for c in curve if c["map_50"] >= 0.5]
    results["detr"]["first_epoch_map50_over_half"] = first_good[0] if first_good else -1
    tenth = max(len(history) // 10, 1)
    results["detr"]["loss_first_tenth"] = sum(h["loss"] for h in history[:tenth]) / tenth
    results["detr"]["loss_last_tenth"] = sum(h["loss"] for h in history[-tenth:]) / tenth

    # DETR's raw output: one detection per query (``queries`` says which), no NMS.
    detr_preds, _ = det.detect_detr(detr, test_loader)

    # 2. Query specialisation.
    results["queries"] = plot_queries(detr_preds, config["detr"]["num_queries"], config["score_threshold"], size,
                                      out / "queries.png")
    used = [q for q in results["queries"] if q["confident"] > 0]
    results["queries_used"] = len(used)
    results["confident_per_image"] = sum(q["confident"] for q in results["queries"]) / len(detr_preds)

    # 3. No NMS needed.
    detr_nms = apply_nms(detr_preds, config["nms_iou"])
    yolo_raw_nms = apply_nms(yolo_raw, config["nms_iou"])
    results["nms"] = {"detr": map_scores(detr_preds, targets), "detr_nms": map_scores(detr_nms, targets),
                      "yolo_raw": map_scores(yolo_raw, targets), "yolo": map_scores(yolo_preds, targets),
                      "yolo_raw_nms": map_scores(yolo_raw_nms, targets)}
    per_100 = 100 / len(targets)
    threshold, iou = config["score_threshold"], config["duplicate_iou"]
    duplicates = {"detr_raw": count_duplicates(detr_preds, threshold, iou),
                  "detr_nms": count_duplicates(detr_nms, threshold, iou),
                  "yolo_raw": count_duplicates(yolo_raw, threshold, iou),
                  "yolo_nms": count_duplicates(yolo_preds, threshold, iou)}
    results["duplicates"] = {**duplicates, **{f"{k}_per_100": v * per_100 for k, v in duplicates.items()}}
    results["confident"] = {name: sum(int((p["scores"] > threshold).sum()) for p in preds) * per_100
                            for name, preds in (("detr", detr_preds), ("yolo_raw", yolo_raw), ("yolo", yolo_preds))}
    results["map_drop_detr_nms"] = results["nms"]["detr"]["map"] - results["nms"]["detr_nms"]["map"]

    plot_examples(test_scenes, {"DETR (no NMS)": detr_preds, "YOLOv3 + NMS": yolo_preds}, config["example_scenes"],
                  threshold, out / "examples.png")
    plot_nms(results, out / "nms.png")
    plot_training(curve, history, results["yolo"], out / "training.png")
    results["seconds"] = time.perf_counter() - wall_start
    results["cpu_seconds"] = time.process_time() - cpu_start
    (out / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    return results


if __name__ == "__main__":
    experiment_cli(main, __doc__, DEFAULT_OUT)
