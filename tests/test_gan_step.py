"""models/gan.py computes G's forward once and runs D on real and fake images in one call; this
checks that it trains exactly like the plain step it replaces: the collections' sequential loop
(G forward, D on real, D on fake, D update; G forward again, D on fake through the updated D,
G update), written out here as the specification."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from gan_lab import nets
from gan_lab.data import NUM_CLASSES
from gan_lab.losses import GAN_LOSSES
from gan_lab.models import adversarial, gan
from tests.helpers import real_subset, tiny_config


def plain_step(cfg, conditional: bool):
    g_in = cfg.z_dim + (NUM_CLASSES if conditional else 0)
    d_in = 1 + (NUM_CLASSES if conditional else 0)
    g_def = nets.graphdef_of(lambda: nets.Generator(g_in, cfg.width, rngs=nnx.Rngs(0)))
    d_def = nets.graphdef_of(lambda: nets.Discriminator(d_in, cfg.width, rngs=nnx.Rngs(0)))
    tx, loss = optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2), GAN_LOSSES[cfg.loss]

    def generate(g_params, g_rest, z, labels):
        g_input = jnp.concatenate([z, jax.nn.one_hot(labels, NUM_CLASSES)], -1) if conditional else z
        return nets.apply(g_def, g_params, g_rest, g_input, train=True)

    def discriminate(d_params, d_rest, images, labels):
        if conditional:
            images = jnp.concatenate([images, adversarial.label_channels(labels, 28, 28)], -1)
        return nets.apply(d_def, d_params, d_rest, images, train=True)

    def step(state, real_images, labels, key):
        z = jax.random.normal(adversarial.critic_keys(key, 0)[0], (real_images.shape[0], cfg.z_dim))
        fake_images, g_rest = generate(state.g_params, state.g_rest, z, labels)
        fake_images = jax.lax.stop_gradient(fake_images)

        def d_objective(d_params):
            real_logits, d_rest = discriminate(d_params, state.d_rest, real_images, labels)
            fake_logits, d_rest = discriminate(d_params, d_rest, fake_images, labels)
            return loss.d_loss(real_logits, fake_logits), d_rest

        (d_loss, d_rest), d_grads = jax.value_and_grad(d_objective, has_aux=True)(state.d_params)
        d_updates, d_opt = tx.update(d_grads, state.d_opt, state.d_params)
        d_params = optax.apply_updates(state.d_params, d_updates)

        def g_objective(g_params):
            fake, new_g_rest = generate(g_params, g_rest, z, labels)
            logits, new_d_rest = discriminate(d_params, d_rest, fake, labels)
            return loss.g_loss(logits), (new_g_rest, new_d_rest)

        (g_loss, (g_rest, d_rest)), g_grads = jax.value_and_grad(g_objective, has_aux=True)(state.g_params)
        g_updates, g_opt = tx.update(g_grads, state.g_opt, state.g_params)
        g_params = optax.apply_updates(state.g_params, g_updates)
        return gan.GANState(g_params, g_rest, d_params, d_rest, g_opt, d_opt), {"d_loss": d_loss, "g_loss": g_loss}

    return step


REFERENCES = ("written out here", "adversarial.plain_step")


@pytest.mark.parametrize("conditional, loss, references", [
    # The library's plain step is checked against the specification once (unconditional): the
    # conditional case adds only the label inputs, which the specification writes out, and a compile
    # of each reference costs ~10 s of the suite.
    (False, "bce", REFERENCES), (True, "bce", REFERENCES[:1]),
    # lsgan trains with the fast step too (gan.FAST_STEP_LOSSES).
    *[(False, loss, REFERENCES[1:]) for loss in gan.FAST_STEP_LOSSES if loss != "bce"]])
def test_gan_step_equals_the_plain_sequential_step(data_dir, conditional, loss, references):
    """The fast step against the specification above, and against the library's plain step (the one
    every other GAN variant trains with): dcgan, cgan and lsgan opt into the fast step because of this test.
    The fast step runs once per case and is compared with each reference."""
    # The tiny width the other tests build these models at: their weights' eager initialisation compiles
    # once for the suite (JAX's persistent cache), not once more at a width of this test's own.
    cfg = tiny_config("cgan" if conditional else "dcgan", loss=loss)
    images, labels = real_subset(data_dir, "mnist", 96)
    model = gan.build_gan(cfg, conditional)
    initial = model.init(jax.random.key(0))
    batches = [(images[32 * i:32 * (i + 1)], labels[32 * i:32 * (i + 1)], jax.random.key(10 + i)) for i in range(3)]
    fast, fast_state, fast_losses = jax.jit(model.step), initial, []
    for batch in batches:  # three steps: Adam's moments, BN statistics and both nets all carry over
        fast_state, metrics = fast(fast_state, *batch)
        fast_losses.append({name: metrics[name] for name in ("d_loss", "g_loss")})
    for reference in references:
        plain_reference = (plain_step(cfg, conditional) if reference == "written out here"
                           else gan.build_gan(cfg, conditional, fast=False).step)
        check_same_training(cfg, jax.jit(plain_reference), initial, batches, fast_state, fast_losses)


def check_same_training(cfg, plain, initial, batches, fast_state, fast_losses):
    """The plain step from `initial` over `batches` ends where the fast one did (fast_state, its losses)."""
    plain_state = initial
    for batch, losses in zip(batches, fast_losses):
        plain_state, plain_metrics = plain(plain_state, *batch)
        for name, value in losses.items():
            np.testing.assert_allclose(value, plain_metrics[name], rtol=1e-4, err_msg=name)
    initial = jax.tree.map(np.asarray, initial)
    assert jax.tree.structure(fast_state) == jax.tree.structure(plain_state)
    for part in gan.GANState._fields:
        for (path, a), b, start in zip(jax.tree_util.tree_flatten_with_path(getattr(fast_state, part))[0],
                                       jax.tree.leaves(getattr(plain_state, part)),
                                       jax.tree.leaves(getattr(initial, part)), strict=True):
            name = jax.tree_util.keystr(path)
            if any(f"['{layer}']['bias']" in name for layer in PRE_BATCHNORM[part[0]]) or "['mean']" in name:
                # BatchNorm subtracts the batch mean, so these biases' true gradient is 0 and what
                # autodiff returns is rounding noise, which Adam scales up to steps of ~lr either way;
                # BatchNorm's running means contain those biases.
                # Adam's step is at most a little over lr: 3 steps, either sign, with a margin.
                assert float(jnp.max(jnp.abs(a - b))) <= 10 * cfg.lr or "opt" in part, (part, name)
                continue
            difference = np.abs(np.asarray(a) - np.asarray(b))
            scale = float(np.max(np.abs(b))) + 1e-12
            if part.endswith("params"):
                # Adam divides each gradient element by its own size, so an element whose gradient is
                # close to 0 takes a step of up to lr whatever its rounding: the two steps add their
                # terms in another order, and such elements differ (at width 0.25: ~16 of 401,408 in fc2 on one CPU;
                # 227 of G's 1,024 bn1 biases for lsgan on the AMD EPYC of 2026-12-06, by up to 14% of lr).
                # So compare the two tensors by how far training moved them: the difference is under 5%
                # of the distance from the initial weights (0.1% to 2% at width 0.25), where a real
                # difference (another D, a lost BatchNorm update) is of the order of the move itself.
                # None is off by more than the 3 steps taken.
                moved = float(np.linalg.norm(np.asarray(b) - np.asarray(start)))
                assert np.linalg.norm(difference) <= 0.05 * moved + 1e-3 * cfg.lr, (part, name, moved)
                assert difference.max() <= 3 * cfg.lr, (part, name)
            elif part.endswith("opt"):
                # Adam's moments follow the gradients, which after the first step are taken through the
                # slightly different weights above: the same 5%-of-the-move rule, in norm.
                assert np.linalg.norm(difference) <= 0.05 * np.linalg.norm(np.asarray(b)) + 1e-12, (part, name)
            else:  # BatchNorm statistics are not normalised per element: 0.01% of their size
                assert difference.max() <= 1e-4 * scale, (part, name)


# Layers whose output goes straight into a BatchNorm, per network (GANState fields start with g/d).
PRE_BATCHNORM = {"g": ("fc1", "fc2", "deconv1"), "d": ("conv2", "fc1")}
