"""Paper discussion 6: PointNet against DGCNN on procedural ModelNet10-style shapes.

1. PointNet and DGCNN (vclib.pointcloud, Project 5's quick recipe: 256 points, 6 epochs of Adam with a cosine
   schedule, 40 training objects per class) are trained with two seeds each on ProceduralShapes.
2. Robustness curves for both: test accuracy against the fraction of dropped points, Gaussian noise on the
   coordinates, and rotation about the vertical axis (never seen in training).
3. Accuracy against the number of input points at test time (64 to 1024; trained on 256).
4. What each network looks at on one test chair: PointNet's critical points, and the k nearest neighbours of
   a few points in the graph of every EdgeConv layer of DGCNN (the last ones are built in feature space).
   Over the whole test set: the size of the critical set, whether the critical points alone give the same
   prediction, and how far DGCNN's neighbourhoods reach in space and how many of them are spatial neighbours.

Writes results.json and three PNG figures into --out (default paper_discussions/results/6_pointnet_dgcnn).
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import vclib  # noqa: E402
from vclib import train  # noqa: E402
from vclib.data import make_loader  # noqa: E402
from vclib.data.shapes import ProceduralShapes  # noqa: E402
from vclib.paper_experiments import ExperimentClock, experiment_cli, write_results  # noqa: E402
from vclib.pointcloud import dgcnn, pointnet, robustness, views  # noqa: E402

SEEDS = (0, 1)
TRAIN_POINTS = 256
TEST_POINTS = (64, 128, 256, 512, 1024)
EPOCHS = 6
EMB_DIMS = 128
BATCH_SIZE = 32
K = 10
WIDTHS = (32, 32, 64)
SETTINGS = {"drop": [0.0, 0.25, 0.5, 0.75, 0.9], "noise": [0.0, 0.01, 0.02, 0.04, 0.08],
            "rotation": [0, 15, 30, 60, 90, 180]}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "results" / "6_pointnet_dgcnn"


def make_model(name: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    if name == "PointNet":
        return pointnet.PointNet(10, emb_dims=EMB_DIMS)
    return dgcnn.DGCNN(10, k=K, emb_dims=EMB_DIMS, widths=WIDTHS)


def train_model(name: str, seed: int, train_set: ProceduralShapes) -> tuple[torch.nn.Module, float]:
    """Project 5's recipe; returns the model (eval mode, CPU) and seconds per epoch."""
    model = make_model(name, seed)
    loader = make_loader(train_set.tensors(), batch_size=BATCH_SIZE, shuffle=True, drop_last=True, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
    loss_fn = pointnet.pointnet_loss if name == "PointNet" else F.cross_entropy
    history = train.fit(model, loader, epochs=EPOCHS, optimizer=optimizer, scheduler=scheduler, loss_fn=loss_fn,
                        device="cpu", desc=f"{name} seed {seed}", seed=seed)
    return model.eval(), sum(record["seconds"] for record in history) / len(history)


@torch.no_grad()
def critical_statistics(model: pointnet.PointNet, points: torch.Tensor) -> dict[str, float]:
    """Mean size of the critical set, and how often the critical points alone give the same class."""
    sizes, same = [], []
    full = robustness.predict_logits(model, points).argmax(1)  # (M,)
    for cloud, label in zip(points, full, strict=True):
        critical = pointnet.critical_points(model, cloud[None])[0]
        sizes.append(len(critical))
        same.append(int(robustness.predict_logits(model, cloud[None, critical]).argmax(1).item() == label))
    return {"mean_size": sum(sizes) / len(sizes), "min_size": min(sizes), "max_size": max(sizes),
            "same_prediction": sum(same) / len(same)}


@torch.no_grad()
def neighbourhood_statistics(model: dgcnn.DGCNN, points: torch.Tensor) -> dict[str, list[float]]:
    """Per EdgeConv layer: mean distance in R^3 from a point to its K neighbours, and the fraction of those
    neighbours that are also among its K nearest neighbours in R^3 (1 for the first, spatial, graph)."""
    with train.eval_mode(model):
        graphs, _ = model.graphs_and_features(points)  # L tensors (M, N, K)
    spatial = graphs[0]
    batch = torch.arange(len(points))[:, None, None]
    reach, overlap = [], []
    for idx in graphs:
        neighbours = points[batch, idx]  # (M, N, K, 3)
        reach.append((neighbours - points[:, :, None]).norm(dim=-1).mean().item())
        shared = (idx[..., :, None] == spatial[..., None, :]).any(-1)  # (M, N, K)
        overlap.append(shared.float().mean().item())
    return {"mean_distance": reach, "spatial_overlap": overlap}


def mean_curves(per_seed: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    return {key: torch.tensor([c[key] for c in per_seed]).mean(0).tolist() for key in per_seed[0]}


def plot_points(curves: dict[str, list[list[float]]], path: Path) -> None:
    figure, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, runs in curves.items():
        values = torch.tensor(runs)  # (seeds, len(TEST_POINTS))
        ax.plot(TEST_POINTS, values.mean(0), marker="o", label=name)
        ax.fill_between(TEST_POINTS, values.min(0).values, values.max(0).values, alpha=0.2)
    ax.axvline(TRAIN_POINTS, color="0.5", linestyle="--", linewidth=1, label="training size")
    ax.set_xscale("log", base=2)
    ax.set_xticks(TEST_POINTS, [str(n) for n in TEST_POINTS])
    ax.set(xlabel="points per test cloud", ylabel="test accuracy", ylim=(0, 1.02),
           title="accuracy against the number of input points")
    ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=200)
    plt.close(figure)


def plot_looks(cloud: torch.Tensor, critical: torch.Tensor, graphs: list[torch.Tensor], queries: list[int],
               path: Path) -> None:
    """PointNet's critical points, then DGCNN's neighbours of ``queries`` in the first and last graph."""
    colours = ["crimson", "royalblue", "darkorange"]
    panels = [("PointNet: critical points", None), ("DGCNN layer 1: k-NN in xyz", graphs[0]),
              (f"DGCNN layer {len(graphs)}: k-NN in features", graphs[-1])]
    figure = plt.figure(figsize=(12, 4.2))
    for column, (title, idx) in enumerate(panels):
        ax = figure.add_subplot(1, 3, column + 1, projection="3d")
        ax.scatter(*cloud.T.numpy(), s=2, c="lightgrey")
        if idx is None:
            ax.scatter(*cloud[critical].T.numpy(), s=9, c="crimson")
            title += f" ({len(critical)} of {len(cloud)})"
        else:
            for query, colour in zip(queries, colours, strict=False):
                ax.scatter(*cloud[idx[query]].T.numpy(), s=14, c=colour)
                ax.scatter(*cloud[query:query + 1].T.numpy(), s=60, c="k", marker="*")
        ax.set(title=title, xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1), xticklabels=[], yticklabels=[],
               zticklabels=[])
        ax.view_init(elev=20, azim=-60)
    figure.tight_layout()
    figure.savefig(path, dpi=200)
    plt.close(figure)


def main(out: Path) -> dict:
    clock = ExperimentClock()
    start_wall = clock.wall
    cfg = vclib.setup(seed=0, verbose=False)
    out.mkdir(parents=True, exist_ok=True)
    train_set = ProceduralShapes("train", num_per_class=40, num_points=TRAIN_POINTS, seed=0)
    test_set = ProceduralShapes("test", num_per_class=20, num_points=max(TEST_POINTS), seed=0)
    test_points, test_labels = test_set.points[:, :TRAIN_POINTS], test_set.labels  # i.i.d. surface samples
    names = ("PointNet", "DGCNN")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    models: dict[str, torch.nn.Module] = {}
    for name in names:
        for seed in SEEDS:
            model, seconds = train_model(name, seed, train_set)
            record = {
                "seed": seed, "seconds_per_epoch": seconds,
                "accuracy": robustness.accuracy_on(model, test_points, test_labels),
                "robustness": robustness.robustness_curves(model, test_points, test_labels, SETTINGS["drop"],
                                                           SETTINGS["noise"], SETTINGS["rotation"], seed=seed),
                "points": [robustness.accuracy_on(model, test_set.points[:, :n], test_labels, batch_size=50)
                           for n in TEST_POINTS],
            }
            runs[name].append(record)
            models.setdefault(name, model)  # the seed-0 model for the analysis below
            print(f"{name} seed {seed}: accuracy {record['accuracy']:.3f}, {seconds:.1f} s/epoch, "
                  f"{time.perf_counter() - start_wall:.0f} s", flush=True)
    curves = {name: mean_curves([r["robustness"] for r in runs[name]]) for name in names}
    views.plot_robustness(curves, SETTINGS).savefig(out / "robustness.png", dpi=200)
    plt.close("all")
    plot_points({name: [r["points"] for r in runs[name]] for name in names}, out / "points.png")

    chair = test_points[test_labels == ProceduralShapes.class_names.index("chair")][:1]  # (1, N, 3)
    critical = pointnet.critical_points(models["PointNet"], chair)[0]
    with train.eval_mode(models["DGCNN"]), torch.no_grad():
        graphs, _ = models["DGCNN"].graphs_and_features(chair)
    cloud = chair[0]
    queries = [int(cloud[:, 2].argmax()), int(cloud[:, 2].argmin()), int(cloud[:, 0].argmax())]
    plot_looks(cloud, critical, [g[0] for g in graphs], queries, out / "critical_vs_knn.png")

    mean = {name: {"accuracy": sum(r["accuracy"] for r in runs[name]) / len(SEEDS),
                   "robustness": curves[name],
                   "points": torch.tensor([r["points"] for r in runs[name]]).mean(0).tolist()} for name in names}
    results = {
        "setup": {"seeds": list(SEEDS), "train_points": TRAIN_POINTS, "test_points": list(TEST_POINTS),
                  "epochs": EPOCHS, "emb_dims": EMB_DIMS, "batch_size": BATCH_SIZE, "k": K, "widths": list(WIDTHS),
                  "train_size": len(train_set), "test_size": len(test_set), "num_classes": 10,
                  "settings": SETTINGS, "threads": cfg.threads, "torch": torch.__version__},
        "parameters": {name: sum(p.numel() for p in models[name].parameters()) for name in names},
        "runs": runs,
        "mean": mean,
        "critical": {**critical_statistics(models["PointNet"], test_points), "chair_size": len(critical)},
        "neighbourhoods": neighbourhood_statistics(models["DGCNN"], test_points),
        **clock.seconds(),
    }
    write_results(out, results)
    return results


if __name__ == "__main__":
    experiment_cli(main, __doc__, DEFAULT_OUT)
