"""Paper discussion 1: the degradation problem, gradients at initialisation, and the cost of AlexNet and ResNets.

1. Plain and residual CNNs (vclib.basics.depth.DepthNet, same layers and width) at several depths are trained
   with the same short schedule on the embedded MNIST digits (4,000 training digits, average-pooled to
   14 x 14 so that the deepest nets fit the time budget). We record the final training error (the whole
   training set, eval mode), the test error and the training-loss curves.
2. Per-layer gradient norms ||dL/dW_l|| of freshly initialised plain and residual nets of the largest depth,
   averaged over a few initialisations.
3. Parameters and multiply-accumulates of torchvision's alexnet, resnet18 and resnet50 (no weights) at
   224 x 224, counted with forward hooks (vclib.basics.complexity).

Writes results.json and three PNG figures into --out (default paper_discussions/results/1_degradation).
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402

import vclib  # noqa: E402
from vclib.basics.complexity import count_macs, count_parameters  # noqa: E402
from vclib.basics.depth import DepthNet, gradient_norms  # noqa: E402
from vclib.data.mnist import load_mnist  # noqa: E402
from vclib.paper_experiments import ExperimentClock, experiment_cli, write_results  # noqa: E402

DEPTHS = (8, 20, 32, 44, 56)
WIDTH = 8
STEPS = 200
BATCH_SIZE = 128
LEARNING_RATE = 0.05
GRADIENT_SEEDS = (0, 1, 2)
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "results" / "1_degradation"


def digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Embedded MNIST, average-pooled to 14 x 14 and standardised: images (N, 1, 14, 14), labels (N,)."""
    data = load_mnist(split, source="embedded")
    images = F.avg_pool2d(data.images, 2)  # (N, 1, 14, 14)
    return (images - 0.1307) / 0.3081, data.labels.long()


@torch.no_grad()
def error_rate(model: DepthNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    predictions = torch.cat([model(batch).argmax(1) for batch in images.split(500)])
    model.train()
    return (predictions != labels).float().mean().item()


def train(depth: int, residual: bool, train_set: tuple, test_set: tuple) -> dict:
    """SGD with momentum for STEPS steps, the learning rate cosine-decayed to 0; the same batches for every net."""
    torch.manual_seed(0)
    model = DepthNet(depth, residual=residual, width=WIDTH)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, STEPS)
    images, labels = train_set
    generator = torch.Generator().manual_seed(0)
    order = torch.cat([torch.randperm(len(labels), generator=generator) for _ in range(STEPS * BATCH_SIZE
                                                                                       // len(labels) + 1)])
    losses = []
    start = time.perf_counter()
    for step in range(STEPS):
        batch = order[step * BATCH_SIZE:(step + 1) * BATCH_SIZE]
        loss = F.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return {
        "depth": depth,
        "residual": residual,
        "parameters": count_parameters(model),
        "train_error": error_rate(model, *train_set),
        "test_error": error_rate(model, *test_set),
        "final_loss": sum(losses[-20:]) / 20,
        "losses": [round(x, 5) for x in losses],
        "seconds": round(time.perf_counter() - start, 1),
    }


def initial_gradient_norms(depth: int, residual: bool, train_set: tuple) -> list[float]:
    """Mean over GRADIENT_SEEDS initialisations of the per-layer gradient norms on one batch of 256 digits."""
    images, labels = train_set
    runs = []
    for seed in GRADIENT_SEEDS:
        torch.manual_seed(seed)
        runs.append(gradient_norms(DepthNet(depth, residual=residual, width=WIDTH), images[:256], labels[:256]))
    return [sum(values) / len(values) for values in zip(*runs, strict=True)]


def resnet50_v1(weights: None = None) -> torch.nn.Module:
    """torchvision's resnet50 ("v1.5": stride 2 in the 3x3 convolution) moved back to the paper's design, where
    the first 1x1 convolution of a downsampling bottleneck has the stride."""
    model = torchvision.models.resnet50(weights=weights)
    for block in model.modules():
        if isinstance(block, torchvision.models.resnet.Bottleneck) and block.conv2.stride == (2, 2):
            block.conv1.stride, block.conv2.stride = (2, 2), (1, 1)
    return model


def imagenet_costs() -> dict:
    """Parameters and MACs of torchvision models (random weights) for one 3 x 224 x 224 image."""
    costs = {}
    builders = {"alexnet": torchvision.models.alexnet, "resnet18": torchvision.models.resnet18,
                "resnet50": torchvision.models.resnet50, "resnet50_v1": resnet50_v1}
    for name, build in builders.items():
        model = build(weights=None)
        macs = count_macs(model, (3, 224, 224))
        conv = sum(v for k, v in macs.items() if isinstance(model.get_submodule(k), torch.nn.Conv2d))
        costs[name] = {
            "parameters_m": count_parameters(model) / 1e6,
            "gmacs": sum(macs.values()) / 1e9,
            "gflops": 2 * sum(macs.values()) / 1e9,
            "conv_share": conv / sum(macs.values()),
            "linear_parameter_share": sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)
                                          for p in m.parameters()) / count_parameters(model),
        }
    return costs


def plot_error(runs: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for residual, label, colour in ((False, "plain", "tab:red"), (True, "residual", "tab:blue")):
        rows = [r for r in runs if r["residual"] == residual]
        ax.plot([r["depth"] for r in rows], [100 * r["train_error"] for r in rows], "o-", color=colour,
                label=f"{label}, training")
        ax.plot([r["depth"] for r in rows], [100 * r["test_error"] for r in rows], "s--", color=colour,
                alpha=0.6, label=f"{label}, test")
    ax.set_xlabel("depth (weighted layers)")
    ax.set_ylabel("error after training (%)")
    ax.set_xticks(DEPTHS)
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)


def plot_curves(runs: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.1), sharey=True)
    kernel = torch.ones(1, 1, 15) / 15
    for ax, residual, title in ((axes[0], False, "plain"), (axes[1], True, "residual")):
        for index, run in enumerate(r for r in runs if r["residual"] == residual):
            smooth = F.conv1d(torch.tensor(run["losses"]).view(1, 1, -1), kernel).flatten()
            ax.plot(range(7, 7 + len(smooth)), smooth, color=plt.cm.viridis(index / (len(DEPTHS) - 1)),
                    label=f"{run['depth']} layers")
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.set_yscale("log")
    axes[0].set_ylabel("training loss (moving average)")
    axes[1].legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)


def plot_gradients(norms: dict[str, list[float]], depth: int, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    for key, colour in (("plain", "tab:red"), ("residual", "tab:blue")):
        ax.plot(range(1, depth + 1), norms[key], "o-", markersize=3, color=colour, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = first convolution, last = classifier)")
    ax.set_ylabel(r"$\|\partial L / \partial W_l\|_2$ at initialisation")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)


def main(out: Path) -> dict:
    clock = ExperimentClock()
    cfg = vclib.setup(seed=0, verbose=False)
    out.mkdir(parents=True, exist_ok=True)
    train_set, test_set = digits("train"), digits("test")
    runs = []
    for depth in DEPTHS:
        for residual in (False, True):
            runs.append(train(depth, residual, train_set, test_set))
            print(f"depth {depth:2d} {'residual' if residual else 'plain   '}: train error "
                  f"{runs[-1]['train_error']:.4f}, test error {runs[-1]['test_error']:.4f}, "
                  f"{runs[-1]['seconds']:.0f} s", flush=True)
    deepest = max(DEPTHS)
    norms = {key: initial_gradient_norms(deepest, key == "residual", train_set) for key in ("plain", "residual")}
    plot_error(runs, out / "error_vs_depth.png")
    plot_curves(runs, out / "training_curves.png")
    plot_gradients(norms, deepest, out / "gradient_norms.png")
    by_name = {f"{'resnet' if r['residual'] else 'plain'}{r['depth']}": {k: v for k, v in r.items() if k != "losses"}
               for r in runs}
    ratio = {key: values[0] / values[-2] for key, values in norms.items()}  # first conv over last conv
    results = {
        "setup": {"depths": list(DEPTHS), "width": WIDTH, "steps": STEPS, "batch_size": BATCH_SIZE,
                  "learning_rate": LEARNING_RATE, "train_size": len(train_set[1]), "test_size": len(test_set[1]),
                  "image_size": train_set[0].shape[-1], "gradient_seeds": len(GRADIENT_SEEDS),
                  "threads": cfg.threads, "torch": torch.__version__},
        "runs": by_name,
        "gradients": {"depth": deepest, "plain": norms["plain"], "residual": norms["residual"],
                      "first_over_last_conv": ratio},
        "imagenet": imagenet_costs(),
        **clock.seconds(),
    }
    write_results(out, results)
    return results


if __name__ == "__main__":
    experiment_cli(main, __doc__, DEFAULT_OUT)
