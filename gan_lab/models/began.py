"""BEGAN (Berthelot, Schumm & Metz 2017, "BEGAN: Boundary Equilibrium Generative Adversarial Networks").

D is an autoencoder; L(v) its reconstruction error (the paper's: mean |v - D(v)| over the batch's pixels,
L1, eta = 1; here by default the TF collection's L2 norm of the batch's errors over its size):
  D's loss  L(x) - k_t L(G(z))
  G's loss  L(G(z))
  k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),  k_0 = 0
k is proportional control that keeps E[L(G(z))] = gamma E[L(x)]: gamma (the diversity ratio) trades
image diversity (high) for quality (low). It lives in GANState.extra, so it is checkpointed and a
resumed run continues with it. The convergence measure M = L(x) + |gamma L(x) - L(G(z))| and k are
logged as the metrics `convergence` and `k`.

Defaults, and why (measured at the study's CPU budget, 1 epoch = 60,000 images, width 0.5, seed 0:
experiments/defaults_search.py, experiments/results/defaults_search.md; FD, x dcgan's):
- L is the TF collection's ||v - D(v)|| over the batch / batch size (`--reconstruction l2-norm`), with
  lambda_k 0.002; `--preset paper` gives the paper's L1 mean, lambda_k 0.001, gamma 0.5 and Adam 1e-4.
  The paper's settings: FD 1502.8 MNIST (6.0x, 2 classes), 775.8 Fashion-MNIST (5.0x); gamma 0.75 and
  Adam 2e-4 alone: 1537.8 and 636.9; with G at 5x: 1539.3 and 703.8. With lambda_k 0.001, k rises
  ~1.5e-4 a step and is still 0.13 at the epoch's end, so D hardly pushes back on G's images, which it
  reconstructs 5x better than the real ones; G settles on one smooth image. lambda_k 0.01 (the default
  before): 970.6 (7 of 10 classes) and 319.4 (2.1x, every class); 0.05: 1258.6 and 433.7; gamma 1 with
  0.01: 879.5 and 327.1. TF's L is the pixels' root-mean-square error times sqrt(784 / batch), 3.5x
  at batch 64, and larger than their mean absolute error, so at one lambda_k its k moves several times
  faster (and the pace depends on the batch size); with it, lambda_k 0.002: 742.8 (every digit, 3.0x)
  and 286.7 (1.9x, 9 of 10 classes); lambda_k 0.01: 834.3 and 304.2 (9 classes); gamma 1: 787.1 and
  477.5. Each of TF's L's three settings drew more digits and a better MNIST FD than the L1 ones, and
  each lost one Fashion-MNIST class at one epoch; 742.8 is the lowest MNIST FD of the search, and 286.7
  the lowest Fashion-MNIST FD of TF's L (L1 with G at 5x: 282.6, but 1026.8 on MNIST), so they are the
  defaults. Neither L reaches issue 26's bar (2x dcgan's FD) on MNIST after one epoch. After 4 epochs
  (experiments/learning_curves.py, width 0.5, 5,000 samples) these defaults reach 383.1 with every digit
  and 191.4, every class: still 8.3x and 5.7x dcgan's (46.2, 33.3).
- gamma 1 (the PyTorch collection's; 0.75, the TF one's, before), chosen after 4 epochs, the learning
  curves' budget: `gan_lab train began --dataset D --width 0.5 --epochs 4 --gamma G --seed 0`, then
  `gan_lab eval RUN --n 5000` (the curves' last point, bit for bit). At gamma 0.75 G draws sharp digits but
  mostly 1s, 7s and 9s (the curves' 383.1); gamma steers how much worse D must reconstruct G's images than
  the real ones, and so how diverse they are. MNIST / Fashion-MNIST FD: gamma 0.75: 383.1 / 191.4; gamma 1:
  197.9 / 186.9, every class on both (recall 0.46 / 0.07: the garments are recognisable, with a
  checkerboard texture); gamma 1.5: 699.4 with 9 digits / 476.6 with 8 classes. With gamma 1, G at 5x D's
  rate (--g-lr-scale 5): 175.9 / 409.1 with 9 classes; lambda_k 0.01: 438.2 on MNIST. At one epoch gamma 1 had
  been worse (787.1 / 477.5, above), so one epoch chose 0.75. Still 3.6x and 4.2x dcgan's FD after 4
  epochs (against dcgan's curves drawn again this session: 55.6 / 44.1; the old page's 46.2 / 33.3 were
  another run of the same code and settings: docs/models.md), the shortfall `gan_lab list` notes. A larger embedding in D (64 numbers instead of 16 at width
  0.5, gamma 0.75) drew sharper digits of fewer classes and a worse FD: diversity, not sharpness, is what
  began lacks (a one-off probe through a patched AutoencoderD, not a flag, so only qualitative here).
- G at 5x D's rate (TF's): 1026.8 and 282.6 with L1 and lambda_k 0.01. BatchNorm in D (TF's), in
  rounds 4-6 with and without G at 5x and TF's L: one class on each dataset every time (FD 1602.9 to
  1606.5 and 916.5 to 959.6).
- gamma 1: the PyTorch collection's (the TF collection's is 0.75); the paper shows gamma in
  {0.3, 0.5, 0.7} and gives no single default.
- Adam 2e-4, b1 0.5: both collections' (the paper starts at 1e-4 and halves it when M stalls, a
  schedule not reproduced here; it does not give its betas).
- z ~ U(-1, 1): the paper's (and TF's) prior. z = 62, the infoGAN MNIST G: the collections'.
- D: models/ebgan.py's AutoencoderD without BatchNorm (the paper's D has none). BatchNorm in its decoder, which
  made wgan's critic learn (models/wgan.py), does the opposite here (--d-norm batch, with L1 and
  lambda_k 0.01, defaults_search.py's round 4): one class on each dataset, FD 1603.4 and 959.6. LayerNorm,
  which freed ebgan's start (models/ebgan.py), moves began little: after 4 epochs at width 0.5, seed 0
  (`gan_lab train began --dataset D --width 0.5 --epochs 4 --seed 0 --d-norm layer`, then `gan_lab eval RUN
  --n 5000`), 171.2 on MNIST and 155.5 on Fashion-MNIST against its curves' 191.9 and 141.6: no default
  change. The paper's own D (3x3 ELU conv stacks) is bigger than MNIST needs; this is the collections'
  autoencoder.

Where the collections differ (and this module follows the paper, except for L):
- TF's L, ||D(v) - v||_F / batch (an L2 norm over the whole batch), is the default here (above); the
  paper's L1 mean is `--reconstruction l1`. TF also trains G at 5x D's rate and does not clip k.
- Both update k after the G update with losses measured again (TF: both after; PyTorch: L(x) before
  D's update, L(G(z)) after it). Here k is updated from the L(x) and L(G(z)) of D's own loss, before
  D's update: the plain step's d_loss is the one place that returns the variant's state, and this is
  the paper's k_{t+1} from the step's measured losses, one D update earlier.
- PyTorch's D has no nonlinearity between its two FC layers; TF's has BN-ReLU after both; here
  ReLU after the decoder's FC only (EBGAN's layout, no BN).
- PyTorch halves both learning rates (floor 2e-5) when an epoch's mean M does not improve.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gan_lab import nets
from gan_lab.config import Setting, around, one_of
from gan_lab.models.adversarial import G_LR_SCALE, GANParts, adam_pair, build_model
from gan_lab.models.ebgan import D_NORM_HELP, AutoencoderD
from gan_lab.registry import register

GAMMA = Setting(0.5, "BEGAN: diversity ratio gamma = E[L(G(z))] / E[L(x)] that k steers to", minimum=0,
                search=around(1.5))
LAMBDA_K = Setting(0.001, "BEGAN: proportional gain lambda_k of k's update", minimum=0,
                   search=around(10))


def reconstruction_error(images, reconstruction, kind: str = "l1"):
    """L(v): "l1", the paper's mean |v - D(v)| over the batch and its pixels; "l2-norm", the TF
    collection's ||v - D(v)|| over the whole batch (its Frobenius norm) divided by the batch size."""
    difference = reconstruction.images - images
    if kind == "l2-norm":
        # + a tiny constant: the norm's gradient is undefined at an exact reconstruction
        return jnp.sqrt(jnp.sum(jnp.square(difference)) + 1e-12) / images.shape[0]
    return jnp.mean(jnp.abs(difference))


def began_losses(gamma: float, lambda_k: float, kind: str = "l1"):
    """(d_loss, g_loss) in GANParts' signature; `extra` is k, a float32 scalar; `kind`: reconstruction_error's."""

    def d_loss(real_out, fake_out, batch, k):
        real_error = reconstruction_error(batch.real, real_out, kind)
        fake_error = reconstruction_error(batch.fake, fake_out, kind)
        balance = jax.lax.stop_gradient(gamma * real_error - fake_error)  # k and M are measurements, not losses
        new_k = jnp.clip(k + lambda_k * balance, 0.0, 1.0)
        metrics = {"d_real": real_error, "d_fake": fake_error, "k": new_k,
                   "convergence": jax.lax.stop_gradient(real_error) + jnp.abs(balance)}
        return real_error - k * fake_error, metrics, new_k

    def g_loss(fake_out, batch, k):
        return reconstruction_error(batch.fake, fake_out, kind), {}

    return d_loss, g_loss


def uniform_latent(latent_dim: int):
    def sample_latent(key, n):
        return jax.random.uniform(key, (n, latent_dim), minval=-1.0, maxval=1.0)
    return sample_latent


D_NORM = Setting("none", D_NORM_HELP, choices=("none", "batch", "layer"),
                 search=one_of("none", "batch"))


RECONSTRUCTION = Setting("l1", "BEGAN: the reconstruction error L: l1 (the paper's mean |v - D(v)|) or l2-norm "
                         "(the TF collection's ||v - D(v)|| over the batch / batch size)", choices=("l1", "l2-norm"),
                         search=one_of("l1", "l2-norm"), absent="l1")  # runs saved before it computed l1


def began_parts(cfg) -> GANParts:
    g_tx, d_tx = adam_pair(cfg)
    d_loss, g_loss = began_losses(cfg.gamma, cfg.lambda_k, cfg.reconstruction)
    return GANParts(
        make_g=lambda rngs: nets.Generator(cfg.z_dim, cfg.width, rngs=rngs),
        make_d=lambda rngs: AutoencoderD(cfg.width, rngs=rngs, norm=cfg.d_norm),
        latent_dim=cfg.z_dim, d_loss=d_loss, g_loss=g_loss, g_tx=g_tx, d_tx=d_tx,
        sample_latent=uniform_latent(cfg.z_dim),
        init_extra=lambda: jnp.zeros((), jnp.float32),  # k_0 = 0
    )


@register("began", "BEGAN: autoencoder D, reconstruction error as TF's (L2 norm), equilibrium k, convergence logged",
          settings={"width": nets.WIDTH, "gamma": GAMMA, "lambda_k": LAMBDA_K,
                    "g_lr_scale": G_LR_SCALE, "d_norm": D_NORM, "reconstruction": RECONSTRUCTION},
          shortfall="after 4 epochs at width 0.5 its FD is 3.5x dcgan's on MNIST (191.9) and 3.2x on Fashion-MNIST "
                    "(141.6), every class drawn (learning curves; docs/models.md#defaults-that-learn)",
          presets={"paper": {"gamma": 0.5, "lambda_k": 0.001, "lr": 1e-4, "reconstruction": "l1"}},
          gamma=1.0, lambda_k=0.002, lr=2e-4, reconstruction="l2-norm")
def build(cfg):
    return build_model(began_parts(cfg))
