"""EBGAN's pull-away term and margin, BEGAN's equilibrium k and convergence measure, SN-GAN's spectral
normalisation: each against hand-computed numbers or numpy's SVD."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gan_lab import checkpoint, nets, registry, trainer
from gan_lab.models import began, ebgan, sngan
from gan_lab.models.adversarial import Batch
from tests.helpers import real_subset, tiny_config


@pytest.fixture(scope="module")
def real(data_dir):
    return real_subset(data_dir, "mnist", 64)


def reconstruction(images):
    return ebgan.Reconstruction(jnp.asarray(images, jnp.float32), jnp.zeros((len(images), 4)))


# EBGAN


def test_pull_away_term_is_the_mean_squared_cosine_between_different_embeddings():
    # Unit directions (1, 0), (1, 1)/sqrt 2, (0, 1): cos^2 of the pairs are 1/2, 0, 1/2; each pair
    # counts twice among the 3 * 2 ordered pairs i != j: (2 * (1/2 + 0 + 1/2)) / 6 = 1/3.
    embeddings = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    assert float(ebgan.pull_away(embeddings)) == pytest.approx(1 / 3, rel=1e-6)
    # The sign and the length of an embedding do not matter; a repeated direction counts fully.
    assert float(ebgan.pull_away(jnp.array([[3.0, 0.0], [-0.5, 0.0]]))) == pytest.approx(1.0, rel=1e-6)


def test_pull_away_term_is_zero_for_orthogonal_embeddings():
    embeddings = jnp.diag(jnp.array([2.0, 3.0, 5.0, 0.5]))
    assert float(ebgan.pull_away(embeddings)) == 0.0


def test_ebgan_d_loss_on_fakes_vanishes_per_image_once_their_energy_exceeds_the_margin():
    d_loss, _ = ebgan.ebgan_losses(margin=1.0, pt_weight=0.1)
    real_images = jnp.zeros((2, 28, 28, 1))
    real_out = reconstruction(np.full((2, 28, 28, 1), 0.5))  # energy 0.25 each
    fake_images = jnp.zeros((2, 28, 28, 1))
    batch = Batch(real_images, fake_images, jnp.zeros(2, jnp.int32), None)

    def fake_loss(fake_values):  # D's loss minus the real images' part
        fake_out = reconstruction(np.stack([np.full((28, 28, 1), v) for v in fake_values]))
        loss, metrics, _ = d_loss(real_out, fake_out, batch, ())
        return float(loss) - 0.25, metrics

    above, metrics = fake_loss([1.5, 2.0])  # energies 2.25 and 4: both beyond m = 1
    assert above == 0.0 and float(metrics["d_fake"]) == pytest.approx((2.25 + 4.0) / 2)
    assert fake_loss([1.0, 3.0])[0] == pytest.approx(0.0, abs=1e-6)  # energy exactly m: no push either
    # Per image, not on the batch's mean energy (1.25 here, beyond m, which would give 0):
    # (max(0, 1 - 2.25) + max(0, 1 - 0.25)) / 2.
    assert fake_loss([1.5, 0.5])[0] == pytest.approx(0.75 / 2, rel=1e-5)


def test_ebgan_g_loss_is_the_fakes_energy_plus_the_weighted_pull_away_term():
    _, g_loss = ebgan.ebgan_losses(margin=1.0, pt_weight=0.1)
    embeddings = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    fake_out = ebgan.Reconstruction(jnp.full((3, 28, 28, 1), 0.5), embeddings)
    loss, metrics = g_loss(fake_out, Batch(None, jnp.zeros((3, 28, 28, 1)), None, None), ())
    assert float(loss) == pytest.approx(0.25 + 0.1 / 3, rel=1e-6)
    assert float(metrics["pull_away"]) == pytest.approx(1 / 3, rel=1e-6)


def test_a_batchnorm_d_reconstructs_every_collapsed_batch_alike_and_a_layernorm_d_does_not(real):
    """Why ebgan's D has LayerNorm (models/ebgan.py): G's batch collapsed to copies of one image leaves
    BatchNorm's normalised features at 0, so D's reconstruction is the same whatever that image is, and G
    can sit on it; LayerNorm normalises each image alone, so D still sees which image it is."""
    images, _ = real
    one_image, another = (jnp.repeat(images[i : i + 1], 8, axis=0) for i in (0, 1))
    for norm, alike in (("batch", True), ("layer", False)):
        d = ebgan.AutoencoderD(0.25, rngs=nnx.Rngs(0), norm=norm)
        first, second = d(one_image, train=True).images, d(another, train=True).images
        assert bool(jnp.allclose(first, second, atol=1e-5)) is alike, norm
        assert not jnp.allclose(d(one_image, train=True).embedding, d(another, train=True).embedding)  # the encoder sees it


# BEGAN


def began_step_by_hand(k, real_error, fake_error, gamma=0.5, lambda_k=0.001):
    return min(max(k + lambda_k * (gamma * real_error - fake_error), 0.0), 1.0)


@pytest.mark.parametrize("k, real_value, fake_value, lambda_k, expected_k", [
    # Errors that float32 holds exactly, so their means over the pixels are exact too.
    (0.3, 0.75, 0.125, 0.001, 0.3 + 0.001 * (0.5 * 0.75 - 0.125)),  # inside [0, 1]: the formula
    (0.3, 0.25, 0.875, 0.001, 0.3 + 0.001 * (0.5 * 0.25 - 0.875)),  # G's error too high: k falls
    (0.999, 0.75, 0.125, 0.1, 1.0),  # 0.999 + 0.025: clipped to 1
    (0.001, 0.25, 0.875, 0.1, 0.0),  # 0.001 - 0.075: clipped to 0
])
def test_began_k_follows_the_proportional_update_clipped_to_0_1(k, real_value, fake_value, lambda_k, expected_k):
    d_loss, g_loss = began.began_losses(gamma=0.5, lambda_k=lambda_k)
    # Images 0, reconstructions constant: L(x) = real_value, L(G(z)) = fake_value.
    zeros = jnp.zeros((2, 28, 28, 1))
    real_out, fake_out = reconstruction(np.full((2, 28, 28, 1), -real_value)), reconstruction(np.full((2, 28, 28, 1), fake_value))
    loss, metrics, new_k = d_loss(real_out, fake_out, Batch(zeros, zeros, None, None), jnp.float32(k))
    assert float(new_k) == pytest.approx(expected_k, abs=1e-6)
    assert float(loss) == pytest.approx(real_value - k * fake_value, abs=1e-6)  # with the old k
    assert float(metrics["k"]) == float(new_k)
    assert float(metrics["convergence"]) == pytest.approx(real_value + abs(0.5 * real_value - fake_value), abs=1e-6)
    assert float(g_loss(fake_out, Batch(None, zeros, None, None), jnp.float32(k))[0]) == pytest.approx(fake_value,
                                                                                                      abs=1e-6)


def test_began_l2_norm_error_is_the_batchs_frobenius_norm_over_its_size_and_l1_the_mean():
    """--reconstruction l2-norm is the TF collection's ||v - D(v)||_F / batch; l1 the paper's mean |v - D(v)|."""
    rng = np.random.default_rng(0)
    images, rebuilt = rng.uniform(-1, 1, (3, 28, 28, 1)), rng.uniform(-1, 1, (3, 28, 28, 1))
    out = reconstruction(rebuilt)
    l2 = float(began.reconstruction_error(jnp.asarray(images, jnp.float32), out, "l2-norm"))
    assert l2 == pytest.approx(np.linalg.norm((rebuilt - images).ravel()) / 3, rel=1e-5)
    assert float(began.reconstruction_error(jnp.asarray(images, jnp.float32), out)) == pytest.approx(
        np.mean(np.abs(rebuilt - images)), rel=1e-5)
    # An exact reconstruction: a zero error with a finite gradient (a bare norm's is NaN there).
    gradient = jax.grad(lambda x: began.reconstruction_error(x, reconstruction(np.zeros((2, 28, 28, 1))), "l2-norm"))(
        jnp.zeros((2, 28, 28, 1)))
    assert np.all(np.isfinite(np.asarray(gradient)))


def test_began_step_carries_k_in_the_state_and_logs_k_and_the_convergence_measure(real):
    images, labels = real
    cfg = tiny_config("began", epochs=1, log_every=1)
    model = registry.get("began").build(cfg)
    state = model.init(jax.random.key(0))
    assert float(state.extra) == 0.0  # k_0
    new_state, metrics = jax.jit(model.step)(state, images[:32], labels[:32], jax.random.key(1))
    real_error, fake_error = float(metrics["d_real"]), float(metrics["d_fake"])
    expected_k = began_step_by_hand(0.0, real_error, fake_error, cfg.gamma, cfg.lambda_k)
    assert float(new_state.extra) == pytest.approx(expected_k, abs=1e-7) and expected_k > 1e-5
    assert float(metrics["k"]) == float(new_state.extra)
    assert float(metrics["convergence"]) == pytest.approx(real_error + abs(cfg.gamma * real_error - fake_error),
                                                          abs=1e-6)

    logged = []  # through the loop, as a run logs them
    trainer.fit(model, cfg, images, labels, show_progress=False,
              on_log=lambda step, epoch, values, rate: logged.append(values))
    assert len(logged) == 2 and all({"k", "convergence"} <= set(values) for values in logged)
    assert all(0 < values["k"] < 1 and values["convergence"] > 0 for values in logged)


# SN-GAN


def weight_matrices(module):
    """Every kernel of `module` as the (fan_in, fan_out) matrix spectral normalisation sees."""
    return {path: np.asarray(v[...]).reshape(-1, v.shape[-1])
            for path, v in nnx.to_flat_state(nnx.state(module, nnx.Param)) if v.ndim >= 2}


def largest_singular_value(matrix):
    return float(np.linalg.svd(matrix, compute_uv=False)[0])


def test_every_sngan_d_weight_has_largest_singular_value_one_in_the_forward_pass(real):
    images, _ = real
    graphdef, params, rest = nets.split_module(sngan.spectral_norm_discriminator(0.125, nnx.Rngs(0)))
    forward = jax.jit(lambda rest: nets.apply(graphdef, params, rest, images[:8], train=True)[1])
    for _ in range(50):  # power iterations, one per pass
        rest = forward(rest)
    # nnx.SpectralNorm writes W / sigma into the wrapped layer's parameter before running it: after a
    # pass, the module holds the weights that pass used.
    module = nnx.merge(graphdef, params, rest, copy=True)
    module(images[:8], train=True)
    used = weight_matrices(module)
    raw = weight_matrices(nnx.merge(graphdef, params, rest, copy=True))
    assert len(used) == 4  # conv1, conv2, fc1, fc2: every layer of D
    for path, matrix in used.items():
        assert largest_singular_value(matrix) == pytest.approx(1.0, abs=1e-3), path
        assert abs(largest_singular_value(raw[path]) - 1.0) > 0.1, path  # the check is not vacuous
    assert not any(isinstance(v, nnx.BatchNorm) for _, v in nnx.iter_graph(module))  # no BatchNorm in D


def spectral_vectors(d_rest):
    return {path: np.asarray(v[...]) for path, v in nnx.to_flat_state(d_rest) if path[-1][-1] == "u"}


def test_sngan_u_vectors_change_in_a_train_step_and_are_saved_with_the_checkpoint(real, tmp_path):
    images, labels = real
    model = registry.get("sngan").build(tiny_config("sngan"))
    state = model.init(jax.random.key(0))
    new_state, _ = jax.jit(model.step)(state, images[:32], labels[:32], jax.random.key(1))
    before, after = spectral_vectors(state.d_rest), spectral_vectors(new_state.d_rest)
    assert len(after) == 4 and set(before) == set(after)
    # (fc2's u is (1, 1): +-1 after its first power iteration, and it stays so: a one-column matrix has
    # one right singular vector. From the random initial u it changes like the others.)
    assert all(not np.allclose(before[path], after[path]) for path in after), "a power iteration did not update u"

    manager = checkpoint.manager(tmp_path)
    checkpoint.save(manager, 1, new_state)
    manager.close()
    restored = checkpoint.restore_latest(tmp_path, checkpoint.abstract_like(model.init, jax.random.key(0))).state
    restored_u = spectral_vectors(restored.d_rest)
    assert set(restored_u) == set(after)
    assert all(np.array_equal(restored_u[path], after[path]) for path in after)
