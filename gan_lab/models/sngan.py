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
- Hinge loss (the paper's best, eq. 17), `--loss` may choose another of losses.GAN_LOSSES.
- Adam 2e-4, b1 0.5, b2 0.999, one D update per G update: the paper's setting C (Table 1) for the
  DCGAN-style nets, which equals the lab's defaults. z = 62 (the infoGAN G) instead of the paper's 128.
- One power iteration per pass (the paper's choice: u changes little between updates, so one round
  per pass keeps sigma accurate).
The TF/PyTorch collections have no SN-GAN.
"""

from __future__ import annotations

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


@register("sngan", "SN-GAN: spectral normalisation on every D layer (no BN), hinge loss, Adam 2e-4 b1=0.5",
          settings={"width": nets.WIDTH, "loss": losses.LOSS}, loss="hinge",
          shortfall="after 4 epochs at width 0.5 its FD is 2.7x dcgan's on MNIST (125.5) and 5.1x on Fashion-MNIST "
                    "(170.0), every class drawn (learning curves; docs/models.md#defaults-that-learn)")
def build(cfg):
    return build_model(sngan_parts(cfg))
