"""The adversarial update shared by the GAN family: one step trains D, then G.

Decision (STYLE.md, Haiku pitfall): G's gradient is taken through the *updated* discriminator,
the sequential alternation of the PyTorch/TF collections and of Goodfellow et al.'s Algorithm 1.
Both updates use the same z. G runs in train mode in both halves, so its BatchNorm statistics
move twice per step, exactly as in the collections' PyTorch loop.

What is computed once (same numbers, up to float rounding): G's forward pass. In train mode its
output depends only on (g_params, z, labels), which the G half shares with the D half, so the G
half reuses the D half's fakes and their VJP; its second move of G's running statistics, by the
same batch statistics, is applied in closed form. D sees real and fake images in one call (groups=2: shared
matmuls, BatchNorm per group, statistics updated real-then-fake as two calls would).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from gan_lab import nets
from gan_lab.data import NUM_CLASSES
from gan_lab.losses import GAN_LOSSES
from gan_lab.registry import Model



class GANState(NamedTuple):
    g_params: Any
    g_rest: Any  # BatchNorm statistics
    d_params: Any
    d_rest: Any
    g_opt: Any
    d_opt: Any


def label_channels(labels, height: int, width: int):
    """One-hot labels as constant image channels: (B,) -> (B, H, W, 10)."""
    one_hot = jax.nn.one_hot(labels, NUM_CLASSES)
    return jnp.broadcast_to(one_hot[:, None, None, :], (labels.shape[0], height, width, NUM_CLASSES))


def build_gan(cfg, conditional: bool) -> Model:
    g_in = cfg.z_dim + (NUM_CLASSES if conditional else 0)
    d_in = 1 + (NUM_CLASSES if conditional else 0)
    make_g = lambda rngs: nets.Generator(g_in, cfg.width, rngs=rngs)  # noqa: E731
    make_d = lambda rngs: nets.Discriminator(d_in, cfg.width, rngs=rngs)  # noqa: E731
    g_def = nets.graphdef_of(lambda: make_g(nnx.Rngs(0)))
    d_def = nets.graphdef_of(lambda: make_d(nnx.Rngs(0)))
    tx = optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2)
    loss = GAN_LOSSES[cfg.loss]

    def generate(g_params, g_rest, z, labels, train):
        g_input = jnp.concatenate([z, jax.nn.one_hot(labels, NUM_CLASSES)], -1) if conditional else z
        return nets.apply(g_def, g_params, g_rest, g_input, train=train)

    def discriminate(d_params, d_rest, images, labels, groups=1):
        if conditional:
            images = jnp.concatenate([images, label_channels(labels, *images.shape[1:3])], -1)
        return nets.apply(d_def, d_params, d_rest, images, train=True, groups=groups)

    def optimizer_step(grads, opt_state, params):
        with jax.named_scope("optimizer"):  # names its ops in profiles (experiments/profile_step.py)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

    def init(key) -> GANState:
        g_key, d_key = jax.random.split(key)
        _, g_params, g_rest = nets.split_module(make_g(nnx.Rngs(g_key)))
        _, d_params, d_rest = nets.split_module(make_d(nnx.Rngs(d_key)))
        return GANState(g_params, g_rest, d_params, d_rest, tx.init(g_params), tx.init(d_params))

    def step(state: GANState, real_images, labels, key):
        z = jax.random.normal(key, (real_images.shape[0], cfg.z_dim))
        # Fake images are drawn for the real batch's labels (the collections' CGAN does the same).
        fake_images, g_vjp, g_rest_once = jax.vjp(
            lambda g_params: generate(g_params, state.g_rest, z, labels, train=True), state.g_params, has_aux=True
        )

        def d_objective(d_params):
            both = jnp.concatenate([real_images, jax.lax.stop_gradient(fake_images)])
            logits, d_rest = discriminate(d_params, state.d_rest, both, jnp.concatenate([labels, labels]), groups=2)
            real_logits, fake_logits = jnp.split(logits, 2)
            return loss.d_loss(real_logits, fake_logits), (d_rest, real_logits, fake_logits)

        (d_loss, (d_rest, real_logits, fake_logits)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(
            state.d_params
        )
        d_params, d_opt = optimizer_step(d_grads, state.d_opt, state.d_params)

        def g_objective_of_images(images):
            logits, new_d_rest = discriminate(d_params, d_rest, images, labels)
            return loss.g_loss(logits), new_d_rest

        (g_loss, d_rest), image_grads = jax.value_and_grad(g_objective_of_images, has_aux=True)(fake_images)
        (g_grads,) = g_vjp(image_grads)
        g_rest = nets.statistics_after_second_pass(state.g_rest, g_rest_once)
        g_params, g_opt = optimizer_step(g_grads, state.g_opt, state.g_params)

        metrics = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),  # D's mean belief that real is real
            "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
        }
        return GANState(g_params, g_rest, d_params, d_rest, g_opt, d_opt), metrics

    def decode(state: GANState, z, labels=None):
        images, _ = generate(state.g_params, state.g_rest, z, labels, train=False)
        return images

    return Model(init=init, step=step, decode=decode, z_dim=cfg.z_dim, conditional=conditional)
