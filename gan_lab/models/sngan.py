"""SN-GAN (Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for Generative Adversarial
Networks"): every weight of D divided by its largest singular value, with the hinge loss.

Each D layer is wrapped in flax.nnx.SpectralNorm: before the layer runs, its kernel, reshaped to a
(fan_in, fan_out) matrix as in the paper (a 4x4 conv's (4 * 4 * in, out)), is divided by sigma, the
estimate of its largest singular value from one round of power iteration started at the stored
vector u. u (and sigma) are nnx.BatchStat state, so they live in D's `rest` with no gradient, are
updated by every training-mode pass through D (three per step here: real, fake, and G's pass, as a
PyTorch torch.nn.utils.spectral_norm D would in the same loop) and are saved with the checkpoint. The
gradient flows through W / sigma(W) with u held fixed, as in the paper. D never runs in eval mode in
this lab (sampling uses G only), so SpectralNorm's default, updating u, is the one used.

Defaults, and why:
- D: nets.Discriminator without BatchNorm (the paper's D has none: SN alone bounds its Lipschitz
  constant), every layer spectrally normalised; the lab's infoGAN MNIST G (with its BatchNorm, as
  the paper's G). The paper's own nets are a CIFAR-10 "standard CNN" and ResNets; this keeps the
  lab's MNIST backbone so SN-GAN compares with dcgan/wgan on equal networks.
- The non-saturating loss (the paper's "standard" adversarial loss, G maximising log D(G(z)); dcgan's),
  not the hinge loss (eq. 17, the paper's best on CIFAR-10 and STL-10), which is `--loss hinge`;
  `--loss` may choose any of losses.GAN_LOSSES. At this lab's budget the hinge loss was behind (below).
- Adam 2e-4 with b1 0 and b2 0.9 (WGAN-GP's betas), one D update per G update. The paper's setting C
  (Table 1: Adam 2e-4, b1 0.5, b2 0.999, the lab's defaults) with its hinge loss is `--preset paper`.
  With it the learning curves (experiments/learning_curves.py: width 0.5, seed 0, 5,000 samples) fell
  behind dcgan after the first epoch: FD 125.5 on MNIST and 170.0 on Fashion-MNIST after 4 epochs,
  2.7x and 5.1x dcgan's (experiments/results/learning_curves.md as of commit d6e41f7).
  Probes at the same budget (`gan_lab train sngan --dataset D --width 0.5 --epochs 4` with the flags
  below, then `gan_lab eval RUN --n 5000`), FD on MNIST / Fashion-MNIST (dcgan's curves: 46.2 / 33.3):
  hinge, setting B (Adam 1e-4, b1 0.5, b2 0.999): - / 158.8; hinge, b1 0, b2 0.9: 70.0 / 73.7 (the curves of
  commit ced131c, 2.2x dcgan's on Fashion-MNIST); `--loss bce` with b1 0, b2 0.9 (today's defaults):
  63.0 / 52.5, 1.4x and 1.6x dcgan's, every class on both.
  z = 62 (the infoGAN G) instead of the paper's 128.
- One power iteration per pass (the paper's choice: u changes little between updates, so one round
  per pass keeps sigma accurate).
The TF/PyTorch collections have no SN-GAN.
"""

from __future__ import annotations

import dataclasses

import optax
from flax import nnx

from gan_lab import losses, nets
from gan_lab.models.adversarial import GANParts, build_model
from gan_lab.models.gan import logit_losses
from gan_lab.registry import register

D_LAYERS = ("conv1", "conv2", "fc1", "fc2")  # every weight of nets.Discriminator


def spectral_norm_discriminator(width: float, rngs: nnx.Rngs) -> nets.Discriminator:
    """nets.Discriminator(norm="none") with each layer wrapped in nnx.SpectralNorm: the same
    forward pass and initial weights, every weight normalised. (A wrapped layer is called as the
    plain one was, so the Discriminator's code is reused unchanged.)"""
    discriminator = nets.Discriminator(1, width, rngs, norm="none")
    for name in D_LAYERS:
        setattr(discriminator, name, nnx.SpectralNorm(getattr(discriminator, name), rngs=rngs))
    return discriminator


def sngan_parts(cfg) -> GANParts:
    tx = optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2)
    d_loss, g_loss = logit_losses(cfg.loss)
    return GANParts(
        make_g=lambda rngs: nets.Generator(cfg.z_dim, cfg.width, rngs=rngs),
        make_d=lambda rngs: spectral_norm_discriminator(cfg.width, rngs),
        latent_dim=cfg.z_dim, d_loss=d_loss, g_loss=g_loss, g_tx=tx, d_tx=tx,
    )


# Runs saved before sngan declared --loss trained with the hinge loss, its default then.
HINGE_BEFORE = dataclasses.replace(losses.LOSS, absent="hinge")


@register("sngan", "SN-GAN: spectral normalisation on every D layer (no BN), non-saturating loss, Adam 2e-4 "
          "b1=0 b2=0.9", settings={"width": nets.WIDTH, "loss": HINGE_BEFORE}, loss="bce", b1=0.0, b2=0.9,
          presets={"paper": {"loss": "hinge", "b1": 0.5, "b2": 0.999}})
def build(cfg):
    return build_model(sngan_parts(cfg))
