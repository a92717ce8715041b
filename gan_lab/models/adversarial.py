"""The plain adversarial step that every GAN variant is built on, and the parts a variant supplies.

A variant is data (`GANParts`): its two networks, its prior, its losses and penalty as pure
functions, its optimizers, how many critic updates precede each generator update, and any state of
its own (BEGAN's k). `build_model` turns the parts into the registry's Model; the train loop never
sees the difference between variants.

One training step, the collections' loop written once:
  for each of the n_critic real batches the step is given:
      draw a latent, G makes fakes (train mode), D's loss on real and fake (+ the penalty),
      D update (then the variant's constraint on D, e.g. WGAN's weight clipping);
  G update: a fresh latent, fakes through the *updated* D (Goodfellow et al.'s Algorithm 1; the
  Haiku pitfall of G's gradient through the pre-update D is avoided deliberately), G's loss.
With n_critic = 1 and the same latent for both halves this is the DCGAN step of
tests/test_gan_step.py; models/gan.py's fast path is tested equal to it.

The step takes n_critic real batches, so each critic update sees new real images as in the WGAN
papers and the collections (they advance their data loader once per critic iteration); an epoch is
then n / (batch_size * n_critic) steps.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from gan_lab import nets
from gan_lab.config import Setting, one_of
from gan_lab.data import NUM_CLASSES
from gan_lab.registry import Model


G_LR_SCALE = Setting(1.0, "G's learning rate as a multiple of --lr, D's (two time-scale updates: the TF collection "
                             "trains G at 5x)", positive=True, search=one_of(0.5, 1.0, 2.0, 5.0))


def adam_pair(cfg) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """(G's, D's) Adam with --b1/--b2: D at --lr, G at --lr x --g-lr-scale."""
    return (optax.adam(cfg.lr * cfg.g_lr_scale, b1=cfg.b1, b2=cfg.b2), optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2))


class GANState(NamedTuple):
    g_params: Any
    g_rest: Any  # G's non-trainable state (BatchNorm statistics)
    d_params: Any
    d_rest: Any  # D's non-trainable state (BatchNorm statistics, spectral-norm vectors)
    g_opt: Any
    d_opt: Any
    extra: Any = ()  # the variant's own state, e.g. BEGAN's k; () for most


class Batch(NamedTuple):
    """What a loss sees besides D's outputs. Images (B, 28, 28, 1) in [-1, 1]."""

    real: Any
    fake: Any  # no gradient flows into G through it in the D half
    labels: Any  # (B,) int32: the real images' classes, also asked of G for conditional variants
    latent: Any  # (B, latent_dim): G's input (noise, plus a variant's codes)


def standard_normal_latent(latent_dim: int):
    def sample_latent(key, n):
        return jax.random.normal(key, (n, latent_dim))
    return sample_latent


class GANParts(NamedTuple):
    make_g: Callable  # rngs -> nnx.Module: (latent [+ one-hot label], train) -> images in [-1, 1]
    make_d: Callable  # rngs -> nnx.Module: (images [+ label channels], train) -> D's outputs (any pytree)
    latent_dim: int
    # (real_out, fake_out, batch, extra) -> (loss, {metric: scalar}, new extra)
    d_loss: Callable
    # (fake_out, batch, extra) -> (loss, {metric: scalar}); fake_out is D's (updated) view of G's images
    g_loss: Callable
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    # (d_apply, d_params, batch, key) -> (loss, {metric: scalar}); d_apply(params, images, labels) -> outputs
    penalty: Callable | None = None
    n_critic: int = 1
    g_sees_labels: bool = False  # conditional G: one-hot label concatenated to the latent
    d_sees_labels: bool = False  # conditional D: the label as 10 constant image channels
    sample_latent: Callable | None = None  # (key, n) -> latent; standard normal by default
    constrain_d: Callable | None = None  # d_params -> d_params after each D update (weight clipping)
    init_extra: Callable = tuple  # () -> the variant's own state
    encode: Callable | None = None  # for models with an encoder: (state, images, labels) -> latent


def label_channels(labels, height: int, width: int):
    """One-hot labels as constant image channels: (B,) -> (B, H, W, 10)."""
    one_hot = jax.nn.one_hot(labels, NUM_CLASSES)
    return jnp.broadcast_to(one_hot[:, None, None, :], (labels.shape[0], height, width, NUM_CLASSES))


class Networks(NamedTuple):
    """The pure functions of a variant's two networks, shared by the plain and the fast step."""

    parts: GANParts
    g_def: Any
    d_def: Any

    def generate(self, g_params, g_rest, latent, labels, train: bool):
        g_input = jnp.concatenate([latent, jax.nn.one_hot(labels, NUM_CLASSES)], -1) if self.parts.g_sees_labels \
            else latent
        return nets.apply(self.g_def, g_params, g_rest, g_input, train=train)

    def discriminate(self, d_params, d_rest, images, labels, **kwargs):
        if self.parts.d_sees_labels:
            images = jnp.concatenate([images, label_channels(labels, *images.shape[1:3])], -1)
        return nets.apply(self.d_def, d_params, d_rest, images, train=True, **kwargs)

    def sample_latent(self, key, n):
        return (self.parts.sample_latent or standard_normal_latent(self.parts.latent_dim))(key, n)


def networks(parts: GANParts) -> Networks:
    return Networks(parts, nets.graphdef_of(lambda: parts.make_g(nnx.Rngs(0))),
                    nets.graphdef_of(lambda: parts.make_d(nnx.Rngs(0))))


def optimizer_step(tx, grads, opt_state, params):
    with jax.named_scope("optimizer"):  # names its ops in profiles (experiments/profile_step.py)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state


def init_state(parts: GANParts, key) -> GANState:
    g_key, d_key = jax.random.split(key)
    _, g_params, g_rest = nets.split_module(parts.make_g(nnx.Rngs(g_key)))
    _, d_params, d_rest = nets.split_module(parts.make_d(nnx.Rngs(d_key)))
    return GANState(g_params, g_rest, d_params, d_rest, parts.g_tx.init(g_params), parts.d_tx.init(d_params),
                    parts.init_extra())


def critic_keys(step_key, i: int):
    """(latent key, penalty key) of the step's i-th critic update; the fast step draws its latent with
    the same key, so the two steps see the same numbers."""
    return jax.random.fold_in(step_key, 2 * i), jax.random.fold_in(step_key, 2 * i + 1)


def critic_update(nn: Networks, state: GANState, real, labels, step_key, i: int = 0):
    """The step's i-th D update, on one real batch; returns (state, metrics, the latent used)."""
    parts = nn.parts
    latent_key, penalty_key = critic_keys(step_key, i)
    latent = nn.sample_latent(latent_key, real.shape[0])
    fake, g_rest = nn.generate(state.g_params, state.g_rest, latent, labels, train=True)
    batch = Batch(real, jax.lax.stop_gradient(fake), labels, latent)

    def d_apply(d_params, images, labels):  # for penalties: D's outputs, its statistics left as they are
        return nn.discriminate(d_params, state.d_rest, images, labels)[0]

    def objective(d_params):
        real_out, d_rest = nn.discriminate(d_params, state.d_rest, batch.real, labels)
        fake_out, d_rest = nn.discriminate(d_params, d_rest, batch.fake, labels)
        loss, metrics, extra = parts.d_loss(real_out, fake_out, batch, state.extra)
        if parts.penalty is not None:
            penalty, penalty_metrics = parts.penalty(d_apply, d_params, batch, penalty_key)
            loss, metrics = loss + penalty, {**metrics, **penalty_metrics}
        return loss, (d_rest, metrics, extra)

    (d_loss, (d_rest, metrics, extra)), grads = jax.value_and_grad(objective, has_aux=True)(state.d_params)
    d_params, d_opt = optimizer_step(parts.d_tx, grads, state.d_opt, state.d_params)
    if parts.constrain_d is not None:
        d_params = parts.constrain_d(d_params)
    state = state._replace(g_rest=g_rest, d_params=d_params, d_rest=d_rest, d_opt=d_opt, extra=extra)
    return state, {"d_loss": d_loss, **metrics}, latent


def generator_update(nn: Networks, state: GANState, labels, latent):
    parts = nn.parts

    def objective(g_params):
        fake, g_rest = nn.generate(g_params, state.g_rest, latent, labels, train=True)
        fake_out, d_rest = nn.discriminate(state.d_params, state.d_rest, fake, labels)
        batch = Batch(None, fake, labels, latent)
        loss, metrics = parts.g_loss(fake_out, batch, state.extra)
        return loss, (g_rest, d_rest, metrics)

    (g_loss, (g_rest, d_rest, metrics)), grads = jax.value_and_grad(objective, has_aux=True)(state.g_params)
    g_params, g_opt = optimizer_step(parts.g_tx, grads, state.g_opt, state.g_params)
    state = state._replace(g_params=g_params, g_rest=g_rest, d_rest=d_rest, g_opt=g_opt)
    return state, {"g_loss": g_loss, **metrics}


def plain_step(nn: Networks, state: GANState, real_images, labels, key):
    """n_critic D updates (one per real batch), then one G update through the updated D.

    real_images: (B, 28, 28, 1) when n_critic is 1, else (n_critic, B, 28, 28, 1), labels likewise.
    G's update uses the latent of the last critic update, as the collections' loops do (G is
    updated in the iteration of every n_critic-th D update, with that iteration's z).
    """
    parts = nn.parts
    if parts.n_critic == 1:
        real_images, labels = real_images[None], labels[None]
    for i in range(parts.n_critic):  # unrolled: n_critic is small (<= 5) and static
        state, metrics, latent = critic_update(nn, state, real_images[i], labels[i], key, i)
    state, g_metrics = generator_update(nn, state, labels[-1], latent)
    return state, {**metrics, **g_metrics}


def build_model(parts: GANParts, step=None) -> Model:
    """The registry's Model for a GAN variant: the plain step unless a tested fast `step` is given."""
    nn = networks(parts)
    conditional = parts.g_sees_labels

    def decode(state: GANState, latent, labels=None):
        images, _ = nn.generate(state.g_params, state.g_rest, latent, labels, train=False)
        return images

    return Model(
        init=lambda key: init_state(parts, key),
        step=step or (lambda state, images, labels, key: plain_step(nn, state, images, labels, key)),
        decode=decode,
        z_dim=parts.latent_dim,
        conditional=conditional,
        sample_latent=nn.sample_latent,
        batches_per_step=parts.n_critic,
        encode=parts.encode,
    )
