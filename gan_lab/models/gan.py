"""DCGAN's parts (dcgan, cgan) and the fast path of their step, an optimisation they opt into.

The parts: the infoGAN MNIST backbone (nets.Generator / nets.Discriminator), N(0, 1) noise, one of
losses.GAN_LOSSES on D's logits, Adam, one critic update per G update. The plain step of
models/adversarial.py trains them as the collections do; `fast_step` computes the same step with
less work, and tests/test_gan_step.py checks that the two train alike.

What the fast step computes once (same numbers, up to float rounding): G's forward pass. In train
mode its output depends only on (g_params, z, labels), which the G half shares with the D half, so
the G half reuses the D half's fakes and their VJP; its second move of G's running statistics, by
the same batch statistics, is applied in closed form. D sees real and fake images in one call
(groups=2: shared matmuls, BatchNorm per group, statistics updated real-then-fake as two calls would).
G's gradient is taken through the *updated* D, as in the plain step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from gan_lab import nets
from gan_lab.data import NUM_CLASSES
from gan_lab.losses import GAN_LOSSES
from gan_lab.models.adversarial import (GANParts, GANState, Networks, build_model, critic_keys, networks,
                                        optimizer_step)


def logit_losses(loss_name: str):
    """(d_loss, g_loss) in the parts' signature, from a (d_loss, g_loss) pair of functions of D's
    outputs, with D's mean output on real and fake images as metrics: a probability (the sigmoid of
    the logit) for the cross-entropy losses, D's raw output for the others, which have no sigmoid."""
    loss = GAN_LOSSES[loss_name]
    as_reported = jax.nn.sigmoid if loss_name in ("bce", "minimax") else (lambda outputs: outputs)

    def d_loss(real_logits, fake_logits, batch, extra):
        metrics = {"d_real": jnp.mean(as_reported(real_logits)), "d_fake": jnp.mean(as_reported(fake_logits))}
        return loss.d_loss(real_logits, fake_logits), metrics, extra

    def g_loss(fake_logits, batch, extra):
        return loss.g_loss(fake_logits), {}

    return d_loss, g_loss


def dcgan_parts(cfg, conditional: bool, loss: str | None = None) -> GANParts:
    """The DCGAN parts with `loss` (one of losses.GAN_LOSSES), or the run's --loss setting."""
    g_in = cfg.z_dim + (NUM_CLASSES if conditional else 0)
    d_in = 1 + (NUM_CLASSES if conditional else 0)
    tx = optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2)
    d_loss, g_loss = logit_losses(loss or cfg.loss)
    return GANParts(
        make_g=lambda rngs: nets.Generator(g_in, cfg.width, rngs=rngs),
        make_d=lambda rngs: nets.Discriminator(d_in, cfg.width, rngs=rngs),
        latent_dim=cfg.z_dim, d_loss=d_loss, g_loss=g_loss, g_tx=tx, d_tx=tx,
        # Fake images are drawn for the real batch's labels (the collections' CGAN does the same).
        g_sees_labels=conditional, d_sees_labels=conditional,
    )


def fast_step(nn: Networks):
    """The plain step for parts with one critic update, no penalty, no constraint and no state of
    their own, and a D that takes `groups` (nets.Discriminator)."""
    parts = nn.parts
    assert parts.n_critic == 1 and parts.penalty is None and parts.constrain_d is None, "not a DCGAN-like variant"

    def step(state: GANState, real_images, labels, key):
        z = nn.sample_latent(critic_keys(key, 0)[0], real_images.shape[0])
        fake_images, g_vjp, g_rest_once = jax.vjp(
            lambda g_params: nn.generate(g_params, state.g_rest, z, labels, train=True), state.g_params, has_aux=True
        )

        def d_objective(d_params):
            both = jnp.concatenate([real_images, jax.lax.stop_gradient(fake_images)])
            logits, d_rest = nn.discriminate(d_params, state.d_rest, both, jnp.concatenate([labels, labels]), groups=2)
            real_logits, fake_logits = jnp.split(logits, 2)
            loss, metrics, extra = parts.d_loss(real_logits, fake_logits, None, state.extra)
            return loss, (d_rest, metrics, extra)

        (d_loss, (d_rest, d_metrics, extra)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(state.d_params)
        d_params, d_opt = optimizer_step(parts.d_tx, d_grads, state.d_opt, state.d_params)

        def g_objective_of_images(images):
            logits, new_d_rest = nn.discriminate(d_params, d_rest, images, labels)
            loss, metrics = parts.g_loss(logits, None, extra)
            return loss, (new_d_rest, metrics)

        (g_loss, (d_rest, g_metrics)), image_grads = jax.value_and_grad(g_objective_of_images, has_aux=True)(
            fake_images)
        (g_grads,) = g_vjp(image_grads)
        g_rest = nets.statistics_after_second_pass(state.g_rest, g_rest_once)
        g_params, g_opt = optimizer_step(parts.g_tx, g_grads, state.g_opt, state.g_params)
        metrics = {"d_loss": d_loss, **d_metrics, "g_loss": g_loss, **g_metrics}
        return GANState(g_params, g_rest, d_params, d_rest, g_opt, d_opt, extra), metrics

    return step


# Losses for which tests/test_gan_step.py checks the fast step against the plain one. (With hinge,
# Adam turns G's near-zero BatchNorm-bias gradients into steps that differ by ~1% of lr between the
# two, more than that test allows; hinge runs take the plain step. So does minimax: compiled with
# gan_lab's XLA flags (runtime.py, multi-output fusion), its fast step's G weights after 3 steps
# moved from the same step compiled without them by a median 0.5% of lr (up to 25% for 1 in 1,000),
# where the plain step's moved by 0.0002%: not shown equal, so not used.)
FAST_STEP_LOSSES = ("bce", "lsgan")


def build_gan(cfg, conditional: bool, fast: bool = True, loss: str | None = None):
    """dcgan (conditional=False) or cgan, or another loss on their nets: the fast step where it is
    tested equal to the plain one (FAST_STEP_LOSSES), the plain one otherwise or with fast=False."""
    parts = dcgan_parts(cfg, conditional, loss)
    fast = fast and (loss or cfg.loss) in FAST_STEP_LOSSES
    return build_model(parts, step=fast_step(networks(parts)) if fast else None)
