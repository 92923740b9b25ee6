"""The course figures in ``assets/``, made from code: ``python -m vclib figures`` (or ``make figures``).

:data:`FIGURES` maps each asset name to the function that draws it and the vclib modules it reads. Every
figure is drawn in a fixed style, seeded, with one CPU thread and without date or software metadata, so
two runs on one machine write the same bytes. ``assets/manifest.json`` stores, per figure, the sha256 of
the PNG and of the source files it depends on (this package included): ``tests/test_figures.py`` checks
that the stored figures are up to date without drawing them again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from vclib.figures import diagrams, generative_3d, results
from vclib.figures.drawing import STYLE, save_figure

MANIFEST = "manifest.json"


class FigureSpec(NamedTuple):
    """How to draw one asset: ``draw() -> Figure`` and the vclib modules (dotted names) whose code it shows."""

    draw: Callable[[], Figure]
    modules: tuple[str, ...]


FIGURES: dict[str, FigureSpec] = {
    "1_conv_arithmetic.png": FigureSpec(diagrams.conv_arithmetic, ("vclib.basics.conv_arithmetic",
                                                                   "vclib.basics.conv_explorer")),
    "1_video.png": FigureSpec(diagrams.video_models, ("vclib.video.logistic", "vclib.video.moe",
                                                      "vclib.video.fusion")),
    "2_yolo1.png": FigureSpec(diagrams.yolo_heads, ("vclib.detection.yolo", "vclib.data.scenes")),
    "2_yolo2.png": FigureSpec(results.yolo_assignment, ("vclib.detection.targets", "vclib.detection.anchors",
                                                        "vclib.detection.plots", "vclib.data.scenes")),
    "2_transformers.png": FigureSpec(diagrams.transformer_attention, ("vclib.transformer.attention",
                                                                      "vclib.transformer.patches",
                                                                      "vclib.viz.attention", "vclib.data.photo")),
    "3_GRU.png": FigureSpec(diagrams.gru_cell, ("vclib.sequence.gru", "vclib.sequence.recurrent",
                                                "vclib.sequence.classifier")),
    "3_VIT.png": FigureSpec(diagrams.vit_pipeline, ("vclib.transformer.vit", "vclib.transformer.attention",
                                                    "vclib.transformer.patches", "vclib.data.mnist")),
    "4_VAE.png": FigureSpec(generative_3d.vae_graph, ("vclib.generative.vae", "vclib.train", "vclib.data.mnist")),
    "4_VAE2.png": FigureSpec(results.vae_results, ("vclib.generative.vae", "vclib.train", "vclib.data.mnist")),
    "4_GAN.png": FigureSpec(generative_3d.gan_loop, ("vclib.generative.dcgan", "vclib.generative.gan",
                                                     "vclib.generative.gan_training", "vclib.data.mnist")),
    "4_attacks.png": FigureSpec(results.adversarial_examples, ("vclib.adversarial.attacks", "vclib.basics.cnn",
                                                               "vclib.train", "vclib.data.mnist")),
    "5_3D_Representation.png": FigureSpec(results.representations_3d, ("vclib.pointcloud.representations",
                                                                        "vclib.pointcloud.views",
                                                                        "vclib.data.shapes")),
    "5_PointNet.png": FigureSpec(generative_3d.pointnet_diagram, ("vclib.pointcloud.pointnet", "vclib.data.shapes")),
    "5_PointNet1.png": FigureSpec(results.critical_points, ("vclib.pointcloud.pointnet", "vclib.pointcloud.views",
                                                            "vclib.train", "vclib.data.shapes")),
    "5_CLIP.png": FigureSpec(generative_3d.pointclip_diagram, ("vclib.pointcloud.pointclip",
                                                               "vclib.pointcloud.tinyclip",
                                                               "vclib.pointcloud.representations",
                                                               "vclib.data.shapes")),
}


def repository_root() -> Path:
    """The checkout that holds ``vclib/`` (and ``assets/``)."""
    return Path(__file__).resolve().parents[2]


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_files(name: str) -> list[str]:
    """The files figure ``name`` depends on, relative to the repository root: this package and its modules."""
    root = repository_root()
    package = sorted(path.relative_to(root).as_posix() for path in Path(__file__).parent.glob("*.py"))
    modules = [module.replace(".", "/") + ".py" for module in FIGURES[name].modules]
    return sorted(set(package + modules))


def manifest_entry(name: str, png: Path) -> dict:
    """``{"sha256": ..., "sources": {path: sha256}}`` for one figure as it is on disk now."""
    root = repository_root()
    return {"sha256": sha256(png), "sources": {path: sha256(root / path) for path in source_files(name)}}


def stale_figures(assets: Path, root: Path | None = None) -> list[str]:
    """Names in ``assets/manifest.json`` whose PNG or sources no longer match their hashes (or are missing)."""
    root = repository_root() if root is None else root
    manifest = json.loads((assets / MANIFEST).read_text())
    stale = []
    for name, entry in sorted(manifest["figures"].items()):
        files = {assets / name: entry["sha256"], **{root / path: digest for path, digest in entry["sources"].items()}}
        if any(not path.is_file() or sha256(path) != digest for path, digest in files.items()):
            stale.append(name)
    return stale


def draw_figure(name: str, path: Path) -> Path:
    """Draw one figure into ``path``: matplotlib's defaults plus :data:`STYLE` (whatever a notebook set), seeded."""
    if name not in FIGURES:
        raise ValueError(f"name must be one of {sorted(FIGURES)}, got {name!r}")
    torch.manual_seed(0)
    with plt.style.context("default"), plt.rc_context(STYLE):
        return save_figure(FIGURES[name].draw(), path)


def make_figures(out_dir: Path | str, names: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
    """Draw the figures ``names`` (default: all of :data:`FIGURES`) into ``out_dir`` and update its manifest.

    Args:
        out_dir: the folder to write into (``assets/`` for the course); created if missing.
        names: asset names such as ``"3_GRU.png"``; None for all.

    Returns:
        name -> ``{"seconds": wall time, "cpu_seconds": process CPU time}`` of drawing and saving it.
    """
    from vclib.session import use_portable_cpu_kernels

    out = Path(out_dir)
    chosen = list(FIGURES) if names is None else list(names)
    unknown = sorted(set(chosen) - set(FIGURES))
    if unknown:
        raise ValueError(f"names must be among {sorted(FIGURES)}, got unknown {unknown}")
    out.mkdir(parents=True, exist_ok=True)
    use_portable_cpu_kernels()
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)  # results (and so the PNG bytes) do not depend on the thread count
    torch.use_deterministic_algorithms(True)
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() and names is not None else {}
    entries = manifest.get("figures", {})
    timings = {}
    try:
        for name in chosen:
            started, cpu_started = time.perf_counter(), time.process_time()
            draw_figure(name, out / name)
            timings[name] = {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started}
            entries[name] = manifest_entry(name, out / name)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    manifest = {"about": "sha256 of each figure and of the vclib sources it is drawn from; "
                         "python -m vclib figures rewrites it", "figures": dict(sorted(entries.items()))}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return timings


def run(names: list[str] | None = None, out_dir: Path | None = None) -> int:
    """``python -m vclib figures``: draw, print each figure's wall and CPU seconds, and the totals."""
    out = repository_root() / "assets" if out_dir is None else Path(out_dir)
    started, cpu_started = time.perf_counter(), time.process_time()
    timings = make_figures(out, names)
    for name, timing in timings.items():
        print(f"{name:<26} {timing['seconds']:6.1f} s  (cpu {timing['cpu_seconds']:5.1f} s)")
    print(f"wrote {len(timings)} figures and {MANIFEST} to {out} in {time.perf_counter() - started:.1f} s "
          f"(cpu {time.process_time() - cpu_started:.1f} s, imports excluded)")
    return 0
