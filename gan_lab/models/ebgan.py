"""EBGAN (Zhao, Mathieu & LeCun 2017, "Energy-based Generative Adversarial Network"), with the
pull-away term (EBGAN-PT).

D is an autoencoder and its energy is the reconstruction error, D(x) = mean_pixels (Dec(Enc(x)) - x)^2:
  D's loss  D(x) + [m - D(G(z))]^+          (eq. 1, per sample, averaged over the batch)
  G's loss  D(G(z)) + pt_weight * PT(S)      (eq. 2 plus the pull-away term, sec. 2.4)
  PT(S) = 1 / (N (N - 1)) sum_{i != j} cos^2(S_i, S_j), S the encoder's embeddings of G's batch.
Low energy on the data, at least m on G's samples; PT pushes G's samples apart in D's embedding
space, against mode collapse. Gradients reach G through the reconstruction *and* through the
target G(z) in (Dec(Enc(G(z))) - G(z))^2, as the energy's definition implies.

Defaults, and why:
- pt_weight 0.1: the paper's weight of the pull-away term (its EBGAN-PT runs), and the collections'.
- margin 1: the collections' value for this energy (a per-pixel mean of squares of [-1, 1] images,
  so energies are O(1)); the TF collection raises it to max(1, batch / 64) because its energy is a
  batch-level norm that grows with the batch (below). The paper picks m by grid search per dataset
  and gives no single MNIST value to copy here (not checked against its appendix in this change).
- The infoGAN MNIST G (nets.Generator), Adam 2e-4 b1 0.5, batch 64, z = 62: the collections'.
- G's learning rate 5x D's (--g-lr-scale 5, the TF collection's; `--preset paper` sets one rate, as
  the paper and the PyTorch collection). Measured at the study's CPU budget (1 epoch, width 0.5,
  seed 0; experiments/defaults_search.py, experiments/results/defaults_search.md): with one rate G
  draws a single grey image on both datasets (FD 1606.8 MNIST, 961.7 Fashion-MNIST: 6.5x and 6.2x
  dcgan's); at 5x it draws every class (FD 422.0 and 418.4: 1.7x and 2.7x dcgan's). A lower margin
  (0.3), or 5x with margin 2, fell back to the single image on MNIST: EBGAN's start is fragile.
  After 4 epochs (experiments/learning_curves.py, width 0.5) it is ahead of dcgan on MNIST (FD 35.7
  against 46.2) and 4.0x dcgan's on Fashion-MNIST (132.2 against 33.3), every class on both.
  Probes of that shortfall at the same budget (`gan_lab train ebgan --dataset D --width 0.5 --epochs 4`
  with the flags given, then `gan_lab eval RUN --n 5000`; seed 0): its Fashion-MNIST recall is near 0, so
  a stronger pull-away term was tried first. --pt-weight 1: Fashion-MNIST 94.7 (recall 0.13), but MNIST
  falls back to one class (1616.8); --pt-weight 3: Fashion-MNIST 148.5; --g-lr-scale 2: one class on
  Fashion-MNIST (977.5); --pt-weight 0.3: Fashion-MNIST 96.4 (every class, recall 0.15), and again one
  class on MNIST (1626.9); --margin 2: one class on Fashion-MNIST (949.2). Any stronger pull-away term
  that helps Fashion-MNIST collapses MNIST's start. (All of this with the BatchNorm D of then: below.)
- D (AutoencoderD): conv 64 (4x4 s2) - ReLU - FC 32 (the embedding: no norm, no ReLU, since PT
  reads it) - FC 64*14*14 - LayerNorm - ReLU - deconv 1 (4x4 s2): the collections' "(64)4c2s-FC32-
  FC64*14*14_BR-(1)4dc2s" with LayerNorm where they have BatchNorm (`--d-norm layer`; `--d-norm batch`
  is theirs, and `--preset paper` sets it with the one learning rate). No output activation, as in the
  PyTorch collection. Why not BatchNorm: with it, one seed in three never started. In the CI learning
  check's measurement at half width (`python experiments/learning_check.py --budget wide`: MNIST, batch
  64, FD of 1,000 samples; experiments/results/learning_check-wide.json at commit eb12bae) seeds 0 and 1
  learned and seed 2 drew one grey image through 4 epochs (FD 1628 at 1874 steps, 1709 at 3748, against
  168 and 263, then 46 and 123, for seeds 0 and 1). Its log shows the trap: G's batch collapses to one
  image at the start, a batch of identical images leaves BatchNorm's normalised features at 0, so D
  reconstructs every such image as the same constant (BatchNorm's shift through the deconvolution);
  G, at 5x D's rate, follows that constant, the fakes' energy stays near 0 (0.002 against the margin
  of 1), and the pull-away term, whose gradient vanishes when every embedding is the same, cannot part
  them. LayerNorm normalises each image over its own features, so D's reconstruction depends on the
  image and D can raise a collapsed fake's energy. Seeds 0/1/2 after 1874 steps (`gan_lab train ebgan
  --dataset mnist --width 0.5 --seed S --steps 1874 --d-norm N`, then `gan_lab eval RUN --n 1000`):
  layer 217.5/157.5/107.1, every digit; none 817.5/-/927.0, 9 and 6 digits (slower; seed 1 not run).
  With LayerNorm ebgan also learns at the test suite's tiny shape (experiments/results/learning_check.md:
  at 512 steps, where with BatchNorm no seed moved from the untrained FD in 1024), and after 4 epochs
  (learning curves, width 0.5, seed 0; experiments/results/learning_curves.md) its FD is 49.7 on MNIST
  and 79.9 on Fashion-MNIST (BatchNorm: 46.1 and 153.8; dcgan: 55.6 and 44.1), every class on both:
  within issue 26's bar (2x dcgan's) on both datasets, where BatchNorm was 3.5x on Fashion-MNIST.

Where the collections differ (and this module follows the paper):
- The hinge: both apply [m - .]^+ to the *batch mean* energy of the fakes, so one very bad fake
  can switch off D's push on all the others; the paper's loss is per sample.
- PT: the TF collection sums cos (not cos^2) and the PyTorch one divides the embeddings by the
  L1 norm of the whole matrix instead of each row's L2 norm, so its "cosines" are not cosines.
- Energy: TF's is ||Dec(Enc(x)) - x||_F / batch over the whole batch (a norm, not a per-sample
  mean of squares); PyTorch's is nn.MSELoss, the per-pixel mean as here.
- PyTorch's G loss detaches the target G(z) in the reconstruction error, so G gets no gradient
  through it; the TF one and this module keep it.
- z: U(0, 1) (PyTorch), U(-1, 1) (TF); here N(0, I) like the lab's other GANs. TF trains G with
  5x D's learning rate (so does this module, by default); PyTorch uses one rate.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from gan_lab import nets
from gan_lab.config import Setting, around, one_of
from gan_lab.models.adversarial import G_LR_SCALE, GANParts, adam_pair, build_model
from gan_lab.registry import register

MARGIN = Setting(1.0, "EBGAN: energy above which a fake no longer raises D's loss (the hinge's m)", positive=True,
                 search=around(3))
PT_WEIGHT = Setting(0.1, "EBGAN: weight of the pull-away term in G's loss (0: plain EBGAN)", minimum=0,
                    search=around(3))

# One help for EBGAN's and BEGAN's --d-norm (the same flag, each model its own default and choices).
D_NORM_HELP = ("the autoencoder D decoder's normalisation: layer (LayerNorm, each image over its own features; EBGAN), "
               "batch (BatchNorm, the collections' EBGAN D and TF's BEGAN D) or none (BEGAN's paper's D)")
D_NORM = Setting("layer", D_NORM_HELP, choices=("batch", "layer", "none"),
                 search=one_of("batch", "layer", "none"), absent="batch")


class Reconstruction(NamedTuple):
    """An autoencoder D's outputs: its reconstruction of the images and their embeddings."""

    images: jax.Array  # (B, 28, 28, 1)
    embedding: jax.Array  # (B, 32 * width)


class AutoencoderD(nnx.Module):
    """x (B, 28, 28, 1) -> conv 64-ReLU -> FC 32 (embedding) -> FC 64*14*14[-norm]-ReLU -> deconv 1.

    The collections' EBGAN/BEGAN D. norm: the decoder's normalisation, "batch" (theirs), "layer" or "none"
    (BEGAN's D).
    """

    def __init__(self, width: float, rngs: nnx.Rngs, norm: str = "batch"):
        c14, code = nets.channels(64, width), nets.channels(32, width)
        self.c14 = c14
        self.conv = nets.conv_down(1, c14, rngs)
        self.encode = nets.dense(14 * 14 * c14, code, rngs)
        self.decode = nets.dense(code, 14 * 14 * c14, rngs)
        self.bn = {"batch": lambda: nets.batch_norm_layer(14 * 14 * c14, rngs),
                   "layer": lambda: nnx.LayerNorm(14 * 14 * c14, epsilon=1e-5, rngs=rngs),
                   "none": lambda: None}[norm]()
        self.deconv = nets.conv_up(c14, 1, rngs)

    def __call__(self, x, train: bool) -> Reconstruction:
        h = jax.nn.relu(self.conv(x))
        embedding = self.encode(h.reshape(h.shape[0], -1))
        h = jax.nn.relu(nets.normalise_per_group(self.bn, self.decode(embedding), 1, not train))
        return Reconstruction(self.deconv(h.reshape(-1, 14, 14, self.c14)), embedding)


def energy(images, reconstruction: Reconstruction):
    """Per-image mean squared reconstruction error: (B,)."""
    return jnp.mean((reconstruction.images - images) ** 2, axis=(1, 2, 3))


def pull_away(embeddings):
    """Mean of cos^2 between the embeddings of two different images of the batch: (B, d) -> scalar."""
    squared_norms = jnp.sum(embeddings**2, axis=1, keepdims=True)
    unit = embeddings * jax.lax.rsqrt(jnp.maximum(squared_norms, 1e-12))  # an all-zero row stays zero
    cosines = unit @ unit.T
    n = embeddings.shape[0]
    off_diagonal = ~jnp.eye(n, dtype=bool)
    return jnp.sum(jnp.where(off_diagonal, cosines**2, 0.0)) / (n * (n - 1))


def ebgan_losses(margin: float, pt_weight: float):
    """(d_loss, g_loss) in GANParts' signature."""

    def d_loss(real_out, fake_out, batch, extra):
        real_energy, fake_energy = energy(batch.real, real_out), energy(batch.fake, fake_out)
        loss = jnp.mean(real_energy) + jnp.mean(jax.nn.relu(margin - fake_energy))
        return loss, {"d_real": jnp.mean(real_energy), "d_fake": jnp.mean(fake_energy)}, extra

    def g_loss(fake_out, batch, extra):
        pt = pull_away(fake_out.embedding)
        return jnp.mean(energy(batch.fake, fake_out)) + pt_weight * pt, {"pull_away": pt}

    return d_loss, g_loss


def ebgan_parts(cfg) -> GANParts:
    g_tx, d_tx = adam_pair(cfg)
    d_loss, g_loss = ebgan_losses(cfg.margin, cfg.pt_weight)
    return GANParts(
        make_g=lambda rngs: nets.Generator(cfg.z_dim, cfg.width, rngs=rngs),
        make_d=lambda rngs: AutoencoderD(cfg.width, rngs=rngs, norm=cfg.d_norm),
        latent_dim=cfg.z_dim, d_loss=d_loss, g_loss=g_loss, g_tx=g_tx, d_tx=d_tx,
    )


@register("ebgan", "EBGAN-PT: autoencoder D (LayerNorm decoder), energy = MSE reconstruction, margin hinge, pull-away term",
          settings={"width": nets.WIDTH, "margin": MARGIN, "pt_weight": PT_WEIGHT,
                    "g_lr_scale": G_LR_SCALE, "d_norm": D_NORM},
          presets={"paper": {"g_lr_scale": 1.0, "d_norm": "batch"}}, g_lr_scale=5.0)
def build(cfg):
    return build_model(ebgan_parts(cfg))
