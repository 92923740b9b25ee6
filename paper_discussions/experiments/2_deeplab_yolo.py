"""Paper discussion 2: DeepLabv3 against U-Net, and YOLOv3 against boxes read off segmentation masks.

On Project 2's digit scenes (11 classes: background and ten digits; soft digit edges ignored):

1. A DeepLabv3-style model (atrous backbone at output stride 8, ASPP) and a U-Net with about the same number
   of parameters train with the same recipe and budget; we report mIoU, parameters and time per image.
2. Effective receptive fields (Luo et al., 2016) of both trained models: the input gradient of the centre
   pixel's top score, averaged over test scenes.
3. Detection on the same test scenes: Project 2's quick YOLOv3 against boxes derived from each segmentation
   model's masks (8-connected components of each predicted digit class; score = mean class probability),
   scored with vclib's COCO mAP, with inference time per image.

Writes ``results.json`` and figures into ``--out`` (default ``paper_discussions/results/2_deeplab_yolo``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

import vclib
from vclib import detection as det
from vclib.data import make_loader
from vclib.data.scenes import IGNORE_INDEX, NUM_CLASSES, DigitScenes
from vclib.detection.plots import draw_boxes
from vclib.paper_experiments import experiment_cli  # noqa: E402
from vclib.segmentation import DeepLabV3, UNet, effective_receptive_field, evaluate_segmentation
from vclib.train import eval_mode, fit

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "results" / "2_deeplab_yolo"
CONFIG = {
    "seed": 0,
    # Project 2's scenes shrunk from 96 to 48 pixels (and 4 to 3 digits) so that segmentation can train for
    # enough epochs within the 10-minute budget; detection uses the same scenes.
    "image_size": 48,
    "max_digits": 3,
    "train_scenes": 1500,
    "test_scenes": 300,
    "segmentation_batch_size": 32,
    "segmentation_epochs": 20,
    "segmentation_lr": 3e-3,
    "background_weight": 0.1,  # digits are a few percent of the pixels: without it both models predict background
    "yolo_batch_size": 16,  # Project 2's quick YOLOv3 recipe
    "yolo_epochs": 8,
    "yolo_lr": 3e-3,
    "unet": {"base_channels": 8, "depth": 3},
    "deeplab": {"base_channels": 4, "output_stride": 8, "atrous_rates": (1, 2, 3), "multi_grid": (1,)},
    "yolo": {"width": 8, "depths": (1, 1, 2, 2), "strides": (4, 8, 16)},
    "erf_images": 32,
    "min_component_pixels": 8,
    "timing_batch": 50,
}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_segmentation(model: nn.Module, scenes: DigitScenes, config: dict) -> list[dict[str, float]]:
    """Adam with a one-cycle learning rate and per-pixel cross-entropy (edges ignored, background down-weighted):
    the same for both models."""
    loader = make_loader(scenes.tensors(), config["segmentation_batch_size"], shuffle=True, seed=config["seed"])
    epochs = config["segmentation_epochs"]
    optimizer = torch.optim.Adam(model.parameters(), lr=config["segmentation_lr"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config["segmentation_lr"],
                                                    total_steps=epochs * len(loader))
    weight = torch.ones(NUM_CLASSES)
    weight[0] = config["background_weight"]
    return fit(model, loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler, scheduler_step="batch",
               loss_fn=lambda logits, masks: F.cross_entropy(logits, masks, weight=weight, ignore_index=IGNORE_INDEX),
               desc=type(model).__name__, seed=config["seed"])


def masks_to_boxes(probabilities: torch.Tensor, min_pixels: int) -> dict[str, torch.Tensor]:
    """Detections from one image's class probabilities (C, H, W), class 0 the background.

    Each 8-connected component of the pixels predicted as class ``c >= 1`` becomes a box (xyxy pixels, the
    maximum exclusive like the scenes' boxes) with label ``c - 1`` and score the component's mean
    probability of ``c``; components smaller than ``min_pixels`` are dropped.
    """
    predicted = probabilities.argmax(0).numpy()  # (H, W)
    boxes, scores, labels = [], [], []
    for c in range(1, probabilities.shape[0]):
        components, count = ndimage.label(predicted == c, structure=np.ones((3, 3)))
        for index, window in enumerate(ndimage.find_objects(components), start=1):
            if window is None:
                continue
            inside = components[window] == index  # the component within its bounding window
            if inside.sum() < min_pixels:
                continue
            rows, cols = window
            boxes.append([cols.start, rows.start, cols.stop, rows.stop])
            scores.append(float(probabilities[c][window][torch.from_numpy(inside)].mean()))
            labels.append(c - 1)
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "scores": torch.tensor(scores, dtype=torch.float32), "labels": torch.tensor(labels, dtype=torch.int64)}


@torch.no_grad()
def segmentation_detections(model: nn.Module, loader, min_pixels: int) -> tuple[list[dict], float, float]:
    """Boxes from ``model``'s masks for every test image, the seconds per image of the network alone, and of
    the whole pipeline (network, softmax, components)."""
    preds, network_seconds, total_seconds = [], 0.0, 0.0
    with eval_mode(model):
        for images, _ in loader:
            start = time.perf_counter()
            probabilities = model(images).softmax(1)  # (B, C, H, W)
            network_seconds += time.perf_counter() - start
            preds += [masks_to_boxes(p, min_pixels) for p in probabilities]
            total_seconds += time.perf_counter() - start
    count = sum(len(images) for images, _ in loader)
    return preds, network_seconds / count, total_seconds / count


@torch.no_grad()
def yolo_detections(model: nn.Module, loader) -> tuple[list[dict], list[dict], float, float]:
    """YOLOv3's detections (as Project 2: ``det.detect``), the targets, the seconds per image of the network
    alone and of the whole pipeline (network, decoding, NMS)."""
    with eval_mode(model):
        start = time.perf_counter()
        for images, _ in loader:
            model(images)
        network_seconds = time.perf_counter() - start
    start = time.perf_counter()
    preds, targets = det.detect(model, loader)
    total_seconds = time.perf_counter() - start
    count = len(targets)
    return preds, targets, network_seconds / count, total_seconds / count


def radial_mass(erf: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of an ERF map's mass within each distance of the centre pixel: distances and cumulative mass."""
    height, width = erf.shape
    rows, cols = np.mgrid[0:height, 0:width]
    distance = np.hypot(rows - height // 2, cols - width // 2).ravel()
    order = np.argsort(distance, kind="stable")
    return distance[order], np.cumsum(erf.numpy().ravel()[order])


def mass_radius(erf: torch.Tensor, fraction: float) -> float:
    """The smallest distance from the centre within which ``fraction`` of the map's mass lies."""
    distance, mass = radial_mass(erf)
    return float(distance[np.searchsorted(mass, fraction * mass[-1])])


def plot_erf(erfs: dict[str, torch.Tensor], path: Path) -> None:
    fig, axes = plt.subplots(1, len(erfs) + 1, figsize=(3.2 * (len(erfs) + 1), 3.2), dpi=160, layout="constrained")
    for ax, (name, erf) in zip(axes, erfs.items(), strict=False):
        shown = ax.imshow(np.log10(erf.numpy() + 1e-7), cmap="magma", vmin=-7, vmax=np.log10(float(erf.max())))
        ax.set_title(name)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(shown, ax=axes[:-1], shrink=0.8, label="log10 share of gradient mass")
    for (name, erf), style in zip(erfs.items(), ("-", "-", "--"), strict=False):
        distance, mass = radial_mass(erf)
        axes[-1].plot(distance, mass, style, label=name)
    axes[-1].set_xlabel("distance from centre pixel (px)")
    axes[-1].set_ylabel("cumulative mass")
    axes[-1].axhline(0.5, color="gray", linewidth=0.8, linestyle=":")
    axes[-1].legend(fontsize=8)
    axes[-1].set_title("mass within radius")
    fig.savefig(path)
    plt.close(fig)


def plot_examples(scenes: DigitScenes, predictions: dict[str, torch.Tensor], detections: dict[str, list[dict]],
                  path: Path, count: int = 4, min_score: float = 0.3) -> None:
    """Rows: test scenes; columns: image with ground truth, each model's mask, each detector's boxes."""
    columns = ["image + truth", *predictions, *detections]
    fig, axes = plt.subplots(count, len(columns), figsize=(1.9 * len(columns), 1.9 * count), dpi=160,
                             layout="constrained")
    colours = plt.get_cmap("tab10")
    for row in range(count):
        image, target = scenes[row]
        for col, name in enumerate(columns):
            ax = axes[row, col]
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=8)
            if name in predictions:
                mask = predictions[name][row].numpy().astype(float)
                ax.imshow(np.ma.masked_equal(mask, 0), cmap="tab10", vmin=0.5, vmax=10.5, interpolation="nearest")
                ax.set_facecolor("black")
                continue
            ax.imshow(image.permute(1, 2, 0).numpy())
            if name == "image + truth":
                boxes, labels = target["boxes"], target["labels"] - 1
            else:
                keep = detections[name][row]["scores"] >= min_score
                boxes, labels = detections[name][row]["boxes"][keep], detections[name][row]["labels"][keep]
            for box, label in zip(boxes, labels, strict=True):
                draw_boxes(ax, box[None], color=colours(int(label)), linewidth=1.0)
                ax.text(float(box[0]), float(box[1]) - 1, str(int(label)), color="white", fontsize=6,
                        bbox={"facecolor": colours(int(label)), "pad": 0.5, "linewidth": 0})
    fig.savefig(path)
    plt.close(fig)


def main(out: Path, config: dict = CONFIG) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    cfg = vclib.setup(seed=config["seed"])
    size = config["image_size"]
    train_scenes = DigitScenes("train", config["train_scenes"], size=size, max_digits=config["max_digits"],
                               seed=config["seed"])
    test_scenes = DigitScenes("test", config["test_scenes"], size=size, max_digits=config["max_digits"],
                              seed=config["seed"])
    results: dict = {"config": {k: v for k, v in config.items()}, "threads": cfg.threads,
                     "num_classes": NUM_CLASSES, "data_source": "digit scenes (MNIST digits)"}

    # 1. Segmentation: same data, recipe and epochs.
    models = {}
    for name, build in (("unet", lambda: UNet(3, NUM_CLASSES, **config["unet"])),
                        ("deeplab", lambda: DeepLabV3(3, NUM_CLASSES, **config["deeplab"]))):
        torch.manual_seed(config["seed"])
        model = build()
        start, cpu = time.perf_counter(), time.process_time()
        history = train_segmentation(model, train_scenes, config)
        train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - cpu
        test_loader = make_loader(test_scenes.tensors(), config["timing_batch"])
        scores = evaluate_segmentation(model, test_loader, NUM_CLASSES, IGNORE_INDEX)
        models[name] = model
        results[name] = {
            "parameters": count_parameters(model), "train_seconds": train_seconds, "train_cpu_seconds": train_cpu,
            "final_train_loss": history[-1]["train_loss"], "miou": float(scores["miou"]),
            "pixel_accuracy": float(scores["pixel_accuracy"]), "background_iou": float(scores["iou"][0]),
            "digit_miou": float(scores["iou"][1:].nanmean()),
        }
    results["deeplab"]["atrous_rates_used"] = list(models["deeplab"].atrous_rates)
    results["deeplab"]["backbone_dilations"] = [list(d) for d in models["deeplab"].backbone.dilations]

    # 2. Effective receptive fields on test scenes.
    erf_images = test_scenes.tensors().tensors[0][: config["erf_images"]]
    erfs = {}
    for name, model in models.items():
        erf, radius = effective_receptive_field(model, size, images=erf_images)
        erfs[name] = erf
        results[name]["erf"] = {"rms_radius": radius, "radius_50": mass_radius(erf, 0.5),
                                "radius_90": mass_radius(erf, 0.9), "support_fraction": float((erf > 0).float().mean())}
    # DeepLab's local path alone: the image-pooling branch's output is detached, so no gradient flows through it.
    pooling = models["deeplab"].aspp.convs[-1]
    handle = pooling.register_forward_hook(lambda module, inputs, output: output.detach())
    erfs["deeplab_local"], radius = effective_receptive_field(models["deeplab"], size, images=erf_images)
    handle.remove()
    erf = erfs["deeplab_local"]
    results["deeplab"]["erf_without_image_pooling"] = {
        "rms_radius": radius, "radius_50": mass_radius(erf, 0.5), "radius_90": mass_radius(erf, 0.9),
        "support_fraction": float((erf > 0).float().mean())}
    plot_erf({"U-Net": erfs["unet"], "DeepLabv3-style": erfs["deeplab"],
              "DeepLab, no image-pooling path": erfs["deeplab_local"]}, out / "erf.png")

    # 3. Detection: Project 2's quick YOLOv3 and boxes from the masks, on the same test scenes.
    torch.manual_seed(config["seed"])
    box_sizes = torch.cat([b[:, 2:] - b[:, :2] for b in train_scenes.boxes])  # (N, 2)
    anchors = det.kmeans_anchors(box_sizes, 9, seed=config["seed"])
    yolo = det.YOLOv3(10, anchors, **config["yolo"])
    train_loader = make_loader(train_scenes, config["yolo_batch_size"], shuffle=True, seed=config["seed"],
                               collate_fn=det.collate_digit_detection)
    start, cpu = time.perf_counter(), time.process_time()
    det.train_yolo(yolo, train_loader, config["yolo_epochs"], lr=config["yolo_lr"])
    yolo_train_seconds, yolo_train_cpu = time.perf_counter() - start, time.process_time() - cpu
    test_loader = make_loader(test_scenes, config["timing_batch"], collate_fn=det.collate_digit_detection)
    yolo_preds, targets, network_s, total_s = yolo_detections(yolo, test_loader)
    detections = {"YOLOv3": yolo_preds}
    results["yolo"] = {"parameters": count_parameters(yolo), "train_seconds": yolo_train_seconds,
                       "train_cpu_seconds": yolo_train_cpu, "network_ms_per_image": 1000 * network_s,
                       "pipeline_ms_per_image": 1000 * total_s}
    for name, model in models.items():
        preds, network_s, total_s = segmentation_detections(model, test_loader, config["min_component_pixels"])
        detections[f"boxes from {'U-Net' if name == 'unet' else 'DeepLab'}"] = preds
        results[name].update({"network_ms_per_image": 1000 * network_s, "pipeline_ms_per_image": 1000 * total_s})
    keys = {"YOLOv3": "yolo", "boxes from U-Net": "unet", "boxes from DeepLab": "deeplab"}
    for name, preds in detections.items():
        scores = det.mean_average_precision(preds, targets)
        results[keys[name]].update({"map_50": float(scores["map_50"]), "map": float(scores["map"]),
                                    "map_75": float(scores["map_75"]),
                                    "detections_per_image": sum(len(p["boxes"]) for p in preds) / len(preds)})
    results["test_objects"] = sum(len(t["boxes"]) for t in targets)

    with torch.no_grad(), eval_mode(models["unet"]), eval_mode(models["deeplab"]):
        shown = test_scenes.tensors().tensors[0][:4]
        masks = {"U-Net mask": models["unet"](shown).argmax(1), "DeepLab mask": models["deeplab"](shown).argmax(1)}
    plot_examples(test_scenes, masks, detections, out / "examples.png")

    results["seconds"] = time.perf_counter() - wall_start
    results["cpu_seconds"] = time.process_time() - cpu_start
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    experiment_cli(main, __doc__, DEFAULT_OUT)
