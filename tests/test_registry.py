"""Registry-wide tests: every registered model, parametrized by name, so a new model is covered at once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_lab import registry, train
from gan_lab.errors import UserError
from tests.helpers import real_subset, tiny_config

MODELS = registry.names()


def test_builtin_models_are_registered():
    assert {"dcgan", "cgan"} <= set(MODELS)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UserError) as err:
        registry.get("stylegan9")
    assert "stylegan9" in str(err.value) and all(name in str(err.value) for name in MODELS)


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="twice"):
        registry.register("dcgan", "again")(lambda cfg: None)


@pytest.fixture(scope="module")
def batch(data_dir):
    images, labels = real_subset(data_dir, "mnist", 32)
    return images, labels


@pytest.mark.parametrize("name", MODELS)
def test_one_step_changes_every_leaf_and_keeps_shapes(name, batch):
    model = registry.get(name).build(tiny_config(name))
    state = model.init(jax.random.key(0))
    before = jax.tree.map(np.asarray, state)
    new_state, metrics = jax.jit(model.step)(state, *batch, jax.random.key(1))
    unchanged = [
        jax.tree_util.keystr(path)
        for (path, old), new in zip(jax.tree_util.tree_leaves_with_path(before), jax.tree.leaves(new_state))
        if np.array_equal(old, new)
    ]
    assert not unchanged, f"{name}: one step left these leaves unchanged: {unchanged}"
    assert jax.tree.structure(before) == jax.tree.structure(new_state)
    assert all(np.isfinite(float(v)) for v in metrics.values())


@pytest.mark.parametrize("name", MODELS)
def test_sample_shape_and_range(name):
    model = registry.get(name).build(tiny_config(name))
    state = model.init(jax.random.key(0))
    labels = jnp.arange(12) % 10 if model.conditional else None
    images = np.asarray(model.sample(state, jax.random.key(2), 12, labels))
    assert images.shape == (12, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_gives_identical_bits(name, batch, data_dir):
    """Two short runs through the shared loop with one seed: bitwise-equal parameters and losses."""
    images, labels = real_subset(data_dir, "mnist", 256)
    cfg = tiny_config(name, epochs=2, log_every=1)

    def run():
        history = []
        loop = train.fit(registry.get(name).build(cfg), cfg, images, labels,
                         on_log=lambda step, epoch, values, rate: history.append(values), show_progress=False)
        return jax.tree.map(np.asarray, loop.model), history

    (state_a, history_a), (state_b, history_b) = run(), run()
    assert history_a == history_b and len(history_a) == 2 * (256 // 32)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b)))
