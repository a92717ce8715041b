"""ACGAN and infoGAN: the losses their heads add, the latent infoGAN draws, and that its categorical
code, learned without labels, ends up choosing the digit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_lab import evaluator, registry, sampling, trainer
from gan_lab.models import acgan, adversarial, infogan
from gan_lab.models.adversarial import Batch
from tests.helpers import TINY_FLAGS, real_subset, tiny_config


def softplus(x):
    return np.log1p(np.exp(x))


def cross_entropy(logits, label):
    return np.log(np.sum(np.exp(logits))) - logits[label]


def test_acgan_losses_count_the_class_on_real_and_fake_images():
    real_logits, fake_logits = np.array([2.0, -1.0]), np.array([0.5, -0.5])
    real_classes = np.zeros((2, 10))  # uniform: CE = log 10 whatever the label
    fake_classes = np.zeros((2, 10))
    fake_classes[0, 3], fake_classes[1, 7] = 2.0, -1.0
    labels = np.array([3, 4])
    d_loss, g_loss = acgan.acgan_losses(class_weight=1.0)  # the paper's
    batch = Batch(None, None, jnp.asarray(labels), None)
    fake_ce = np.mean([cross_entropy(fake_classes[i], labels[i]) for i in range(2)])

    loss, metrics, _ = d_loss((jnp.asarray(real_logits), jnp.asarray(real_classes)),
                              (jnp.asarray(fake_logits), jnp.asarray(fake_classes)), batch, ())
    expected = np.mean(softplus(-real_logits)) + np.mean(softplus(fake_logits)) + np.log(10) + fake_ce
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(metrics["class_real"]) == pytest.approx(np.log(10), rel=1e-6)
    assert float(metrics["class_fake"]) == pytest.approx(fake_ce, rel=1e-6)

    loss, _ = g_loss((jnp.asarray(fake_logits), jnp.asarray(fake_classes)), batch, ())
    assert float(loss) == pytest.approx(np.mean(softplus(-fake_logits)) + fake_ce, rel=1e-6)

    # --class-weight scales the class terms of both losses, and only them.
    d_weighted, g_weighted = acgan.acgan_losses(class_weight=0.25)
    loss, _, _ = d_weighted((jnp.asarray(real_logits), jnp.asarray(real_classes)),
                            (jnp.asarray(fake_logits), jnp.asarray(fake_classes)), batch, ())
    assert float(loss) == pytest.approx(np.mean(softplus(-real_logits)) + np.mean(softplus(fake_logits)) +
                                        0.25 * (np.log(10) + fake_ce), rel=1e-6)
    loss, _ = g_weighted((jnp.asarray(fake_logits), jnp.asarray(fake_classes)), batch, ())
    assert float(loss) == pytest.approx(np.mean(softplus(-fake_logits)) + 0.25 * fake_ce, rel=1e-6)


@pytest.mark.parametrize("name", ["acgan", "cgan"])
def test_conditional_models_draw_every_class_and_the_label_reaches_g(name):
    model = registry.get(name).build(tiny_config(name))
    state = model.init(jax.random.key(0))
    images, used = sampling.export_samples(model, state, jax.random.key(1), 20)
    assert used.tolist() == [i % 10 for i in range(20)]
    z = jnp.tile(model.prior(jax.random.key(2), 1), (10, 1))  # one z, each label
    one_z = np.asarray(jax.jit(model.decode)(state, z, jnp.arange(10)))  # jitted, as sampling runs it
    assert all(not np.allclose(one_z[a], one_z[b]) for a in range(10) for b in range(a + 1, 10))


def test_infogan_latent_is_noise_then_one_hot_category_then_codes_in_range():
    model = registry.get("infogan").build(tiny_config("infogan"))
    z_dim = tiny_config("infogan").z_dim
    latent = np.asarray(model.prior(jax.random.key(0), 2000))
    assert latent.shape == (2000, z_dim + 12) and model.z_dim == z_dim + 12
    category, continuous = latent[:, z_dim:z_dim + 10], latent[:, z_dim + 10:]
    assert set(np.unique(category).tolist()) == {0.0, 1.0} and np.all(category.sum(1) == 1)
    assert np.all(np.bincount(category.argmax(1), minlength=10) > 150)  # uniform: 200 expected each
    assert continuous.min() >= -1 and continuous.max() <= 1
    assert continuous.min() < -0.95 and continuous.max() > 0.95 and abs(continuous.mean()) < 0.05
    assert abs(latent[:, :z_dim].std() - 1) < 0.05  # z ~ N(0, 1)
    category_code, *continuous_codes = model.codes
    assert (category_code.start, category_code.size, category_code.kind) == (z_dim, 10, "categorical")
    assert [(c.start, c.size, c.kind) for c in continuous_codes] == [(z_dim + 10, 1, "uniform"),
                                                                    (z_dim + 11, 1, "uniform")]


def network_gradients(info_weight):
    """Gradients of D's loss (w.r.t. D) and of G's loss (w.r.t. G) at one fixed point."""
    parts = infogan.infogan_parts(tiny_config("infogan", info_weight=info_weight))
    nn = adversarial.networks(parts)
    state = adversarial.init_state(parts, jax.random.key(0))
    real = jax.random.uniform(jax.random.key(1), (16, 28, 28, 1), minval=-1, maxval=1)
    labels = jnp.zeros(16, jnp.int32)
    latent = nn.sample_latent(jax.random.key(2), 16)
    fake, _ = nn.generate(state.g_params, state.g_rest, latent, labels, train=True)

    def d_objective(d_params):
        real_out, rest = nn.discriminate(d_params, state.d_rest, real, labels)
        fake_out, _ = nn.discriminate(d_params, rest, fake, labels)
        return parts.d_loss(real_out, fake_out, Batch(real, fake, labels, latent), ())[0]

    def g_objective(g_params):
        images, _ = nn.generate(g_params, state.g_rest, latent, labels, train=True)
        fake_out, _ = nn.discriminate(state.d_params, state.d_rest, images, labels)
        return parts.g_loss(fake_out, Batch(None, images, labels, latent), ())[0]

    return jax.grad(d_objective)(state.d_params), jax.grad(g_objective)(state.g_params)


def leaf_names(tree):
    return {jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(tree)}


def differing_leaves(a, b):
    return {jax.tree_util.keystr(path) for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a),
                                                                jax.tree.leaves(b)) if not np.array_equal(x, y)}


def test_mutual_information_term_reaches_both_networks():
    (d_with, g_with), (d_without, g_without) = network_gradients(1.0), network_gradients(0.0)
    q_head = ("q_fc", "q_bn", "q_out")
    # Without the term the Q head has no loss at all; with it, every Q parameter is trained by D's loss.
    assert all(not np.any(leaf) for key in q_head for leaf in jax.tree.leaves(d_without[key]))
    assert all(np.any(leaf) for key in q_head for leaf in jax.tree.leaves(d_with[key]))
    # The term moves G's every layer (G learns to write the codes Q reads) and every layer of D's trunk
    # below its features, which Q reads; only the real/fake output layer (trunk.fc2) is beyond its reach.
    assert differing_leaves(g_with, g_without) == leaf_names(g_with)
    trunk_with, trunk_without = d_with["trunk"], d_without["trunk"]
    assert differing_leaves(trunk_with, trunk_without) == {n for n in leaf_names(trunk_with) if "fc2" not in n}


def test_code_rows_set_one_code_per_row_and_keep_the_latent_per_column(monkeypatch):
    model = registry.get("infogan").build(tiny_config("infogan"))
    monkeypatch.setattr(sampling, "decoder", lambda model: model.decode)  # uncompiled, to record what it is asked
    asked = []
    recording = model._replace(decode=lambda state, z, labels=None: asked.append(np.asarray(z)) or
                               model.decode(state, z, labels))
    code = model.codes[0]
    images = sampling.code_rows(recording, model.init(jax.random.key(0)), jax.random.key(1), 4, code, np.eye(10))
    latents = asked[0].reshape(10, 4, -1)
    assert images.shape == (10, 4, 28, 28, 1)
    assert np.array_equal(latents[:, :, code.start:code.start + 10].argmax(-1), np.repeat(np.arange(10)[:, None], 4, 1))
    rest = np.delete(latents, np.s_[code.start:code.start + 10], axis=-1)
    assert all(np.array_equal(rest[0], rest[row]) for row in range(10))


def test_infogan_categorical_code_chooses_the_digit_after_short_training(data_dir):
    """~45 s on 2 busy cores: 250 steps at width 0.125 with raised learning rates on real MNIST. Then 40
    fixed latents are decoded with each of the 10 code values and the shipped evaluator names the digits.
    Learned without labels, the code must change the digit of (nearly) every latent, to several digits.
    Without the information term (info_weight 0) the same run gives 1.4 digits per latent and changes
    the digit of 28% of them (measured), so both bounds below fail."""
    images, labels = real_subset(data_dir, "mnist", 4096)
    cfg = tiny_config("infogan", batch_size=64, lr=1e-3, g_lr=2e-3, steps=250, epochs=4, log_every=50)
    model = registry.get("infogan").build(cfg)
    loop = trainer.fit(model, cfg, images, labels, show_progress=False)
    rows = sampling.code_rows(model, loop.model, jax.random.key(7), 40, model.codes[0], np.eye(10))
    digits = evaluator.load_evaluator("mnist").logits(np.asarray(rows).reshape(-1, 28, 28, 1)).argmax(1)
    digits_per_latent = np.array([len(set(column)) for column in digits.reshape(10, 40).T])
    assert np.mean(digits_per_latent > 1) >= 0.8, digits.reshape(10, 40)
    assert digits_per_latent.mean() >= 4, digits.reshape(10, 40)


def test_infogan_sample_sheets_through_the_cli(tmp_path, data_dir, capsys):
    """In-process (cli.main): a 2-step run, then its wardrobe (a row per code value) and code walks."""
    from gan_lab import cli

    run_dir = tmp_path / "run"
    assert cli.main(["train", "infogan", "--dataset", "mnist", *TINY_FLAGS, "--epochs", "1", "--steps", "2",
                     "--no-progress", "--out", str(run_dir),
                     "--data-dir", str(data_dir)]) == 0, capsys.readouterr().err
    for sheet in ("wardrobe", "codes"):
        assert cli.main(["sample", str(run_dir), "--sheet", sheet, "--out", str(tmp_path / sheet)]) == 0, \
            capsys.readouterr().err
        assert (tmp_path / f"{sheet}.png").stat().st_size > 0
