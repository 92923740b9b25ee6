# %% [markdown]
# # Project 4: Generative Models
#
# A classifier models $p(y \mid x)$. A generative model learns the distribution of the data itself, so it
# can draw new samples, score how likely an image is, and give every image a code $z$ whose geometry
# means something. This project builds two of them, a variational auto-encoder and a generative
# adversarial network, and then turns the gradient machinery around to attack a classifier.
#
# Every model here is judged by numbers you can reproduce, not only by pictures: the negative ELBO in
# nats, a Fréchet distance on a digit classifier's features, how many kinds of digits a GAN draws, and
# accuracy under attack. Quick mode (the default) trains small models for a few epochs on the 4,000
# embedded training digits; `VCLIB_MODE=full` trains longer on the full MNIST.

# %%
import copy
import math
from functools import partial

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence
from torch.utils.data import TensorDataset

import vclib
from vclib import adversarial, generative, metrics, train, viz
from vclib.adversarial import explorer as attack_views
from vclib.basics.cnn import DigitCNN
from vclib.data import make_loader
from vclib.data.mnist import load_mnist
from vclib.generative import explorers

cfg = vclib.setup()

# %%
train_set = load_mnist("train", source=cfg.data_source)
test_set = load_mnist("test", source=cfg.data_source)
test_loader = make_loader(test_set.tensors(), batch_size=500)
print(f"train: {tuple(train_set.images.shape)}, test: {tuple(test_set.images.shape)}")

# %% [markdown]
# ## Factorisation
#
# A latent-variable model explains each image $x$ by an unobserved code $z$. The joint distribution
# factorises in two ways,
#
# $$p(x, z) = p(z \mid x)\, p(x) = p(x \mid z)\, p(z),$$
#
# and each factor has a role: the **prior** $p(z)$ (here $\mathcal N(0, I)$) says what codes look like,
# the **decoder** $p(x \mid z)$ turns a code into an image, and the **encoder** approximates the posterior
# $p(z \mid x)$, the codes that explain a given image. Generating is ancestral sampling through the right
# side: $z \sim p(z)$, then $x \sim p(x \mid z)$. The posterior on the left is intractable for a neural
# decoder, because $p(x) = \int p(x \mid z) p(z)\, dz$ has no closed form; the VAE learns an
# approximation to it, the GAN avoids it.

# %% [markdown]
# ## Variational Auto-Encoders
#
# ![The VAE: encoder, reparameterisation, decoder](../assets/4_VAE.png)
#
# The encoder outputs a Gaussian $q(z \mid x) = \mathcal N(\mu(x), \operatorname{diag}\sigma^2(x))$. For
# any such $q$, $\log p(x)$ is bounded below by the evidence lower bound
#
# $$\log p(x) \ge \mathrm{ELBO}(x) = \mathbb E_{q(z \mid x)}[\log p(x \mid z)]
#   - \mathrm{KL}\big(q(z \mid x)\,\|\,p(z)\big),
# \qquad \mathrm{KL} = \tfrac12 \sum_i \big(\mu_i^2 + \sigma_i^2 - \log \sigma_i^2 - 1\big).$$
#
# The **reparameterisation** $z = \mu + \sigma \odot \varepsilon$, $\varepsilon \sim \mathcal N(0, I)$, moves
# the randomness into $\varepsilon$, so the sample is differentiable in $\mu$ and $\sigma$ and the
# encoder trains by backpropagation. The course's **beta-VAE loss** is
#
# $$L(x) = \lVert \hat x - x \rVert^2 + \beta \sum_i \big(\mu_i^2 + \sigma_i^2 - \log \sigma_i^2 - 1\big).$$
#
# **Where is the ½?** The textbook KL has a factor ½ in front of the sum; here $\beta$ absorbs it. With a
# Gaussian decoder of variance $s^2$, $-\log p(x \mid z) = \lVert x - \hat x\rVert^2 / (2s^2) + \text{const}$,
# so the textbook $\beta$-VAE objective $-\log p(x\mid z) + \beta_{\text{text}} \mathrm{KL}$, multiplied by
# $2s^2$, is the course loss with $\beta = \beta_{\text{text}}\, s^2$. The plain VAE
# ($\beta_{\text{text}} = 1$) with decoder variance $s^2 = \tfrac12$ is exactly the course loss with
# $\beta = \tfrac12$, which is what we train below. Larger $\beta$ buys a smoother, more prior-like code
# with blurrier reconstructions.

# %% [markdown]
# `ConvVAE`'s encoder halves the resolution twice with stride-2 convolutions (28 → 14 → 7) and outputs
# $2 \times$ `latent_dim` numbers, $\mu$ and $\log \sigma^2$; the decoder mirrors it with transposed
# convolutions. The forward pass and the reparameterisation:

# %%
vclib.show_source(generative.ConvVAE.reparameterize)
vclib.show_source(generative.ConvVAE.forward)

# %%
vclib.show_source(generative.beta_vae_loss)

# %% [markdown]
# The KL term is checked against `torch.distributions`, which knows the KL divergence of two Gaussians:
# the course term is exactly twice the textbook one.

# %%
# NBVAL_CHECK_OUTPUT
generator = torch.Generator().manual_seed(0)
mu, logvar = torch.randn(16, 8, generator=generator), torch.randn(16, 8, generator=generator)
x, x_hat = torch.rand(16, 1, 28, 28, generator=generator), torch.rand(16, 1, 28, 28, generator=generator)
textbook_kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1).mean()
loss = generative.beta_vae_loss(x_hat, x, mu, logvar, beta=1.0)
print("KL term equals 2 x torch.distributions' KL:", torch.allclose(loss.kl, 2 * textbook_kl))
print("reconstruction term equals summed F.mse_loss / batch:",
      torch.allclose(loss.reconstruction, F.mse_loss(x_hat, x, reduction="sum") / 16))

# %% [markdown]
# `vclib.train.fit` trains the VAE like any other model: the dataset yields `(x, x)` pairs, the model
# returns `(x_hat, mu, logvar, logits)`, and the loss function reads both.

# %%
VAE_BETA = 0.5
LATENT_DIM, VAE_WIDTH = 8, 32
vae_epochs = cfg.pick(quick=10, full=30)
vae_loader = make_loader(TensorDataset(train_set.images, train_set.images), batch_size=32, shuffle=True)
torch.manual_seed(0)
vae = generative.ConvVAE(latent_dim=LATENT_DIM, width=VAE_WIDTH)
vae_history = train.fit(vae, vae_loader, epochs=vae_epochs, loss_fn=generative.beta_vae_objective(VAE_BETA),
                        optimizer=torch.optim.Adam(vae.parameters(), lr=2e-3), device=cfg.device, desc="vae")
viz.plot_history(vae_history, title=f"ConvVAE, course loss with beta = {VAE_BETA}")
plt.show()

# %% [markdown]
# Reconstructions decode the posterior mean $\mu(x)$ of test digits; samples decode codes drawn from the
# prior $\mathcal N(0, I)$, which only works because the KL term pulled the codes towards it.

# %%
vae.eval()
first_of_each_digit = [int((test_set.labels == digit).nonzero()[0]) for digit in range(10)]
one_per_class = test_set.images[first_of_each_digit]  # (10, 1, 28, 28)
with torch.no_grad():
    reconstructions = vae.decode(vae.encode(one_per_class.to(cfg.device))[0]).cpu()
viz.show_images(torch.cat([one_per_class, reconstructions]), ncols=10,
                title="test digits (top) and their reconstructions (bottom)")
plt.show()
vae_samples = vae.sample(32, generator=torch.Generator().manual_seed(0)).cpu()
viz.show_images(vae_samples, ncols=16, title="samples from the prior")
plt.show()

# %% [markdown]
# **The latent space.** Each test digit's posterior mean is an 8-dimensional code. Projected onto its two
# principal axes, the codes of one digit cluster together, although the VAE never saw a label.

# %%
with torch.no_grad():
    posteriors = [vae.encode(images.to(cfg.device)) for images, _ in test_loader]
codes = torch.cat([mu.cpu() for mu, _ in posteriors])  # (N_test, 8) posterior means
code_logvars = torch.cat([logvar.cpu() for _, logvar in posteriors])  # (N_test, 8)
centred = codes - codes.mean(0)
_, _, right_vectors = torch.linalg.svd(centred, full_matrices=False)  # right_vectors: (8, 8)
latent_map = centred @ right_vectors[:2].T  # (1000, 2)
fig, ax = plt.subplots(figsize=(6, 5))
points = ax.scatter(latent_map[:, 0], latent_map[:, 1], c=test_set.labels, cmap="tab10", s=6)
fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
ax.set_xlabel("principal axis 1 of mu(x)")
ax.set_ylabel("principal axis 2 of mu(x)")
ax.set_title("test digits in the VAE's latent space")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
some_codes, some_labels = codes[:1000], test_set.labels[:1000]  # at most 1,000 (full mode has 10,000)
distances = torch.cdist(some_codes, some_codes)  # (1000, 1000)
same_digit = some_labels[:, None] == some_labels[None, :]  # (1000, 1000)
print("codes of the same digit are closer than codes of different digits:",
      distances[same_digit].mean().item() < distances[~same_digit].mean().item())

# %% [markdown]
# **Latent traversal.** Start at the prior's mean $z = 0$ and move one coordinate at a time. The KL term
# *can* switch off a dimension the decoder does not need: $\mu_i \approx 0$ and $\sigma_i \approx 1$ for
# every image, a KL near 0 nats, and a row of the traversal that does not change. The per-dimension KL
# (printed) says whether that happened. In this model it did not: every dimension carries about one nat,
# and every row changes the digit. Eight dimensions are few for MNIST and $\beta = \tfrac12$ is a weak
# pull towards the prior, so the decoder finds a use for all of them; the sweep below shows what a
# stronger pull does.

# %%
kl_per_dim = 0.5 * (codes.pow(2) + code_logvars.exp() - code_logvars - 1).mean(0)  # (8,) nats, textbook KL
print("KL per latent dimension (nats):", [round(v, 2) for v in kl_per_dim.tolist()])
print("dimensions switched off (KL < 0.1 nats):", (kl_per_dim < 0.1).nonzero().flatten().tolist())
explorers.draw_latent_traversal(vae.decode, torch.zeros(LATENT_DIM), values=(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5),
                                device=cfg.device)
plt.show()

# %% [markdown]
# Move the sliders (one per latent dimension) to decode any code:

# %%
explorers.latent_traversal_widget(vae.decode, LATENT_DIM, device=cfg.device)

# %%
# NBVAL_CHECK_OUTPUT
print("every latent dimension is in use (KL above 0.1 nats):", bool((kl_per_dim > 0.1).all()))

# %% [markdown]
# **The beta sweep.** Each $\beta$ trains a fresh VAE with the same short budget; we measure both terms of
# the course loss on the test set. Raising $\beta$ trades reconstruction for a code closer to the prior.

# %%
vclib.show_source(generative.beta_vae_terms)

# %%
betas = cfg.pick(quick=[0.1, 0.5, 2.0], full=[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0])
sweep_epochs = cfg.pick(quick=2, full=10)
sweep = {}
for beta in betas:
    torch.manual_seed(0)
    model = generative.ConvVAE(latent_dim=LATENT_DIM, width=VAE_WIDTH)
    train.fit(model, vae_loader, epochs=sweep_epochs, loss_fn=generative.beta_vae_objective(beta),
              optimizer=torch.optim.Adam(model.parameters(), lr=2e-3), device=cfg.device, desc=f"beta {beta}")
    sweep[beta] = generative.beta_vae_terms(model, test_loader, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mu_all, logvar_all = (torch.cat(parts) for parts in
                              zip(*(model.encode(images.to(cfg.device)) for images, _ in test_loader), strict=True))
    dims_kl = 0.5 * (mu_all.pow(2) + logvar_all.exp() - logvar_all - 1).mean(0)  # (8,) nats per dimension
    sweep[beta]["active"] = int((dims_kl > 0.1).sum())
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
titles = {"reconstruction": "||x_hat - x||^2 (test mean)", "kl": "sum(mu^2 + s^2 - log s^2 - 1) (test mean)"}
for ax, (term, title) in zip(axes, titles.items(), strict=True):
    ax.plot(betas, [sweep[beta][term] for beta in betas], "o-")
    ax.set_xscale("log")
    ax.set(xlabel="beta", ylabel=term, title=title)
plt.show()
for beta in betas:
    print(f"beta {beta:<5} reconstruction {sweep[beta]['reconstruction']:6.1f}   KL term {sweep[beta]['kl']:6.2f}   "
          f"dimensions in use (KL > 0.1 nats): {sweep[beta]['active']} of {LATENT_DIM}")

# %%
# NBVAL_CHECK_OUTPUT
reconstruction_terms = [sweep[beta]["reconstruction"] for beta in betas]
kl_terms = [sweep[beta]["kl"] for beta in betas]
print("reconstruction error grows with beta:", reconstruction_terms == sorted(reconstruction_terms))
print("KL term falls as beta grows:", kl_terms == sorted(kl_terms, reverse=True))

# %% [markdown]
# **Collapse at the largest beta.** At $\beta = 2$ the KL term falls far below the others (printed above,
# with the number of dimensions still in use). This is **posterior collapse**: early in training the
# decoder cannot yet use the code well, the KL price of carrying information is high, and the encoder
# finds it cheaper to output the prior, $q(z \mid x) \approx \mathcal N(0, I)$, for most or all dimensions.
# Once a dimension carries no information the decoder learns to ignore it, so it never comes back; with
# few or no dimensions left, every reconstruction is close to one blurry average digit. In textbook terms, the course's
# $\beta = 2$ with a decoder variance of $\tfrac12$ is $\beta_{\text{text}} = 4$. Remedies are a KL
# warm-up (start at $\beta = 0$ and raise it), "free bits" (no KL penalty below a floor per dimension), or
# simply a smaller $\beta$.
#
# **Questions**
#
# 1. Train the VAE with `LATENT_DIM = 32`. Predict how many dimensions stay in use, then check with the
#    per-dimension KL.
# 2. Add a linear KL warm-up to the $\beta = 2$ run (over the first epoch). Does it still collapse?
# 3. The negative ELBO below reads the decoder as Bernoulli; the training loss is a squared error. Why is
#    the ELBO still a valid bound on $-\log p(x)$ for the Bernoulli model, and what would change if we
#    trained with the Bernoulli likelihood instead?

# %% [markdown]
# **A number for the model: the negative ELBO.** Reading the decoder's outputs as Bernoulli means, the
# negative ELBO of an image is $-\log p(x \mid z) + \mathrm{KL}$ with the textbook ½, in nats and summed over
# its 784 pixels. It bounds $-\log p(x)$ from above, so lower is better; a model that flips a fair coin
# for every pixel scores $784 \log 2 \approx 543$ nats. (Greyscale pixels serve as Bernoulli targets, the
# usual convention for MNIST VAEs; papers on binarised MNIST report a different, lower, benchmark.)

# %%
vclib.show_source(generative.bernoulli_negative_elbo)

# %%
COIN_FLIP_NATS = 784 * math.log(2)
negative_elbo = generative.negative_elbo(vae, test_loader, generator=torch.Generator().manual_seed(0))
cfg.log_metric("vae_negative_elbo_nats", negative_elbo)
torch.manual_seed(0)
untrained_vae = generative.ConvVAE(latent_dim=LATENT_DIM, width=VAE_WIDTH).to(cfg.device)
untrained_negative_elbo = generative.negative_elbo(untrained_vae, test_loader,
                                                   generator=torch.Generator().manual_seed(0))
print(f"test-set negative ELBO, Bernoulli decoder: {negative_elbo:.1f} nats per image "
      f"(untrained VAE: {untrained_negative_elbo:.1f}; a fair coin per pixel: {COIN_FLIP_NATS:.1f})")

# %%
# NBVAL_CHECK_OUTPUT
print("negative ELBO beats a fair coin per pixel:", negative_elbo < COIN_FLIP_NATS)
print("negative ELBO beats the untrained VAE by over 100 nats:",
      negative_elbo < untrained_negative_elbo - 100)

# %% [markdown]
# In quick mode, in our runs over seeds 0, 1 and 2 (initialisation and batch order), the negative ELBO came
# out between 128 and 131 nats, against 488 to 607 for the untrained VAEs.

# %% [markdown]
# ## Generative Adversarial Networks
#
# ![One GAN training step: generator, discriminator and their losses](../assets/4_GAN.png)
#
# A GAN skips the likelihood. A generator $G$ maps noise $z \sim \mathcal N(0, I)$ to images, and a
# discriminator $D$ outputs the probability that an image is real. They play the min-max game
#
# $$\min_G \max_D \; \mathbb E_x[\log D(x)] + \mathbb E_z[\log(1 - D(G(z)))].$$
#
# The discriminator minimises $L_D = -\mathbb E_x[\log D(x)] - \mathbb E_z[\log(1 - D(G(z)))]$, a binary
# cross-entropy with real = 1 and fake = 0. The generator minimises the course's
# $L_G = \mathbb E_z[\log(1 - D(G(z)))]$. For a fixed $G$ the best discriminator is
# $D^*(x) = p_{\text{data}}(x) / (p_{\text{data}}(x) + p_G(x))$, and against it the generator minimises the
# Jensen-Shannon divergence between $p_G$ and the data: the game ends when $p_G = p_{\text{data}}$ and
# $D = \tfrac12$ everywhere.
#
# The losses take the discriminator's **logits** $\ell$, $D = \sigma(\ell)$:
# $-\log \sigma(\ell) = \operatorname{softplus}(-\ell)$ and
# $-\log(1 - \sigma(\ell)) = \operatorname{softplus}(\ell)$ are exact and stay finite for any $\ell$, where
# $\log(1 - \sigma(\ell))$ computed naively returns $-\infty$ once $\sigma(\ell)$ rounds to 1.

# %%
vclib.show_source(generative.discriminator_loss)
vclib.show_source(generative.generator_loss)

# %%
# NBVAL_CHECK_OUTPUT
real_logits = 40 * torch.randn(64, generator=generator)  # large logits: a confident discriminator
fake_logits = 40 * torch.randn(64, generator=generator)
ones, zeros = torch.ones(64), torch.zeros(64)
bce = F.binary_cross_entropy_with_logits
reference_d_loss = bce(real_logits, ones) + bce(fake_logits, zeros)
print("L_D equals BCE(real, 1) + BCE(fake, 0):",
      torch.allclose(generative.discriminator_loss(real_logits, fake_logits), reference_d_loss))
print("saturating L_G equals -BCE(fake, 0):",
      torch.allclose(generative.generator_loss(fake_logits), -bce(fake_logits, zeros)))
print("non-saturating L_G equals BCE(fake, 1):",
      torch.allclose(generative.generator_loss(fake_logits, saturating=False), bce(fake_logits, ones)))
extreme = torch.tensor([-1e3, 1e3])
print("finite for logits of +-1000:", bool(torch.isfinite(generative.discriminator_loss(extreme, extreme))))

# %% [markdown]
# A DCGAN-style pair for 28×28 digits: strided (transposed) convolutions, batch norm, ReLU in $G$ and
# LeakyReLU in $D$. Training alternates one step of each player per batch.

# %%
vclib.show_source(generative.Generator)
vclib.show_source(generative.Discriminator)

# %% [markdown]
# **One training step, written out.** Per batch, the discriminator takes one step on real images (label 1)
# and generated ones (label 0, detached so that $G$ is not updated), then the generator takes one step
# through the just-updated discriminator. Here it is by hand, on two fresh networks and one batch:

# %%
torch.manual_seed(0)
step_generator, step_discriminator = generative.Generator(32, width=32), generative.Discriminator(width=16)
copies = copy.deepcopy(step_generator), copy.deepcopy(step_discriminator)  # for the comparison below
optimizer_g = torch.optim.Adam(step_generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
optimizer_d = torch.optim.Adam(step_discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
real_batch = train_set.images[:32]  # (32, 1, 28, 28)
z = torch.randn(32, 32, generator=torch.Generator().manual_seed(0))  # (32, latent)

fake = step_generator(z)  # (32, 1, 28, 28)
d_loss = generative.discriminator_loss(step_discriminator(real_batch), step_discriminator(fake.detach()))
optimizer_d.zero_grad()
d_loss.backward()
optimizer_d.step()  # D: real -> 1, fake -> 0

g_loss = generative.generator_loss(step_discriminator(fake), saturating=False)  # -log D(G(z))
optimizer_g.zero_grad()
g_loss.backward()
optimizer_g.step()  # G: make D call the fakes real
print(f"one step: L_D = {d_loss.item():.3f}, L_G = {g_loss.item():.3f}")

# %% [markdown]
# `vclib.generative.gan_step` is this step; `train_gan` calls it for every batch, draws the noise from a
# seeded `torch.Generator`, and records the losses, $D(x)$, $D(G(z))$, the generator's gradient norm and
# snapshots from a fixed batch of noise.

# %%
# NBVAL_CHECK_OUTPUT
library_g, library_d = copies
library_optimizers = [torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999)) for m in copies]
record = generative.gan_step(library_g, library_d, real_batch, z, *library_optimizers, saturating=False)
print("gan_step gives the same losses as the step by hand:",
      math.isclose(record["d_loss"], d_loss.item(), rel_tol=1e-5), math.isclose(record["g_loss"], g_loss.item(),
                                                                               rel_tol=1e-5))
print("and the same updated weights:", all(torch.allclose(a, b) for a, b in zip(
    [*library_g.parameters(), *library_d.parameters()],
    [*step_generator.parameters(), *step_discriminator.parameters()], strict=True)))

# %% [markdown]
# **A judge for generated digits.** To score the GAN with numbers we need a model that knows what digits
# look like: Project 1's CNN (`DigitCNN`, the same architecture and width), trained again here. Its
# penultimate features define the Fréchet distance below, its predictions count which digits the GAN
# draws, and the last section attacks it.

# %%
classifier_loader = make_loader(train_set.tensors(), batch_size=32, shuffle=True)
classifier_epochs = cfg.pick(quick=2, full=10)
torch.manual_seed(0)
cnn = DigitCNN(width=16)
cnn_optimizer = torch.optim.Adam(cnn.parameters(), lr=2e-3)
cnn_scheduler = torch.optim.lr_scheduler.OneCycleLR(cnn_optimizer, max_lr=4e-3,
                                                    total_steps=classifier_epochs * len(classifier_loader))
cnn_history = train.fit(cnn, classifier_loader, epochs=classifier_epochs, optimizer=cnn_optimizer,
                        scheduler=cnn_scheduler, scheduler_step="batch", val_loader=test_loader,
                        metrics={"accuracy": metrics.accuracy}, device=cfg.device, desc="cnn")
cnn_accuracy = cfg.log_metric("cnn_clean_accuracy", cnn_history[-1]["val_accuracy"])
print(f"DigitCNN test accuracy: {cnn_accuracy:.3f}")

# %%
# NBVAL_CHECK_OUTPUT
print("DigitCNN test accuracy >= 0.95:", cnn_accuracy >= 0.95)

# %% [markdown]
# Now the GAN, with the non-saturating generator loss (why, below). A fixed batch of noise shows how the
# samples evolve.

# %%
GAN_LATENT, GENERATOR_WIDTH, DISCRIMINATOR_WIDTH = 32, 32, 16
gan_epochs = cfg.pick(quick=8, full=30)
fixed_noise = torch.randn(1000, GAN_LATENT, generator=torch.Generator().manual_seed(1))  # (1000, 32)
torch.manual_seed(0)
gan_generator = generative.Generator(GAN_LATENT, width=GENERATOR_WIDTH).to(cfg.device)
gan_discriminator = generative.Discriminator(width=DISCRIMINATOR_WIDTH).to(cfg.device)
untrained_samples = generative.generate(gan_generator, fixed_noise)  # (1000, 1, 28, 28), before training
gan_loader = make_loader(train_set.tensors(), batch_size=32, shuffle=True, drop_last=True, seed=0)
gan_history = generative.train_gan(gan_generator, gan_discriminator, gan_loader, epochs=gan_epochs, lr=1e-3,
                                   fixed_noise=fixed_noise, snapshot_every=max(1, gan_epochs // 3))
gan_samples = gan_history.snapshots[-1][1]  # (1000, 1, 28, 28)

# %%
window = max(1, len(gan_history.steps) // 40)  # plot means over chunks of steps
steps = gan_history.series("step", window)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
for key, label in [("d_real", "D(x), real"), ("d_fake", "D(G(z)), generated")]:
    axes[0].plot(steps, gan_history.series(key, window), label=label)
axes[0].axhline(0.5, color="0.6", linestyle="--", linewidth=1)
axes[0].set(xlabel="step", ylabel="mean discriminator output", title="D on real and generated images", ylim=(0, 1))
axes[0].legend()
for key in ("d_loss", "g_loss"):
    axes[1].plot(steps, gan_history.series(key, window), label=key)
axes[1].set(xlabel="step", ylabel="loss", title="losses (means over chunks of steps)")
axes[1].legend()
plt.show()
epochs_shown = ", ".join(str(epoch) for epoch, _ in gan_history.snapshots)
viz.show_images(torch.cat([snapshot[:12] for _, snapshot in gan_history.snapshots]), ncols=12, size=0.8,
                title=f"the same 12 noise vectors after epochs {epochs_shown} (one row each)")
plt.show()

# %% [markdown]
# **Saturating or not?** Early in training $D$ rejects fakes easily, $D(G(z)) \approx 0$. The derivative
# of the course loss with respect to the logit is $\partial \log(1 - \sigma(\ell)) / \partial \ell =
# -\sigma(\ell) = -D(G(z))$, which vanishes exactly there: the generator gets almost no signal when it is
# worst. The non-saturating loss $-\log D(G(z))$ has derivative $-(1 - D(G(z)))$, close to $-1$ there, and
# the same fixed point. Both panels below are measured with autograd: on the left the derivative itself,
# on the right the norm of the generator's gradient over the first steps of two runs that differ only in
# the generator loss (same initial weights, batches and noise): the run above, and a saturating one.

# %%
logit_grid = torch.linspace(-8, 8, 200, requires_grad=True)
slopes = {}
for saturating in (True, False):
    (slopes[saturating],) = torch.autograd.grad(
        generative.generator_loss(logit_grid, saturating=saturating) * len(logit_grid), logit_grid)
early_steps = cfg.pick(quick=40, full=200)
torch.manual_seed(0)  # the same initial weights as the run above
saturating_generator = generative.Generator(GAN_LATENT, width=GENERATOR_WIDTH).to(cfg.device)
saturating_discriminator = generative.Discriminator(width=DISCRIMINATOR_WIDTH).to(cfg.device)
saturating_history = generative.train_gan(
    saturating_generator, saturating_discriminator,
    make_loader(train_set.tensors(), batch_size=32, shuffle=True, drop_last=True, seed=0),  # same batches
    epochs=1, lr=1e-3, saturating=True, max_steps=early_steps)
early_norms = {True: saturating_history.series("g_grad_norm"),
               False: gan_history.series("g_grad_norm")[:early_steps]}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
for saturating, name in [(True, "saturating  log(1 - D(G(z)))"), (False, "non-saturating  -log D(G(z))")]:
    axes[0].plot(torch.sigmoid(logit_grid).detach(), slopes[saturating], label=name)
    axes[1].semilogy(early_norms[saturating], label=name)
axes[0].set(xlabel="D(G(z))", ylabel="dL_G / d logit", title="slope of the generator loss")
axes[0].legend(loc="upper center", fontsize=8)
axes[1].set(xlabel="step", ylabel="||grad of L_G wrt G's parameters||", title="generator gradient, first steps")
axes[1].legend()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
saturating_norms = torch.tensor(early_norms[True])[early_steps // 2:]  # the second half of the early steps
non_saturating_norms = torch.tensor(early_norms[False])[early_steps // 2:]
print("early on, the non-saturating loss gives the generator larger gradients:",
      non_saturating_norms.median().item() > saturating_norms.median().item())
print("the saturating loss's slope vanishes as D(G(z)) -> 0:", abs(slopes[True][0].item()) < 1e-3)

# %% [markdown]
# **Interpolation.** Walking on a straight line between two noise vectors morphs one digit into another:
# the generator maps nearby codes to similar images.

# %%
gan_generator.eval()
explorers.draw_interpolation(gan_generator, fixed_noise[0], fixed_noise[1], steps=10, device=cfg.device)
plt.show()

# %%
explorers.interpolation_widget(gan_generator, fixed_noise[:50], device=cfg.device)

# %% [markdown]
# ### Evaluation: Fréchet distance and class coverage
#
# Fit a Gaussian to the judge's penultimate features of real test digits and another to those of 1,000
# generated ones; the Fréchet distance between them,
# $\lVert m_r - m_g\rVert^2 + \operatorname{Tr}\big(C_r + C_g - 2 (C_r C_g)^{1/2}\big)$, is the FID recipe
# with a digit classifier in place of Inception-v3. It is small only if the samples look like digits *and*
# vary like them. (The unit tests check this implementation against torchmetrics' FID with the same
# feature extractor.) The class histogram of the judge's predictions catches mode collapse directly.

# %%
vclib.show_source(generative.frechet_distance)

# %%
features = generative.ClassifierFeatures(cnn)
subset = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))[:1000]
fid_real = generative.classifier_fid(features, test_set.images, train_set.images[subset])
fid_trained = cfg.log_metric("gan_classifier_fid",
                             generative.classifier_fid(features, test_set.images, gan_samples))
fid_untrained = cfg.log_metric("gan_classifier_fid_untrained",
                               generative.classifier_fid(features, test_set.images, untrained_samples))
print(f"classifier-feature FID to the test digits: 1,000 real training digits {fid_real:.1f}, "
      f"trained GAN {fid_trained:.1f}, untrained GAN {fid_untrained:.1f}")
sample_logits, _ = train.predict(cnn, make_loader(TensorDataset(gan_samples, torch.zeros(1000)), 500))
sample_classes = sample_logits.argmax(1)  # (1000,)
class_counts = torch.bincount(sample_classes, minlength=10)  # (10,)
cfg.log_metric("gan_classes_covered", int((class_counts > 0).sum()))
cfg.log_metric("gan_rarest_class_fraction", class_counts.min().item() / len(sample_classes))
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(range(10), class_counts.tolist())
ax.axhline(len(sample_classes) / 10, color="0.5", linestyle="--", label="uniform")
ax.set_xticks(range(10))
ax.set(xlabel="digit predicted by the judge", ylabel="generated samples", title="which digits the GAN draws")
ax.legend()
plt.show()
fractions = class_counts / class_counts.sum()
print(f"rarest digit {fractions.argmin().item()}: {fractions.min():.1%} of the samples; "
      f"most common digit {fractions.argmax().item()}: {fractions.max():.1%} (uniform: 10%)")

# %%
# NBVAL_CHECK_OUTPUT
print("all 10 digits appear among 1,000 samples:", bool((class_counts > 0).all()))
print("trained-GAN FID is under a quarter of the untrained generator's:", fid_trained < fid_untrained / 4)

# %% [markdown]
# **Class imbalance.** The GAN draws every digit, but far from equally often (the printed shares; in our
# runs over seeds 0, 1 and 2 the rarest digit got 2 % to 4 % of the samples and the most common 16 % to
# 21 %, while the FID was 87 to 118 against about 1,000 for the untrained generators). Nothing in
# the GAN loss counts classes: the generator is rewarded for any sample the discriminator accepts, so it
# drifts towards digits that are easy to draw convincingly and under-produces the others. This is a mild
# form of **mode collapse**; FID notices it only in part, because it compares a single Gaussian of features
# rather than class frequencies. A class-conditional GAN, minibatch statistics in the discriminator, or
# simply longer training with a balanced judge reduce it.
#
# **Questions**
#
# 1. Train the GAN with the saturating loss for the full budget. Predict the class histogram and the FID,
#    then check.
# 2. Halve the discriminator's learning rate. What happens to $D(x)$ and $D(G(z))$ in the training curves?
# 3. Why does the FID of 1,000 real training digits against the test set not come out as 0?

# %% [markdown]
# ## Adversarial Attacks
#
# ![FGSM on a small CNN: adversarial digits and accuracy against eps](../assets/4_attacks.png)
#
# A classifier that is right on almost every test digit can be wrong on nearly all of them after changes
# too small for a person to care about. The threat model: the attacker knows the model (white box) and
# may move every pixel by at most $\epsilon$, $\lVert x_{\text{adv}} - x\rVert_\infty \le \epsilon$, staying
# in the image range $[0, 1]$. Normalisation, if any, belongs inside the model, so that $\epsilon$ is measured
# in pixel units.
#
# **FGSM** (Goodfellow et al., 2015) linearises the loss and takes the best step in the $L_\infty$ ball:
#
# $$x_{\text{adv}} = \operatorname{clip}_{[0,1]}\big(x + \epsilon
#   \operatorname{sign}(\nabla_x \mathrm{CE}(f(x), y))\big).$$
#
# **PGD** (Madry et al., 2018) repeats smaller steps, projecting back after each one,
#
# $$x^{t+1} = \operatorname{clip}_{[0,1]}\big(\Pi_{B_\epsilon(x)}(x^t + \alpha
#   \operatorname{sign}\nabla_x \mathrm{CE})\big),$$
#
# from a random start in the ball. A targeted variant descends the loss of a chosen label instead.

# %%
vclib.show_source(adversarial.fgsm)
vclib.show_source(adversarial.pgd_step)

# %%
# NBVAL_CHECK_OUTPUT
images, labels = test_set.images[:64].to(cfg.device), test_set.labels[:64].to(cfg.device)
cnn.train()
x_fgsm = adversarial.fgsm(cnn, images, labels, eps=0.1)
x_pgd = adversarial.pgd(cnn, images, labels, eps=0.1, alpha=0.02, steps=5)
x_one_step = adversarial.pgd(cnn, images, labels, eps=0.1, alpha=0.1, steps=1, random_start=False)
for name, attacked in [("FGSM", x_fgsm), ("PGD", x_pgd)]:
    in_ball = (attacked - images).abs().max().item() <= 0.1 + 1e-6
    in_range = 0 <= attacked.min().item() and attacked.max().item() <= 1
    print(f"{name} stays in the eps-ball and in [0, 1]:", in_ball and in_range)
print("PGD with one full step and no random start is FGSM:", torch.allclose(x_one_step, x_fgsm))
print("the model's train mode was restored:", cnn.training)
try:
    adversarial.fgsm(cnn, images * 255, labels, eps=0.1)
except ValueError as error:
    print("inputs outside [0, 1] raise ValueError:", "images must lie in [0.0, 1.0]" in str(error))

# %% [markdown]
# **Accuracy against eps** on a fixed subset of test digits. PGD takes 10 steps of $\alpha = 2.5\,\epsilon/10$
# (Madry et al.'s rule), each from a seeded random start.

# %%
cnn.eval()
attack_count = cfg.pick(quick=300, full=1000)
every = len(test_set) // attack_count  # an evenly spread, fixed subset
attack_set = TensorDataset(test_set.images[::every][:attack_count], test_set.labels[::every][:attack_count])
attack_loader = make_loader(attack_set, batch_size=100)
pgd_steps = cfg.pick(quick=10, full=40)
eps_grid = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
fgsm_attacks = {eps: partial(adversarial.fgsm, eps=eps) for eps in eps_grid}
pgd_attacks = {eps: partial(adversarial.pgd, eps=eps, alpha=2.5 * eps / pgd_steps, steps=pgd_steps,
                            generator=torch.Generator().manual_seed(0)) for eps in eps_grid}
standard_curves = {
    "FGSM": [adversarial.accuracy_under_attack(cnn, attack_loader, fgsm_attacks[eps]) for eps in eps_grid],
    "PGD": [adversarial.accuracy_under_attack(cnn, attack_loader, pgd_attacks[eps]) for eps in eps_grid],
}
at_025 = eps_grid.index(0.25)
clean_accuracy = cfg.log_metric("attack_clean_accuracy", standard_curves["FGSM"][0])
fgsm_accuracy = cfg.log_metric("fgsm_accuracy_eps0.25", standard_curves["FGSM"][at_025])
pgd_accuracy = cfg.log_metric("pgd_accuracy_eps0.25", standard_curves["PGD"][at_025])
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, accuracies in standard_curves.items():
    ax.plot(eps_grid, accuracies, "o-", label=name)
ax.set(xlabel="eps (L-infinity, pixel units)", ylabel="accuracy", title="standard CNN under attack", ylim=(0, 1))
ax.legend()
plt.show()
print(f"standard CNN: clean {clean_accuracy:.3f}; at eps = 0.25, "
      f"FGSM {fgsm_accuracy:.3f} and PGD {pgd_accuracy:.3f}")

# %%
# NBVAL_CHECK_OUTPUT
print("FGSM at eps = 0.25 brings the CNN below 20% accuracy:", fgsm_accuracy < 0.20)
print("PGD at eps = 0.25 brings it below 5%:", pgd_accuracy < 0.05)
print("PGD accuracy is at most FGSM's + 0.02 at every eps (PGD at least as strong, up to 2 points of noise):",
      all(p <= f + 0.02 for p, f in zip(standard_curves["PGD"], standard_curves["FGSM"], strict=True)))

# %% [markdown]
# What the attack does: the clean digit, the perturbation magnified to the full grey range, and the
# adversarial digit with the CNN's prediction (red when wrong).

# %%
showcase_images, showcase_labels = one_per_class[:8], torch.arange(8)
attack_views.draw_attack_grid(cnn, showcase_images, showcase_labels, eps=0.25, attack="PGD-10")
plt.show()

# %%
attack_views.attack_explorer(cnn, showcase_images, showcase_labels)

# %% [markdown]
# ### Adversarial training
#
# Madry et al. turn the attack into a training procedure: minimise the loss on the worst case the attack
# finds,
#
# $$\min_\theta \mathbb E_{(x,y)}\big[\max_{\lVert\delta\rVert_\infty \le \epsilon}
#   \mathrm{CE}(f_\theta(x + \delta), y)\big].$$
#
# We fine-tune a copy of the standard CNN on PGD examples at $\epsilon = 0.25$ (with few PGD steps, to stay
# quick) and evaluate both models with the same 10-step PGD as above.

# %%
vclib.show_source(adversarial.adversarial_step)

# %%
TRAIN_EPS = 0.25
robust_cnn = copy.deepcopy(cnn)
training_steps = cfg.pick(quick=3, full=10)
training_attack = partial(adversarial.pgd, eps=TRAIN_EPS, alpha=2.5 * TRAIN_EPS / training_steps,
                          steps=training_steps)
robust_history = adversarial.adversarial_fit(robust_cnn, classifier_loader, training_attack,
                                             epochs=cfg.pick(quick=1, full=10),
                                             optimizer=torch.optim.Adam(robust_cnn.parameters(), lr=1e-3))
robust_curve = [adversarial.accuracy_under_attack(robust_cnn, attack_loader, pgd_attacks[eps])
                for eps in eps_grid]
robust_clean = cfg.log_metric("robust_clean_accuracy", robust_curve[0])
robust_pgd = cfg.log_metric("robust_pgd_accuracy_eps0.25", robust_curve[at_025])
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(eps_grid, standard_curves["PGD"], "o-", label="standard training")
ax.plot(eps_grid, robust_curve, "o-", label=f"PGD adversarial training (eps = {TRAIN_EPS})")
ax.set(xlabel="eps", ylabel="accuracy under PGD", title="standard against adversarial training", ylim=(0, 1))
ax.legend(loc="lower left")
plt.show()
print(f"adversarially trained CNN: clean {robust_clean:.3f}, PGD at eps = 0.25 {robust_pgd:.3f} "
      f"(standard: clean {clean_accuracy:.3f}, PGD {pgd_accuracy:.3f})")

# %%
# NBVAL_CHECK_OUTPUT
print("adversarial training keeps clearly higher PGD accuracy at eps = 0.25 (+20 points or more):",
      robust_pgd >= pgd_accuracy + 0.20)
print("and still classifies most clean digits (>= 80%):", robust_clean >= 0.80)

# %% [markdown]
# **Questions**
#
# 1. Train adversarially at $\epsilon = 0.1$ and evaluate at 0.25. Predict the curve, then check.
# 2. Evaluate the robust CNN with PGD of 40 steps instead of 10. If its accuracy drops a lot, what does that
#    say about the 10-step number?
# 3. Why must the normalisation of the inputs be inside the model for $\epsilon$ to mean the same thing for
#    every model?

# %% [markdown]
# ## Summary
#
# The numbers this notebook logged (also collected into `build/report.json` by `python -m vclib run`):

# %%
for name, value in cfg.metrics.items():
    print(f"{name:<34} {value:10.4g}")
