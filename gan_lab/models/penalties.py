"""What the critic-regularised GANs (wgan, wgan-gp, dragan) add to the plain adversarial step: their
shared settings, the gradient penalty and weight clipping, as pure functions in GANParts' signatures.

The gradient penalty (Gulrajani et al. 2017, eq. 3; DRAGAN, Kodali et al. 2017, eq. 4):
  lambda * E[(||grad_xhat D(xhat)||_2 - 1)^2]
with the norm taken per sample over all of its H*W*C pixels, and D(xhat) D's raw output (the critic
value, or the logit for DRAGAN's cross-entropy D): a sigmoid would shrink every gradient by
sigmoid'(logit) <= 1/4 and penalise another quantity. The models differ only in where the points
xhat lie (`interpolate_real_fake`, `perturb_real`).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from gan_lab.config import Setting, around, one_of

N_CRITIC = Setting(5, "critic (D) updates per G update, each on its own real batch: a step takes n_critic "
                      "batches and an epoch is n / (batch_size * n_critic) steps", minimum=1,
                   search=one_of(1, 2, 5))
GP_WEIGHT = Setting(10.0, "lambda: weight of the gradient penalty (||grad D(xhat)||_2 - 1)^2", minimum=0,
                    search=around(10))
CLIP = Setting(0.01, "c: every critic weight is clipped to [-c, c] after each critic update", positive=True,
               search=around(3))


def per_sample_gradient_norms(d_apply, d_params, images, labels):
    """||grad_x D(x_i)||_2 of each sample over all its pixels: (B, H, W, C) -> (B,).

    One gradient of the summed outputs gives every sample's own gradient when D treats samples
    independently (no BatchNorm: the WGAN critics); with BatchNorm in train mode (DRAGAN's D) it also
    carries the terms through the batch statistics, as the collections' autograd.grad(ones) does.
    """
    grads = jax.grad(lambda x: jnp.sum(d_apply(d_params, x, labels)))(images)
    return jnp.sqrt(jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))))


def gradient_penalty(points: Callable, weight: float):
    """GANParts.penalty: weight * mean((||grad D(xhat)|| - 1)^2) at xhat = points(batch, key)."""

    def penalty(d_apply, d_params, batch, key):
        norms = per_sample_gradient_norms(d_apply, d_params, points(batch, key), batch.labels)
        loss = weight * jnp.mean(jnp.square(norms - 1.0))
        return loss, {"gradient_penalty": loss, "grad_norm": jnp.mean(norms)}

    return penalty


def per_sample_uniform(key, images):
    """alpha ~ U[0, 1), one per sample, broadcast over its pixels: (B, 1, 1, 1)."""
    return jax.random.uniform(key, (images.shape[0],) + (1,) * (images.ndim - 1))


def interpolate_real_fake(batch, key):
    """WGAN-GP's xhat = alpha x + (1 - alpha) G(z): on the straight lines between real and fake pairs,
    one alpha per pair, as the paper and the PyTorch collection's WGAN_GP.py draw it (the TF collection's
    alpha per pixel lands off those lines)."""
    alpha = per_sample_uniform(key, batch.real)
    return alpha * batch.real + (1.0 - alpha) * batch.fake


# DRAGAN's perturbation scale: x_p = x + 0.5 std(x) U[0, 1), as the authors' code and both collections
# draw it (the paper describes the perturbation only as small noise around x; this is what is trained).
PERTURBATION_SCALE = 0.5


def perturb_real(batch, key):
    """DRAGAN's xhat = x + alpha (x_p - x), x_p = x + 0.5 std(x) U[0, 1): points in a small region
    around the real data. std is over the whole batch, as in the collections; alpha is one per sample."""
    noise_key, alpha_key = jax.random.split(key)
    real = batch.real
    perturbed = real + PERTURBATION_SCALE * jnp.std(real) * jax.random.uniform(noise_key, real.shape)
    return real + per_sample_uniform(alpha_key, real) * (perturbed - real)


def clip_weights(c: float):
    """GANParts.constrain_d of WGAN: every critic parameter clipped to [-c, c] (Arjovsky et al. 2017,
    Algorithm 1, biases included, as in the paper's code and the collections)."""

    def constrain(d_params):
        return jax.tree.map(lambda w: jnp.clip(w, -c, c), d_params)

    return constrain
