"""experiments/torch_reference.py computes gan_lab's DCGAN step: with gan_lab's weights copied in and
the same batch and z, both frameworks give the same G images, D logits, losses and BN statistics."""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parents[1] / "experiments"))
import torch_reference as ref  # noqa: E402

from gan_lab import config, data, nets, registry  # noqa: E402
from gan_lab.models.adversarial import critic_keys  # noqa: E402

# Odd channel counts (19, 38, 307) catch any NHWC/NCHW mix-up that equal sizes would hide.
WIDTH = 0.3
BATCH = 16
TOL = dict(rtol=1e-4, atol=2e-5)


@pytest.fixture(scope="module")
def setup(data_dir):
    cfg = config.make_config("dcgan", {"width": WIDTH, "batch_size": BATCH})
    model = registry.get("dcgan").build(cfg)
    # Any weights will do; an "rbg" key compiles the initialiser in a third of threefry's time.
    state = jax.jit(model.init)(jax.random.key(0, impl="rbg"))
    images, labels = data.load_split("mnist", "test", data_dir=data_dir, download=False)
    real_images = data.to_model_range(images[:BATCH])  # (B, 28, 28, 1) in [-1, 1]
    torch_g, torch_d = ref.Generator(cfg.z_dim, WIDTH), ref.Discriminator(1, WIDTH)
    ref.copy_gan_lab_weights(torch_g, torch_d, state.g_params, state.g_rest, state.d_params, state.d_rest)
    return cfg, model, state, real_images, labels[:BATCH].astype(np.int32), torch_g, torch_d


def test_parameter_counts_match(setup):
    _, _, state, _, _, torch_g, torch_d = setup
    count = lambda params: sum(leaf.size for leaf in jax.tree.leaves(params))  # noqa: E731
    assert count(state.g_params) == ref.parameter_count(torch_g)
    assert count(state.d_params) == ref.parameter_count(torch_d)


def test_train_mode_forward_matches(setup):
    cfg, _, state, real_images, _, torch_g, torch_d = setup
    g_def = nets.graphdef_of(lambda: nets.Generator(cfg.z_dim, WIDTH, nnx.Rngs(0)))
    d_def = nets.graphdef_of(lambda: nets.Discriminator(1, WIDTH, nnx.Rngs(0)))
    z = np.random.RandomState(0).randn(BATCH, cfg.z_dim).astype(np.float32)

    train_mode_forward = jax.jit(lambda graphdef, params, rest, x: nets.apply(graphdef, params, rest, x, train=True)[0],
                                 static_argnums=0)
    fake = train_mode_forward(g_def, state.g_params, state.g_rest, z)
    logits = train_mode_forward(d_def, state.d_params, state.d_rest, real_images)
    torch_g.train(), torch_d.train()
    with torch.no_grad():
        torch_fake = torch_g(torch.from_numpy(z)).permute(0, 2, 3, 1).numpy()
        torch_logits = torch_d(ref.nhwc_to_nchw(real_images)).numpy()
    np.testing.assert_allclose(np.asarray(fake), torch_fake, **TOL)
    np.testing.assert_allclose(np.asarray(logits), torch_logits, **TOL)


def test_one_training_step_matches(setup):
    cfg, model, state, real_images, labels, _, _ = setup
    # Fresh torch modules: the forward test above moved the BN statistics of the shared ones.
    torch_g, torch_d = ref.Generator(cfg.z_dim, WIDTH), ref.Discriminator(1, WIDTH)
    ref.copy_gan_lab_weights(torch_g, torch_d, state.g_params, state.g_rest, state.d_params, state.d_rest)
    key = jax.random.key(7)
    latent_key, _ = critic_keys(key, 0)
    z = np.array(jax.random.normal(latent_key, (BATCH, cfg.z_dim)))  # the z gan_lab's step draws from `key`

    new_state, metrics = jax.jit(model.step)(state, real_images, labels, key)
    d_loss, g_loss = ref.make_step(torch_g, torch_d, cfg.lr, (cfg.b1, cfg.b2))(
        ref.nhwc_to_nchw(real_images), torch.from_numpy(z)
    )
    np.testing.assert_allclose(float(metrics["d_loss"]), d_loss.item(), rtol=1e-5)
    # g_loss is read through the *updated* D, so it also checks that both took the same D step.
    np.testing.assert_allclose(float(metrics["g_loss"]), g_loss.item(), rtol=1e-5)

    # G ran in train mode twice in both: its BN running means moved twice from the same start.
    expected_mean = np.asarray(new_state.g_rest["bn3"]["mean"])
    np.testing.assert_allclose(torch_g.bn3.running_mean.numpy(), expected_mean, rtol=1e-4, atol=1e-6)
    assert not np.allclose(expected_mean, np.asarray(state.g_rest["bn3"]["mean"]))
    # The updated D weights agree (Adam's first step is ~lr * sign(grad), so this checks D's gradient).
    torch_conv2 = torch_d.conv2.weight.detach().permute(2, 3, 1, 0).numpy()  # OIHW -> HWIO
    np.testing.assert_allclose(np.asarray(new_state.d_params["conv2"]["kernel"]), torch_conv2, atol=2e-6)


def test_generator_forward_once_gives_the_same_losses_and_weights(setup):
    """The benchmark's like-for-like PyTorch row (G's forward reused, as in gan_lab) trains the same."""
    cfg, _, state, real_images, _, _, _ = setup
    builds = []
    for once in (False, True):
        torch_g, torch_d = ref.Generator(cfg.z_dim, WIDTH), ref.Discriminator(1, WIDTH)
        ref.copy_gan_lab_weights(torch_g, torch_d, state.g_params, state.g_rest, state.d_params, state.d_rest)
        step = ref.make_step(torch_g, torch_d, cfg.lr, (cfg.b1, cfg.b2), generator_forward_once=once)
        z = torch.from_numpy(np.random.RandomState(1).randn(BATCH, cfg.z_dim).astype(np.float32))
        losses = step(ref.nhwc_to_nchw(real_images), z)
        builds.append((losses, torch_g))
    (plain_losses, plain_g), (once_losses, once_g) = builds
    np.testing.assert_allclose([x.item() for x in once_losses], [x.item() for x in plain_losses], rtol=1e-6)
    for (name, a), b in zip(plain_g.named_parameters(), once_g.parameters()):
        # Biases in front of a BatchNorm get rounding-noise gradients that Adam turns into ~lr steps.
        atol = 3 * cfg.lr if name.endswith("bias") and not name.startswith("bn") else 1e-6
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), atol=atol, err_msg=name)


def test_wgan_gp_step_matches(data_dir):
    """The benchmark's PyTorch WGAN-GP step does gan_lab's work: with the same weights, real batches,
    latents and interpolation coefficients, its n_critic critic updates (each with the penalty's
    double backward) and G update give gan_lab's losses and updated weights."""
    from gan_lab.models.penalties import per_sample_uniform

    cfg = config.make_config("wgan-gp", {"width": WIDTH, "batch_size": BATCH, "preset": "paper"})  # bench.py's
    model = registry.get("wgan-gp").build(cfg)
    state = jax.jit(model.init)(jax.random.key(0, impl="rbg"))
    images, labels = data.load_split("mnist", "test", data_dir=data_dir, download=False)
    n = cfg.n_critic * BATCH
    real = data.to_model_range(images[:n]).reshape(cfg.n_critic, BATCH, 28, 28, 1)
    labels = labels[:n].astype(np.int32).reshape(cfg.n_critic, BATCH)
    torch_g, critic = ref.Generator(cfg.z_dim, WIDTH), ref.Discriminator(1, WIDTH, batch_norm=False, output_bias=False)
    ref.copy_gan_lab_weights(torch_g, critic, state.g_params, state.g_rest, state.d_params, state.d_rest)
    assert ref.parameter_count(critic) == sum(leaf.size for leaf in jax.tree.leaves(state.d_params))

    key = jax.random.key(3)
    zs, alphas = [], []
    for i in range(cfg.n_critic):  # the numbers gan_lab's step draws from `key`
        latent_key, penalty_key = critic_keys(key, i)
        zs.append(np.array(jax.random.normal(latent_key, (BATCH, cfg.z_dim))))
        alphas.append(np.array(per_sample_uniform(penalty_key, real[i])).transpose(0, 3, 1, 2))
    new_state, metrics = jax.jit(model.step)(state, real, labels, key)
    step = ref.make_wgan_gp_step(torch_g, critic, cfg.lr, (cfg.b1, cfg.b2), cfg.n_critic, cfg.gp_weight)
    d_loss, g_loss = step(torch.stack([ref.nhwc_to_nchw(batch) for batch in real]),
                          torch.from_numpy(np.stack(zs)), torch.from_numpy(np.stack(alphas)))
    assert float(metrics["gradient_penalty"]) > 0
    np.testing.assert_allclose(float(metrics["d_loss"]), d_loss.item(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(metrics["g_loss"]), g_loss.item(), rtol=1e-4, atol=1e-5)
    # After 5 Adam updates without momentum (b1 = 0) each weight has moved by up to 5 lr; where a
    # gradient is near 0, g / sqrt(v) turns float rounding into a visible part of lr, so a quarter of
    # lr is the tolerance (a wrong gradient moves weights by ~lr per update, in the wrong direction).
    torch_conv2 = critic.conv2.weight.detach().permute(2, 3, 1, 0).numpy()  # OIHW -> HWIO
    moved = np.abs(np.asarray(new_state.d_params["conv2"]["kernel"]) - np.asarray(state.d_params["conv2"]["kernel"]))
    assert np.median(moved) > 2 * cfg.lr
    np.testing.assert_allclose(np.asarray(new_state.d_params["conv2"]["kernel"]), torch_conv2, atol=cfg.lr / 4)
