"""The conditional VAE: both networks read the label, so the label changes the images and the ELBO."""

import jax
import jax.numpy as jnp
import numpy as np

from gan_lab import registry
from tests.helpers import real_subset, tiny_config


def test_cvae_decoder_and_encoder_use_the_label(data_dir):
    model = registry.get("cvae").build(tiny_config("cvae"))
    state = model.init(jax.random.key(0))
    z = model.prior(jax.random.key(1), 4)
    # Jitted, as sampling and training run them: eagerly, every primitive compiles on its own.
    decode, encode = jax.jit(model.decode), jax.jit(model.encode)
    as_three = decode(state, z, jnp.full((4,), 3))
    as_seven = decode(state, z, jnp.full((4,), 7))
    assert not np.allclose(as_three, as_seven)  # same z, another class: other images
    images, labels = real_subset(data_dir, "mnist", 16)
    posterior = encode(state, images, labels)
    assert posterior.shape == (16, model.z_dim)
    assert not np.allclose(posterior, encode(state, images, (labels + 1) % 10))


def test_latent_manifold_of_a_2d_vae_and_a_clear_error_otherwise():
    import pytest

    from gan_lab import sampling
    from gan_lab.errors import UserError

    model = registry.get("vae").build(tiny_config("vae", z_dim=2))
    state = model.init(jax.random.key(0))
    grid = np.asarray(sampling.latent_manifold(model, state, 5))
    assert grid.shape == (5, 5, 28, 28, 1)
    # Column j of every row decodes the same first coordinate, row i the same second one (top: largest).
    z_corner = jnp.asarray([[float(jax.scipy.special.ndtri(0.05)), float(jax.scipy.special.ndtri(0.95))]])
    corner = jax.jit(lambda state, z: model.decode(state, z, None))(state, z_corner)  # jitted, as the grid is
    np.testing.assert_allclose(grid[0, 0], np.asarray(corner)[0], atol=1e-6)
    with pytest.raises(UserError, match="train with --z-dim 2"):
        sampling.latent_manifold(registry.get("vae").build(tiny_config("vae")), state, 5)


def test_conv_vaes_draw_every_kernel_with_the_init_they_are_given(data_dir):
    """--init lecun (the default): each kernel's std is 1/sqrt(fan-in), so the encoder's posterior mean
    moves with its image from the first step; normal-0.02 (the GANs' init) draws them all at 0.02."""
    images, _ = real_subset(data_dir, "mnist", 64)
    spreads = {}
    for init in ("lecun", "normal-0.02"):
        model = registry.get("vae").build(tiny_config("vae", init=init))
        params = model.init(jax.random.key(0)).params
        for path, kernel in jax.tree_util.tree_leaves_with_path(params):
            if "kernel" not in jax.tree_util.keystr(path):
                continue
            fan_in = int(np.prod(kernel.shape[:-1]))
            expected = 1 / np.sqrt(fan_in) if init == "lecun" else 0.02
            # 4 standard errors of a sample std (relative SE 1/sqrt(2n)); lecun's is truncated at 2 sigma, rescaled.
            assert abs(float(np.std(kernel)) / expected - 1) < 4 / np.sqrt(2 * kernel.size), (init, jax.tree_util.keystr(path))
        spreads[init] = float(np.std(np.asarray(jax.jit(model.encode)(model.init(jax.random.key(0)), images)), axis=0).mean())
    # How much the posterior mean differs between images at init: 0.1 with lecun, 0.0002 with N(0, 0.02),
    # whose signal is lost on the way (at this width; 0.05 and 0.001 at width 0.5): why lecun is the default.
    assert spreads["lecun"] > 0.02 and spreads["normal-0.02"] < 0.1 * spreads["lecun"], spreads
