"""Project 4: generative models. A convolutional (beta-)VAE, a DCGAN and their evaluation."""

from vclib.generative.dcgan import Discriminator, Generator
from vclib.generative.fid import ClassifierFeatures, classifier_fid, extract_features, frechet_distance
from vclib.generative.gan import discriminator_loss, generator_loss
from vclib.generative.gan_training import GANHistory, gan_step, generate, train_gan
from vclib.generative.vae import BetaVAELoss, ConvVAE, VAEOutput, beta_vae_loss, beta_vae_objective, kl_term
from vclib.generative.vae_metrics import bernoulli_negative_elbo, beta_vae_terms, negative_elbo

__all__ = [
    "BetaVAELoss", "ClassifierFeatures", "ConvVAE", "Discriminator", "GANHistory", "Generator", "VAEOutput",
    "bernoulli_negative_elbo", "beta_vae_loss", "beta_vae_objective", "beta_vae_terms", "classifier_fid",
    "discriminator_loss", "extract_features", "frechet_distance", "gan_step", "generate", "generator_loss", "kl_term",
    "negative_elbo", "train_gan",
]
