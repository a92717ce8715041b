"""WGAN (Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN", Algorithm 1).

The critic D estimates the Wasserstein-1 distance: critic loss E[D(G(z))] - E[D(x)], G loss
-E[D(G(z))], on D's raw output (no sigmoid: it is a score, not a probability). D is kept roughly
1-Lipschitz by clipping every one of its weights to [-c, c] after each critic update, and is trained
n_critic times per G update, each time on a new real batch.

Defaults: the TF collection's schedule, not the paper's: Adam 2e-4 (b1 0.5, b2 0.999) for both
nets, G's rate 5x D's (--g-lr-scale 5), one critic update per G update; c = 0.01, batch 64; z = 62
and the infoGAN MNIST nets as every gan_lab GAN, 25 epochs. The paper's (RMSProp 5e-5, since
momentum made its critic unstable, sec. 3; n_critic 5; one rate) are `--preset paper`.

Why, measured at the study's CPU budget (1 epoch = 60,000 images, width 0.5, seed 0;
experiments/defaults_search.py, experiments/results/defaults_search.md; FD, lower is better, x
dcgan's at the same budget): the paper's settings draw one MNIST class (FD 1562.9, 6.3x) and half the
Fashion-MNIST classes (825.6, 5.4x): with 5 critic updates an epoch is only 187 G updates, each
at 5e-5. Adam 2e-4 with 5 critic updates (the PyTorch collection's) is no better (1420.8, 734.9);
one critic update, one rate: 934.0 and 506.8; one critic update with G at 5x: 630.7 and 430.1
(2.5x, 2.8x). With c = 0.05 as well: 731.7 and 326.3, so c stays the paper's 0.01. What made the
difference is the critic's BatchNorm (--critic-norm batch, the default): with the same schedule,
130.1 and 112.4 (0.52x and 0.73x dcgan's, every class on both), recognisable digits and garments
after one epoch, where the critic without it drew blobs on Fashion-MNIST. The learning curves
(experiments/learning_curves.py) had shown the BatchNorm-free critic falling further behind with
training (MNIST 634.4 at one epoch, 411.8 at four, dcgan 46.2).

The critic is nets.Discriminator with its BatchNorm, as in both collections and the authors' code
(a DCGAN critic), and every parameter, BatchNorm's scales and offsets included, is clipped to
[-c, c] as they do. Its running statistics are not parameters and are not clipped. Real and fake
batches are normalised separately (nets.normalise_per_group), as separate calls in the collections
are. A critic's value of one image then depends on its batch; --critic-norm none gives the
BatchNorm-free critic. WGAN-GP has no such option: its penalty needs each image's own gradient.
--b1/--b2 have no effect under --optimizer rmsprop (RMSProp has no betas).

    python -m gan_lab train wgan --dataset mnist
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from gan_lab import nets
from gan_lab.config import Setting, one_of
from gan_lab.models.adversarial import G_LR_SCALE, GANParts, build_model
from gan_lab.models.penalties import CLIP, N_CRITIC, clip_weights
from gan_lab.registry import register


OPTIMIZER = Setting("rmsprop", "WGAN: both nets' optimiser: rmsprop (the paper's) or adam (with --b1/--b2)",
                    choices=("rmsprop", "adam"), search=one_of("rmsprop", "adam"))


CRITIC_NORM = Setting("batch", "WGAN: the critic's normalisation: batch (BatchNorm, as both collections and the "
                      "authors' code; its scales are clipped like every weight), layer (LayerNorm) or none",
                      choices=("batch", "layer", "none"), search=one_of("batch", "layer", "none"),
                      absent="none")  # runs saved before this setting had critics without normalisation


def optimizer(cfg, lr: float) -> optax.GradientTransformation:
    """cfg.optimizer at `lr`. RMSProp as the authors' code ran it (PyTorch's optim.RMSprop: decay 0.99,
    eps outside the root), not optax's defaults (decay 0.9, eps inside)."""
    if cfg.optimizer == "adam":
        return optax.adam(lr, b1=cfg.b1, b2=cfg.b2)
    return optax.rmsprop(lr, decay=0.99, eps=1e-8, eps_in_sqrt=False)


def wasserstein_d_loss(real_out, fake_out, batch, extra):
    """E[D(G(z))] - E[D(x)]; the negative of the critic's estimate of W1, reported as d_real/d_fake."""
    real_mean, fake_mean = jnp.mean(real_out), jnp.mean(fake_out)
    return fake_mean - real_mean, {"d_real": real_mean, "d_fake": fake_mean}, extra


def wasserstein_g_loss(fake_out, batch, extra):
    return -jnp.mean(fake_out), {}


def make_critic(cfg, rngs):
    """nets.Discriminator with the normalisation --critic-norm names (BatchNorm, LayerNorm or none), without its output bias:
    a constant shifts D(x) and D(G(z)) alike, so it cancels in both Wasserstein losses and in the
    gradient penalty; its gradient is exactly 0 and it would stay at its initial 0 forever."""
    # WGAN-GP's --critic-norm choices leave batch out: its penalty needs each image's own gradient.
    critic = nets.Discriminator(1, cfg.width, rngs=rngs, norm=cfg.critic_norm)
    critic.fc2.use_bias, critic.fc2.bias = False, None
    return critic


def critic_parts(cfg, g_tx, d_tx, **regulariser) -> GANParts:
    """WGAN's and WGAN-GP's shared parts: the infoGAN G, a critic without sigmoid (its normalisation: make_critic), the
    Wasserstein losses, cfg.n_critic critic updates per step; `regulariser` is constrain_d= or penalty=."""
    return GANParts(
        make_g=lambda rngs: nets.Generator(cfg.z_dim, cfg.width, rngs=rngs),
        make_d=lambda rngs: make_critic(cfg, rngs),
        latent_dim=cfg.z_dim, d_loss=wasserstein_d_loss, g_loss=wasserstein_g_loss, g_tx=g_tx, d_tx=d_tx,
        n_critic=cfg.n_critic, **regulariser,
    )


@register("wgan", "Wasserstein GAN: BatchNorm critic, weights clipped to [-0.01, 0.01], 1 critic update, "
          "Adam 2e-4 with G at 5x", settings={"width": nets.WIDTH, "n_critic": N_CRITIC, "clip": CLIP,
                                             "optimizer": OPTIMIZER, "g_lr_scale": G_LR_SCALE,
                                             "critic_norm": CRITIC_NORM},
          presets={"paper": {"optimizer": "rmsprop", "lr": 5e-5, "n_critic": 5, "g_lr_scale": 1.0}},
          optimizer="adam", lr=2e-4, b1=0.5, b2=0.999, n_critic=1, g_lr_scale=5.0, batch_size=64, z_dim=62,
          epochs=25)
def build(cfg):
    return build_model(critic_parts(cfg, optimizer(cfg, cfg.lr * cfg.g_lr_scale), optimizer(cfg, cfg.lr),
                                    constrain_d=clip_weights(cfg.clip)))
