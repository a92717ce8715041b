"""wgan, wgan-gp and dragan: the gradient penalty against closed forms, where its points lie, the WGAN
critics' architecture, weight clipping and n_critic, on tiny nets and real images.

(The registry-wide tests of tests/test_registry.py train each of them through the loop as well.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gan_lab import config, nets, registry
from gan_lab.models import penalties, wgan
from gan_lab.models.adversarial import Batch
from tests.helpers import real_subset, tiny_config

B = 16


@pytest.fixture(scope="module")
def real(data_dir):
    return real_subset(data_dir, "mnist", 5 * B)


def batch_of(real_images, key=jax.random.key(7)):
    fake = jax.random.uniform(key, real_images.shape, minval=-1.0, maxval=1.0)
    return Batch(real_images, fake, jnp.zeros(real_images.shape[0], jnp.int32), None)


def linear_critic(w_params, images, labels):
    """D(x) = <w, x> per sample: its gradient is w at every point, so ||grad D|| = ||w||."""
    return jnp.sum(images * w_params, axis=(1, 2, 3))


@pytest.mark.parametrize("points", [penalties.interpolate_real_fake, penalties.perturb_real])
def test_penalty_of_a_linear_critic_is_its_closed_form(points, real):
    """lambda (||w|| - 1)^2 exactly: fails if the norm is taken per pixel or per row instead of over a
    sample's H*W*C pixels, or if the penalty sees sigmoid(D) (whose gradient is sigmoid'(<w,x>) w)."""
    w = 0.06 * jax.random.normal(jax.random.key(1), (28, 28, 1))  # ||w|| ~ 1.7: far from 1
    batch = batch_of(real[0][:B])
    loss, metrics = penalties.gradient_penalty(points, 10.0)(linear_critic, w, batch, jax.random.key(2))
    norm = float(jnp.linalg.norm(w))
    np.testing.assert_allclose(float(loss), 10.0 * (norm - 1.0) ** 2, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["grad_norm"]), norm, rtol=1e-5)


def test_penalty_is_zero_for_a_unit_norm_linear_critic_and_scales_with_lambda(real):
    w = jax.random.normal(jax.random.key(3), (28, 28, 1))
    batch, key = batch_of(real[0][:B]), jax.random.key(4)
    unit, _ = penalties.gradient_penalty(penalties.interpolate_real_fake, 10.0)(
        linear_critic, w / jnp.linalg.norm(w), batch, key)
    assert abs(float(unit)) < 1e-8
    once, _ = penalties.gradient_penalty(penalties.interpolate_real_fake, 1.0)(linear_critic, 2 * w, batch, key)
    ten, _ = penalties.gradient_penalty(penalties.interpolate_real_fake, 10.0)(linear_critic, 2 * w, batch, key)
    np.testing.assert_allclose(float(ten), 10 * float(once), rtol=1e-6)


def test_gradient_norms_are_each_samples_own_over_all_its_pixels(real):
    """On a real WGAN-GP critic (LayerNorm: per image), the summed-output gradient's per-sample norms
    equal each sample's own gradient norm, computed one sample at a time."""
    critic = wgan.make_critic(tiny_config("wgan-gp"), nnx.Rngs(0))
    graphdef, params, rest = nets.split_module(critic)

    def d_apply(d_params, images, labels):
        return nets.apply(graphdef, d_params, rest, images, train=True)[0]

    images, labels = real[0][:B], real[1][:B]
    # Both jitted, as training runs them: eagerly, every primitive of the critic's forward and backward
    # passes compiles on its own (this test took 19 s alone that way, 7 s jitted).
    norms = jax.jit(lambda params, images, labels: penalties.per_sample_gradient_norms(d_apply, params, images, labels))(
        params, images, labels)
    one_at_a_time = jax.jit(jax.vmap(lambda x: jnp.linalg.norm(jax.grad(lambda x: d_apply(params, x[None], None)[0])(x))))
    np.testing.assert_allclose(np.asarray(norms), np.asarray(one_at_a_time(images)), rtol=1e-5)
    assert norms.shape == (B,)


def test_wgan_gp_points_are_on_each_real_fake_segment_with_one_alpha_per_sample():
    """real = 1 and fake = 0 everywhere: xhat is alpha itself, so one alpha per sample makes each
    sample constant over its pixels; alpha per pixel would not."""
    shape = (64, 28, 28, 1)
    batch = Batch(jnp.ones(shape), jnp.zeros(shape), jnp.zeros(64, jnp.int32), None)
    xhat = np.asarray(penalties.interpolate_real_fake(batch, jax.random.key(5)))
    alpha = xhat[:, 0, 0, 0]
    assert np.all(xhat == alpha[:, None, None, None])
    assert np.all((alpha >= 0) & (alpha < 1)) and len(np.unique(alpha)) == 64


def test_dragan_points_lie_within_half_a_std_above_the_real_images_with_one_alpha_per_sample(real):
    """xhat - x = alpha_i 0.5 std(x) u, u ~ U[0, 1) per pixel: in [0, 0.5 std(x)), and a sample's mean
    offset is alpha_i / 4 of std(x), which spreads over [0, 1/4) from sample to sample; an alpha per
    pixel would give every sample about the same mean (1/8)."""
    images = real[0][:5 * B]
    offsets = np.asarray(penalties.perturb_real(batch_of(images), jax.random.key(6)) - images)
    scaled = offsets / (penalties.PERTURBATION_SCALE * float(jnp.std(images)))
    assert scaled.min() >= -1e-6 and scaled.max() < 1 + 1e-6
    per_sample_mean = scaled.reshape(len(scaled), -1).mean(axis=1) * 2  # ~ alpha_i / 2 * 2 = alpha_i
    assert per_sample_mean.std() > 0.15  # one alpha per sample: ~ 0.29 (U[0,1)); per pixel: ~ 0.01
    assert per_sample_mean.min() < 0.2 and per_sample_mean.max() > 0.8


@pytest.mark.parametrize("name, overrides, norm", [
    ("wgan-gp", {}, "layer"),  # LayerNorm: each image normalised alone, so the penalty stays per image
    ("wgan-gp", {"preset": "paper"}, "none"),
    ("wgan", {}, "batch"),  # BatchNorm by default (experiments/results/defaults_search.md), as the collections
    ("wgan", {"critic_norm": "none"}, "none"),
])
def test_which_wgan_critics_normalise_and_how(name, overrides, norm):
    state = registry.get(name).build(tiny_config(name, **overrides)).init(jax.random.key(0))
    layers = {"conv1", "conv2", "fc1", "fc2"} | ({"bn2", "bn3"} if norm != "none" else set())
    assert set(state.d_params) == layers
    assert bool(jax.tree.leaves(state.d_rest)) == (norm == "batch")  # running statistics only with BatchNorm
    assert set(state.d_params["fc2"]) == {"kernel"}


def test_wgan_critic_outputs_its_last_layer_unsquashed():
    """The critic value is the last layer's product itself: no sigmoid (nor any other squashing)."""
    critic = wgan.make_critic(tiny_config("wgan"), nnx.Rngs(0))
    critic.fc2.kernel[...] = 1e4 * critic.fc2.kernel[...]  # values far outside (0, 1)
    x = jax.random.uniform(jax.random.key(1), (8, 28, 28, 1), minval=-1, maxval=1)
    values, features = critic(x, train=True, features=True)
    np.testing.assert_allclose(np.asarray(values), np.asarray(features @ critic.fc2.kernel[...])[:, 0], rtol=1e-6)
    assert float(jnp.min(values)) < -1.0 and float(jnp.max(values)) > 1.0


def stacked(real, k):
    images, labels = real
    return images[:k * B].reshape(k, B, 28, 28, 1), labels[:k * B].reshape(k, B)


def test_weight_clipping_keeps_every_critic_parameter_in_range_after_a_step(real):
    assert config.make_config("wgan", {}).clip == 0.01
    clip = 0.003  # not the default: the model reads --clip
    cfg = tiny_config("wgan", batch_size=B, clip=clip, preset="paper")  # RMSProp and 5 critic updates
    model = registry.get("wgan").build(cfg)
    state = model.init(jax.random.key(0))
    state = state._replace(d_params=jax.tree.map(lambda w: 10 * w + 0.05, state.d_params))  # far outside
    new_state, _ = jax.jit(model.step)(state, *stacked(real, 5), jax.random.key(1))
    for path, w in jax.tree_util.tree_leaves_with_path(new_state.d_params):
        w = np.asarray(w)
        assert w.min() >= -clip and w.max() <= clip, jax.tree_util.keystr(path)
    # Clipping was active (after the last update, weights the gradient pushed inwards sit just inside).
    at_bound = np.concatenate([np.ravel(np.abs(w) == np.float32(clip)) for w in jax.tree.leaves(new_state.d_params)])
    assert at_bound.mean() > 0.25  # 46% with this seed


def test_n_critic_takes_five_batches_per_step_and_updates_g_once(real):
    cfg = tiny_config("wgan-gp", batch_size=B, subset=1000, preset="paper")
    assert cfg.n_critic == 5 and config.steps_per_epoch(cfg) == 1000 // (5 * B)
    model = registry.get("wgan-gp").build(cfg)
    assert model.batches_per_step == 5
    step = jax.jit(model.step)
    state = model.init(jax.random.key(0))
    images, labels = stacked(real, 5)
    new_state, _ = step(state, images, labels, jax.random.key(1))
    assert int(new_state.d_opt[0].count) == 5 and int(new_state.g_opt[0].count) == 1  # Adam's update counts
    for i in range(5):  # every one of the five batches is used
        changed, _ = step(state, images.at[i].set(-images[i]), labels, jax.random.key(1))
        assert not np.array_equal(np.asarray(changed.d_params["fc2"]["kernel"]),
                                  np.asarray(new_state.d_params["fc2"]["kernel"])), f"batch {i} unused"
