"""Adversarial losses as pure (d_loss, g_loss) pairs of discriminator logits.

Each d_loss(real_logits, fake_logits) and g_loss(fake_logits) returns a scalar mean over the batch.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gan_lab.config import Setting, one_of


class GANLoss(NamedTuple):
    d_loss: Callable
    g_loss: Callable


def bce_d_loss(real_logits, fake_logits):
    # -log D(x) - log(1 - D(G(z))), with D = sigmoid(logits); softplus keeps it finite for any logit.
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def non_saturating_g_loss(fake_logits):
    # -log D(G(z)) (Goodfellow et al. 2014, sec. 3): strong gradients early, when D rejects G easily.
    return jnp.mean(jax.nn.softplus(-fake_logits))


def minimax_g_loss(fake_logits):
    # log(1 - D(G(z))), the original minimax objective (Goodfellow et al. 2014, eq. 1): G's gradient
    # vanishes where D rejects its samples confidently, which is why the non-saturating loss exists.
    return -jnp.mean(jax.nn.softplus(fake_logits))


def hinge_d_loss(real_logits, fake_logits):
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_g_loss(fake_logits):
    return -jnp.mean(fake_logits)


def least_squares_d_loss(real_logits, fake_logits):
    return 0.5 * jnp.mean((real_logits - 1.0) ** 2) + 0.5 * jnp.mean(fake_logits**2)


def least_squares_g_loss(fake_logits):
    return 0.5 * jnp.mean((fake_logits - 1.0) ** 2)


GAN_LOSSES = {
    "bce": GANLoss(bce_d_loss, non_saturating_g_loss),
    "minimax": GANLoss(bce_d_loss, minimax_g_loss),
    "hinge": GANLoss(hinge_d_loss, hinge_g_loss),
    "lsgan": GANLoss(least_squares_d_loss, least_squares_g_loss),
}

# The setting of the models whose D outputs one logit and that take any of these pairs (dcgan, cgan).
LOSS = Setting("bce", "adversarial loss pair on D's logits", choices=tuple(GAN_LOSSES),
               search=one_of(*GAN_LOSSES))
