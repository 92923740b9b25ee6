"""Paper discussion 5: saturating against non-saturating generator loss, and mode collapse over training.

1. A judge: Project 4's digit classifier (DigitCNN, width 16, 2 epochs) trained on the embedded MNIST digits.
   Its penultimate features define a classifier-feature FID, and its predictions label generated digits.
2. Project 4's DCGAN-style GAN (latent 32, G width 32, D width 16, Adam lr 1e-3, betas (0.5, 0.999), batch 32)
   trained for 10 epochs (Project 4 uses 8) with the saturating loss E[log(1 - D(G(z)))] and with the
   non-saturating loss -E[log D(G(z))]; the two runs of a seed share initial weights, batches and noise. After
   every epoch, 1,000 samples from a fixed noise batch are scored: FID to the test digits, the number of digit
   classes the judge finds among them (classes with at least 1% of the samples), the entropy of the judge's
   class histogram, and the judge's mean confidence. Every step records the norms of both players' gradients
   and D's outputs.

Writes results.json and four PNG figures into --out (default paper_discussions/results/5_gan_losses).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

import vclib  # noqa: E402
from vclib import generative, metrics, train  # noqa: E402
from vclib.basics.cnn import DigitCNN  # noqa: E402
from vclib.data import make_loader  # noqa: E402
from vclib.data.mnist import load_mnist  # noqa: E402
from vclib.paper_experiments import ExperimentClock, experiment_cli, write_results  # noqa: E402

SEEDS = (0, 1)
LOSSES = {"non-saturating": False, "saturating": True}
EPOCHS = 10
LATENT, G_WIDTH, D_WIDTH = 32, 32, 16
LEARNING_RATE = 1e-3
BATCH_SIZE = 32
NUM_SAMPLES = 1000
COVERAGE_SHARE = 0.01
WINDOW = 25  # steps per point of the gradient curves
COLOURS = {"non-saturating": "tab:blue", "saturating": "tab:red"}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "results" / "5_gan_losses"


def train_judge(train_set, test_loader) -> tuple[DigitCNN, float]:
    """Project 4's judge: DigitCNN(width=16), Adam with a one-cycle schedule, 2 epochs."""
    loader = make_loader(train_set.tensors(), batch_size=32, shuffle=True)
    epochs = 2
    torch.manual_seed(0)
    cnn = DigitCNN(width=16)
    optimizer = torch.optim.Adam(cnn.parameters(), lr=2e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=4e-3, total_steps=epochs * len(loader))
    history = train.fit(cnn, loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler, scheduler_step="batch",
                        val_loader=test_loader, metrics={"accuracy": metrics.accuracy}, device="cpu", desc="judge")
    return cnn.eval(), history[-1]["val_accuracy"]


@torch.no_grad()
def score(samples: torch.Tensor, judge: DigitCNN, features: generative.ClassifierFeatures,
          test_images: torch.Tensor) -> dict[str, float | list[int]]:
    """FID to the test digits, class coverage, class entropy (bits) and mean confidence of ``samples``."""
    probabilities = torch.cat([judge(chunk).softmax(1) for chunk in samples.split(500)])  # (n, 10)
    counts = torch.bincount(probabilities.argmax(1), minlength=10)  # (10,)
    shares = counts.double() / counts.sum()
    entropy = -(shares[shares > 0] * shares[shares > 0].log2()).sum().item()
    return {"fid": generative.classifier_fid(features, test_images, samples),
            "classes": int((shares >= COVERAGE_SHARE).sum()), "entropy": entropy,
            "confidence": probabilities.max(1).values.mean().item(), "counts": counts.tolist()}


def run(saturating: bool, seed: int, train_set, judge, features, test_images, fixed_noise) -> dict:
    torch.manual_seed(seed)
    generator_model = generative.Generator(LATENT, width=G_WIDTH)
    discriminator_model = generative.Discriminator(width=D_WIDTH)
    initial = score(generative.generate(generator_model, fixed_noise), judge, features, test_images)
    loader = make_loader(train_set.tensors(), batch_size=BATCH_SIZE, shuffle=True, drop_last=True, seed=seed)
    history = generative.train_gan(generator_model, discriminator_model, loader, epochs=EPOCHS, lr=LEARNING_RATE,
                                   saturating=saturating, fixed_noise=fixed_noise, snapshot_every=1, seed=seed)
    scores = [initial] + [score(images, judge, features, test_images) for _, images in history.snapshots]
    return {
        "epochs": [0] + [epoch for epoch, _ in history.snapshots],
        **{key: [s[key] for s in scores] for key in ("fid", "classes", "entropy", "confidence")},
        "final_counts": scores[-1]["counts"],
        "steps": history.series("step", WINDOW),
        **{key: history.series(key, WINDOW) for key in ("d_grad_norm", "g_grad_norm", "d_real", "d_fake")},
        "median_g_grad_norm_first_100": torch.tensor(history.series("g_grad_norm")[:100]).median().item(),
        "samples": history.snapshots[-1][1][:64],
    }


def plot_curves(runs: dict, reference: dict, path: Path) -> None:
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = [("fid", "classifier-feature FID (log scale)"), ("classes", f"classes with >= {COVERAGE_SHARE:.0%}"),
              ("entropy", "entropy of class histogram (bits)")]
    for ax, (key, label) in zip(axes, panels, strict=True):
        for (loss, seed), record in runs.items():
            ax.plot(record["epochs"], record[key], marker="o", markersize=3, color=COLOURS[loss],
                    linestyle="-" if seed == SEEDS[0] else "--", label=f"{loss}, seed {seed}")
        ax.axhline(reference[key], color="0.4", linestyle=":", linewidth=1.2, label="real digits")
        ax.set(xlabel="epoch", ylabel=label)
    axes[0].set_yscale("log")
    axes[1].set_ylim(0, 10.5)
    axes[2].set_ylim(0, math.log2(10) + 0.1)
    axes[2].legend(fontsize=7.5, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=200)
    plt.close(figure)


def plot_gradients(runs: dict, path: Path) -> None:
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = [("g_grad_norm", "||grad of L_G wrt G||", "generator's gradient", True),
              ("d_grad_norm", "||grad of L_D wrt D||", "discriminator's gradient", True),
              ("d_fake", "mean D(G(z))", "D on generated images", False)]
    for ax, (key, label, title, log) in zip(axes, panels, strict=True):
        for (loss, seed), record in runs.items():
            ax.plot(record["steps"], record[key], color=COLOURS[loss], linestyle="-" if seed == SEEDS[0] else "--",
                    label=f"{loss}, seed {seed}")
        ax.set(xlabel=f"step (means over {WINDOW} steps)", ylabel=label, title=title)
        if log:
            ax.set_yscale("log")
    axes[2].set_ylim(0, 1)
    axes[2].legend(fontsize=7.5)
    figure.tight_layout()
    figure.savefig(path, dpi=200)
    plt.close(figure)


def plot_samples(runs: dict, path: Path) -> None:
    figure, axes = plt.subplots(len(SEEDS), len(LOSSES), figsize=(8, 4 * len(SEEDS)), squeeze=False)
    for (loss, seed), record in runs.items():
        ax = axes[SEEDS.index(seed), list(LOSSES).index(loss)]
        ax.imshow(make_grid(record["samples"], nrow=8, padding=2, pad_value=1.0)[0], cmap="gray", vmin=0, vmax=1)
        ax.set(title=f"{loss}, seed {seed}: after epoch {EPOCHS}", xticks=[], yticks=[])
    figure.tight_layout()
    figure.savefig(path, dpi=200)
    plt.close(figure)


def plot_histograms(runs: dict, reference_counts: list[int], path: Path) -> None:
    figure, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / (len(runs) + 1)
    ax.bar([d - 0.4 + width / 2 for d in range(10)], reference_counts, width, color="0.6",
           label=f"{NUM_SAMPLES} real training digits")
    for i, ((loss, seed), record) in enumerate(runs.items(), start=1):
        ax.bar([d - 0.4 + width * (i + 0.5) for d in range(10)], record["final_counts"], width, color=COLOURS[loss],
               alpha=1.0 if seed == SEEDS[0] else 0.55, label=f"{loss}, seed {seed}")
    ax.set_xticks(range(10))
    ax.set(xlabel="digit predicted by the judge", ylabel=f"of {NUM_SAMPLES} samples")
    ax.legend(fontsize=7.5, ncols=3)
    figure.tight_layout()
    figure.savefig(path, dpi=200)
    plt.close(figure)



def main(out: Path) -> dict:
    clock = ExperimentClock()
    start_wall = clock.wall
    cfg = vclib.setup(seed=0, verbose=False)
    out.mkdir(parents=True, exist_ok=True)
    train_set, test_set = load_mnist("train", source="embedded"), load_mnist("test", source="embedded")
    judge, judge_accuracy = train_judge(train_set, make_loader(test_set.tensors(), batch_size=500))
    features = generative.ClassifierFeatures(judge)
    subset = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))[:NUM_SAMPLES]
    reference = score(train_set.images[subset], judge, features, test_set.images)
    print(f"judge accuracy {judge_accuracy:.3f}; real-digit FID {reference['fid']:.1f}", flush=True)
    fixed_noise = torch.randn(NUM_SAMPLES, LATENT, generator=torch.Generator().manual_seed(1))
    runs = {}
    for seed in SEEDS:
        for loss, saturating in LOSSES.items():
            runs[(loss, seed)] = run(saturating, seed, train_set, judge, features, test_set.images, fixed_noise)
            record = runs[(loss, seed)]
            print(f"{loss} seed {seed}: FID {record['fid'][-1]:.1f}, classes {record['classes'][-1]}, "
                  f"entropy {record['entropy'][-1]:.2f}, {time.perf_counter() - start_wall:.0f} s", flush=True)
    plot_curves(runs, reference, out / "curves.png")
    plot_gradients(runs, out / "gradients.png")
    plot_samples(runs, out / "samples.png")
    plot_histograms(runs, reference["counts"], out / "histograms.png")
    results = {
        "setup": {"seeds": list(SEEDS), "epochs": EPOCHS, "latent_dim": LATENT, "generator_width": G_WIDTH,
                  "discriminator_width": D_WIDTH, "learning_rate": LEARNING_RATE, "batch_size": BATCH_SIZE,
                  "num_samples": NUM_SAMPLES, "coverage_share": COVERAGE_SHARE, "train_size": len(train_set),
                  "test_size": len(test_set), "steps_per_epoch": len(train_set) // BATCH_SIZE,
                  "threads": cfg.threads, "torch": torch.__version__},
        "judge_accuracy": judge_accuracy,
        "reference": reference,
        "runs": {loss: {f"seed{seed}": {k: v for k, v in runs[(loss, seed)].items() if k != "samples"}
                        for seed in SEEDS} for loss in LOSSES},
        "final": {loss: {key: sum(runs[(loss, s)][key][-1] for s in SEEDS) / len(SEEDS)
                         for key in ("fid", "classes", "entropy", "confidence")} for loss in LOSSES},
        **clock.seconds(),
    }
    write_results(out, results)
    return results


if __name__ == "__main__":
    experiment_cli(main, __doc__, DEFAULT_OUT)
