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
    as_three = model.decode(state, z, jnp.full((4,), 3))
    as_seven = model.decode(state, z, jnp.full((4,), 7))
    assert not np.allclose(as_three, as_seven)  # same z, another class: other images
    images, labels = real_subset(data_dir, "mnist", 16)
    posterior = model.encode(state, images, labels)
    assert posterior.shape == (16, model.z_dim)
    assert not np.allclose(posterior, model.encode(state, images, (labels + 1) % 10))
