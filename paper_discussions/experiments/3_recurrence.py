"""Paper discussion 3: RNN, LSTM, GRU and a causal Transformer on the delayed-recall task, and their cost.

1. Delayed recall (``vclib.sequence.tasks.recall_sequences``, P3's task): step 0 shows a cue symbol with a
   marker bit, every later step a random distractor, and the target at every step is the cue. For each
   sequence length T, an Elman RNN, an LSTM and a GRU (the ``vclib.sequence`` twins, in P3's
   ``SequenceTagger``) and a small causal Transformer (``vclib.transformer.TransformerEncoderBlock`` with
   ``is_causal=True`` and 1-D sine-cosine positions) are trained with the same budget on fresh random
   batches, once per seed in SEEDS (the seed fixes the initialisation and the batches, the same batches for
   every model). We record the test accuracy at every lag, the accuracy at the longest lag (T - 1), and, for
   the longest T, the gradient of the last step's loss with respect to every input, before and after training.
2. Cost: wall-clock and CPU time of one training step (forward, backward) against the sequence length,
   for the four models, and as references for torch's ``nn.RNN``, ``nn.GRU`` and ``nn.LSTM`` (same sizes) and
   the Transformer with torch's fused attention kernel. CPU time is plotted: the machine is shared, and with
   one thread the CPU time of a step equals its wall time on an idle machine.

Writes results.json and three PNG figures into --out (default paper_discussions/results/3_recurrence).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402
from torch import nn  # noqa: E402

import vclib  # noqa: E402
from vclib.paper_experiments import experiment_cli  # noqa: E402
from vclib.sequence.tasks import (  # noqa: E402
    SequenceTagger,
    accuracy_per_step,
    input_gradient_norms,
    recall_sequences,
    sequence_cross_entropy,
)
from vclib.transformer import TransformerEncoderBlock  # noqa: E402

NUM_SYMBOLS = 8
HIDDEN = 64  # recurrent state width, and the Transformer's d_model
LENGTHS = (10, 20, 40, 80)  # training/test sequence lengths T; the longest lag is T - 1
SEEDS = (0, 1, 2)  # each model is trained once per seed (initialisation and batches)
STEPS = 250
BATCH_SIZE = 64
LEARNING_RATES = {"rnn": 1e-2, "lstm": 1e-2, "gru": 1e-2, "transformer": 1e-3}
CLIP = 1.0  # gradient-norm clipping, the same for every model
TEST_SIZE = 1000
TIMING_LENGTHS = (16, 32, 64, 128, 256)
TIMING_REPEATS = 5
MODELS = ("rnn", "lstm", "gru", "transformer")
LABELS = {"rnn": "RNN (Elman)", "lstm": "LSTM", "gru": "GRU", "transformer": "Transformer (causal)"}
COLOURS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:orange", "transformer": "tab:green"}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "results" / "3_recurrence"


def sincos_positions(length: int, width: int) -> torch.Tensor:
    """The Transformer paper's 1-D encoding: ``PE[p, 2i] = sin(p / 10000^(2i/E))``, ``PE[p, 2i+1] = cos(...)``.

    Returns:
        ``(length, width)``.
    """
    positions = torch.arange(length, dtype=torch.float64)[:, None]  # (T, 1)
    frequencies = 10000.0 ** (-torch.arange(0, width, 2, dtype=torch.float64) / width)  # (E/2,)
    angles = positions * frequencies  # (T, E/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1).float()  # (T, E), sin and cos interleaved


class CausalTransformerTagger(nn.Module):
    """Linear token embedding + positions, pre-norm causal encoder blocks, a linear read-out at every step.

    ``forward(inputs (B, T, input_size)) -> logits (B, T, num_classes)``; step t sees inputs 0 .. t only.
    """

    def __init__(
        self, input_size: int, d_model: int, num_classes: int, num_layers: int = 2, nhead: int = 4, fused: bool = False
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(input_size, d_model)
        self.blocks = nn.ModuleList(
            TransformerEncoderBlock(
                d_model, nhead, 2 * d_model, dropout=0.0, batch_first=True, norm_first=True, fused=fused
            )
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.readout = nn.Linear(d_model, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        length, width = inputs.shape[1], self.embed.out_features
        x = self.embed(inputs) + sincos_positions(length, width)  # (B, T, E)
        for block in self.blocks:
            x = block(x, is_causal=True)  # (B, T, E)
        return self.readout(self.norm(x))  # (B, T, C)


def make_model(name: str) -> nn.Module:
    if name == "transformer":
        return CausalTransformerTagger(NUM_SYMBOLS + 1, HIDDEN, NUM_SYMBOLS)
    return SequenceTagger(NUM_SYMBOLS + 1, HIDDEN, NUM_SYMBOLS, cell=name)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train(name: str, length: int, seed: int, test_set: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """Adam on STEPS fresh batches (per seed, the same batches for every model), clipped gradients.

    Returns the test accuracy per lag, the final loss, times, and for the longest T the input gradients.
    """
    torch.manual_seed(seed)
    model = make_model(name)
    gradients_init = input_gradient_norms(model, *[t[:256] for t in test_set]) if length == max(LENGTHS) else None
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATES[name])
    generator = torch.Generator().manual_seed(100 + seed)
    losses = []
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(STEPS):
        inputs, targets = recall_sequences(BATCH_SIZE, length, NUM_SYMBOLS, generator)
        loss = sequence_cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        losses.append(loss.item())
    seconds, cpu_seconds = time.perf_counter() - start_wall, time.process_time() - start_cpu
    model.eval()
    with torch.no_grad():
        per_lag = accuracy_per_step(model(test_set[0]), test_set[1])  # (T,)
    run = {
        "seed": seed,
        "parameters": count_parameters(model),
        "accuracy_per_lag": [round(a, 4) for a in per_lag.tolist()],
        "accuracy_last_lag": per_lag[-1].item(),
        "accuracy_mean": per_lag.mean().item(),
        "final_loss": sum(losses[-20:]) / 20,
        "train_seconds": round(seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
    }
    if gradients_init is not None:
        run["gradients_init"] = gradients_init.tolist()
        run["gradients_trained"] = input_gradient_norms(model, *[t[:256] for t in test_set]).tolist()
    return run


def summarise(name: str, length: int, seeds: list[dict]) -> dict:
    """Mean, min and max over seeds of the accuracies; per-lag accuracy averaged over seeds."""
    last = [run["accuracy_last_lag"] for run in seeds]
    summary = {
        "model": name,
        "length": length,
        "parameters": seeds[0]["parameters"],
        "accuracy_last_lag": statistics.mean(last),
        "accuracy_last_lag_min": min(last),
        "accuracy_last_lag_max": max(last),
        "accuracy_mean": statistics.mean(run["accuracy_mean"] for run in seeds),
        "accuracy_per_lag": [
            round(statistics.mean(lag), 4) for lag in zip(*(run["accuracy_per_lag"] for run in seeds), strict=True)
        ],
        "seeds_solved": sum(a >= 0.99 for a in last),  # accuracy at the longest lag >= 0.99
        "train_cpu_seconds": round(sum(run["train_cpu_seconds"] for run in seeds), 1),
        "per_seed": seeds,
    }
    for key in ("gradients_init", "gradients_trained"):  # seed 0's
        if key in seeds[0]:
            summary[key] = seeds[0].pop(key)
    return summary


def time_training_step(model: nn.Module, length: int) -> dict:
    """Wall-clock (min over repeats) and CPU time (median) of forward + backward on one batch of length ``length``."""
    generator = torch.Generator().manual_seed(2)
    inputs, targets = recall_sequences(BATCH_SIZE, length, NUM_SYMBOLS, generator)
    walls, cpus = [], []
    for repeat in range(TIMING_REPEATS + 1):  # the first run warms up and is not counted
        model.zero_grad(set_to_none=True)
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        sequence_cross_entropy(model(inputs), targets).backward()
        if repeat:
            walls.append(time.perf_counter() - start_wall)
            cpus.append(time.process_time() - start_cpu)
    return {"wall_ms": 1000 * min(walls), "cpu_ms": 1000 * statistics.median(cpus)}


def timing_models() -> dict[str, nn.Module]:
    models = {name: make_model(name) for name in MODELS}
    for name, reference in (("torch_rnn", nn.RNN), ("torch_lstm", nn.LSTM), ("torch_gru", nn.GRU)):
        tagger = SequenceTagger(NUM_SYMBOLS + 1, HIDDEN, NUM_SYMBOLS, cell=name.removeprefix("torch_"))
        tagger.recurrent = reference(NUM_SYMBOLS + 1, HIDDEN, batch_first=True)
        models[name] = tagger
    # the same Transformer with torch's fused attention kernel (F.scaled_dot_product_attention)
    models["torch_transformer"] = CausalTransformerTagger(NUM_SYMBOLS + 1, HIDDEN, NUM_SYMBOLS, fused=True)
    return models


def plot_accuracy(runs: dict, path: Path) -> None:
    fig, (ax_len, ax_lag) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    longest = max(LENGTHS)
    for offset, name in zip((0.94, 0.98, 1.02, 1.06), MODELS, strict=True):  # small shifts keep markers apart
        summaries = [runs[f"{name}_T{t}"] for t in LENGTHS]
        mean = [s["accuracy_last_lag"] for s in summaries]
        spread = [
            [m - s["accuracy_last_lag_min"] for m, s in zip(mean, summaries, strict=True)],
            [s["accuracy_last_lag_max"] - m for m, s in zip(mean, summaries, strict=True)],
        ]
        ax_len.errorbar(
            [offset * (t - 1) for t in LENGTHS],
            mean,
            yerr=spread,
            fmt="o-",
            capsize=3,
            color=COLOURS[name],
            label=LABELS[name],
        )
        for run in runs[f"{name}_T{longest}"]["per_seed"]:
            ax_lag.plot(
                run["accuracy_per_lag"],
                color=COLOURS[name],
                alpha=0.8,
                linewidth=1.2,
                label=LABELS[name] if run["seed"] == SEEDS[0] else None,
            )
    for ax in (ax_len, ax_lag):
        ax.axhline(1 / NUM_SYMBOLS, color="0.5", linestyle=":", label="chance")
        ax.set_ylim(0, 1.04)
        ax.set_ylabel("test accuracy")
    ax_len.set_xscale("log", base=2)
    ax_len.set_xticks([t - 1 for t in LENGTHS], [str(t - 1) for t in LENGTHS])
    ax_len.xaxis.set_minor_locator(NullLocator())
    ax_len.set_xlabel("longest lag T - 1 (one model per T)")
    ax_len.set_title(f"accuracy at the longest lag (mean, min-max of {len(SEEDS)} seeds)", fontsize=10)
    ax_lag.set_xlabel(f"lag t (models trained with T = {longest})")
    ax_lag.set_title("accuracy at every lag, one line per seed", fontsize=10)
    ax_len.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)


def plot_gradients(runs: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.2), sharey=True)
    longest = max(LENGTHS)
    for ax, key, title in ((axes[0], "gradients_init", "at initialisation"), (axes[1], "gradients_trained", "trained")):
        for name in MODELS:
            ax.semilogy(runs[f"{name}_T{longest}"][key], color=COLOURS[name], label=LABELS[name])
        ax.set_xlabel("input step t")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel(r"$\|\partial L_{T-1} / \partial x_t\|$")
    axes[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)


def plot_timing(timing: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    styles = {name: (COLOURS[name], "-", "o") for name in MODELS}
    styles |= {f"torch_{n}": (COLOURS[n], "--", "s") for n in MODELS}
    references = {
        "torch_rnn": "nn.RNN",
        "torch_lstm": "nn.LSTM",
        "torch_gru": "nn.GRU",
        "torch_transformer": "fused attention",
    }
    for name, (colour, line, marker) in styles.items():
        label = LABELS[name] if name in LABELS else f"torch {references[name]}"
        ax.loglog(
            TIMING_LENGTHS,
            [timing[name][str(t)]["cpu_ms"] for t in TIMING_LENGTHS],
            linestyle=line,
            marker=marker,
            markersize=4,
            color=colour,
            label=label + ("" if name in LABELS else " (reference)"),
        )
    ax.set_xticks(TIMING_LENGTHS, [str(t) for t in TIMING_LENGTHS])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("sequence length T")
    ax.set_ylabel(f"CPU ms per step (fwd + bwd, B = {BATCH_SIZE})")
    ax.legend(frameon=False, fontsize=7.5)
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)


def slope(timing: dict, name: str) -> float:
    """Least-squares slope of log(time) against log(T): about 1 for linear growth, 2 for quadratic."""
    xs = [math.log(t) for t in TIMING_LENGTHS]
    ys = [math.log(timing[name][str(t)]["cpu_ms"]) for t in TIMING_LENGTHS]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def main(out: Path) -> dict:
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    cfg = vclib.setup(seed=0, verbose=False)
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for length in LENGTHS:
        test_set = recall_sequences(TEST_SIZE, length, NUM_SYMBOLS, torch.Generator().manual_seed(1000 + length))
        for name in MODELS:
            seeds = [train(name, length, seed, test_set) for seed in SEEDS]
            runs[f"{name}_T{length}"] = summary = summarise(name, length, seeds)
            print(
                f"T={length:3d} {name:11s}: accuracy at lag {length - 1}: "
                + ", ".join(f"{run['accuracy_last_lag']:.3f}" for run in seeds)
                + f" ({summary['train_cpu_seconds']:.0f} s CPU)",
                flush=True,
            )
    torch.manual_seed(0)
    timing = {}
    for name, model in timing_models().items():
        timing[name] = {str(t): time_training_step(model, t) for t in TIMING_LENGTHS}
        print(f"timing {name}: " + ", ".join(f"{v['wall_ms']:.1f}" for v in timing[name].values()) + " ms", flush=True)
    plot_accuracy(runs, out / "accuracy_vs_lag.png")
    plot_gradients(runs, out / "gradients.png")
    plot_timing(timing, out / "time_per_step.png")
    longest, ref = str(max(TIMING_LENGTHS)), "cpu_ms"
    parameters = {name: runs[f"{name}_T{max(LENGTHS)}"]["parameters"] for name in MODELS}
    gradient_decay = {
        name: runs[f"{name}_T{max(LENGTHS)}"]["gradients_init"][0]
        / runs[f"{name}_T{max(LENGTHS)}"]["gradients_init"][-1]
        for name in MODELS
    }
    results = {
        "setup": {
            "seeds": len(SEEDS),
            "lengths": list(LENGTHS),
            "longest_lags": [t - 1 for t in LENGTHS],
            "num_symbols": NUM_SYMBOLS,
            "hidden": HIDDEN,
            "steps": STEPS,
            "batch_size": BATCH_SIZE,
            "learning_rates": LEARNING_RATES,
            "clip": CLIP,
            "test_size": TEST_SIZE,
            "timing_lengths": list(TIMING_LENGTHS),
            "timing_repeats": TIMING_REPEATS,
            "transformer_layers": 2,
            "transformer_heads": 4,
            "threads": cfg.threads,
            "torch": torch.__version__,
            "parameters": parameters,
            "chance": 1 / NUM_SYMBOLS,
        },
        "runs": runs,
        "gradient_first_over_last_init": gradient_decay,
        "timing": timing,
        "timing_slope": {name: slope(timing, name) for name in timing},
        "timing_ratio_to_torch": {
            name: timing[name][longest][ref] / timing[f"torch_{name}"][longest][ref] for name in MODELS
        },
        "seconds": round(time.perf_counter() - start_wall, 1),
        "cpu_seconds": round(time.process_time() - start_cpu, 1),
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"done in {results['seconds']:.0f} s wall, {results['cpu_seconds']:.0f} s CPU", flush=True)
    return results


if __name__ == "__main__":
    experiment_cli(main, __doc__, DEFAULT_OUT)
