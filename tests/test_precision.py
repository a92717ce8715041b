"""--precision bf16: bfloat16 products with float32 accumulation in the training step, float32 weights."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_lab import nets, precision, registry, study, trainer
from tests.helpers import TINY_FLAGS, TINY_SUBSET, call_cli, real_subset, tiny_config

MODELS = registry.names()


def test_mixed_dot_is_the_float32_product_to_bfloat16_rounding_and_its_gradients_too():
    a = jax.random.normal(jax.random.key(0), (64, 300)) / 300 ** 0.5  # products of order 1
    b = jax.random.normal(jax.random.key(1), (300, 40))

    def loss(product, a, b):
        return jnp.sum(jnp.sin(product(a, b)))

    exact = loss(jnp.dot, a, b), *jax.grad(loss, (1, 2))(jnp.dot, a, b)
    mixed = loss(precision.mixed_dot, a, b), *jax.grad(loss, (1, 2))(precision.mixed_dot, a, b)
    for got, want in zip(mixed, exact):
        assert got.dtype == jnp.float32  # float32 inputs get float32 gradients (a weight's is not rounded)
        # bfloat16 keeps 8 significant bits: the results agree to about 1%, not exactly.
        assert 0 < float(jnp.abs(got - want).max()) < 0.02 * float(jnp.abs(want).max())
    # The backward products are bfloat16 too (three bf16 dots: forward, d_a, d_b), accumulated in float32.
    text = jax.jit(jax.grad(lambda a, b: loss(precision.mixed_dot, a, b), (0, 1))).lower(a, b).as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line]
    assert len(dots) == 3 and all(line.count("bf16>") == 2 and line.rstrip().endswith("f32>") for line in dots)


def test_a_bfloat16_activation_gets_a_bfloat16_gradient():
    a = jax.random.normal(jax.random.key(0), (8, 16)).astype(jnp.bfloat16)
    b = jax.random.normal(jax.random.key(1), (16, 4))
    d_a, d_b = jax.grad(lambda a, b: precision.mixed_dot(a, b).sum(), (0, 1))(a, b)
    assert d_a.dtype == jnp.bfloat16 and d_b.dtype == jnp.float32


def test_outside_the_context_every_layer_is_plain_float32():
    assert precision.compute_dtype() is None
    with precision.computing_in("bf16"):
        assert precision.compute_dtype() == jnp.bfloat16
        with precision.computing_in("f32"):
            assert precision.compute_dtype() is None
        assert precision.compute_dtype() == jnp.bfloat16
    assert precision.compute_dtype() is None
    x = jnp.ones((2, 3))
    assert precision.to_compute(x) is x


@pytest.mark.parametrize("form", sorted(nets.CONV_FORMS))
def test_both_convolution_forms_multiply_in_bfloat16_under_the_context_and_agree_with_float32(form):
    down, up = nets.CONV_FORMS[form]
    x = jax.random.normal(jax.random.key(0), (4, 14, 14, 8))
    kernel = 0.1 * jax.random.normal(jax.random.key(1), (4, 4, 8, 16))
    bias = jnp.zeros(16)
    for layer, inputs in ((down, x), (up, x)):
        def loss(x, kernel, mixed):
            if mixed:
                with precision.computing_in("bf16"):
                    return jnp.sum(layer(x, kernel, bias) ** 2)
            return jnp.sum(layer(x, kernel, bias) ** 2)

        gradients = jax.jit(jax.grad(loss, (0, 1)), static_argnums=2)  # as training runs it
        exact = gradients(inputs, kernel, False)
        mixed = gradients(inputs, kernel, True)
        for got, want in zip(mixed, exact):
            assert got.dtype == jnp.float32
            relative = float(jnp.abs(got - want).max() / jnp.abs(want).max())
            assert 0 < relative < 0.02
        assert "bf16" in gradients.lower(inputs, kernel, True).as_text()


def step_inputs(model, cfg, images, labels):
    k, batch = model.batches_per_step, cfg.batch_size
    shape = (k, batch) if k > 1 else (batch,)
    return (model.init(jax.random.key(0)), images[: k * batch].reshape(*shape, *images.shape[1:]),
            labels[: k * batch].reshape(shape), jax.random.key(1))


@pytest.mark.parametrize("name", MODELS)
def test_every_models_step_multiplies_in_bfloat16_and_keeps_its_state_float32(name, data_dir):
    images, labels = real_subset(data_dir, "mnist", TINY_SUBSET)  # at --preset paper a WGAN's step takes 5 batches of 32
    f32 = registry.get(name).build(tiny_config(name))
    bf16 = registry.get(name).build(tiny_config(name, precision="bf16"))
    inputs = step_inputs(f32, tiny_config(name), images, labels)
    assert "bf16" not in str(jax.make_jaxpr(f32.step)(*inputs))
    assert "bf16" in str(jax.make_jaxpr(bf16.step)(*inputs))
    state, _ = jax.eval_shape(bf16.step, *inputs)
    assert {leaf.dtype for leaf in jax.tree.leaves(state) if jnp.issubdtype(leaf.dtype, jnp.floating)} == {
        jnp.dtype(jnp.float32)}
    # Sampling is float32 whatever the training precision: one checkpoint, one sampler.
    sample_f32, sample_bf16 = (jax.make_jaxpr(lambda s, m=m: m.sample(s, jax.random.key(2), 4,
                               jnp.arange(4) if m.conditional else None))(inputs[0]) for m in (f32, bf16))
    assert "bf16" not in str(sample_bf16) and str(sample_bf16) == str(sample_f32)


@pytest.mark.parametrize("name", ["dcgan", "vae"])
def test_bfloat16_training_follows_the_float32_run_closely_but_not_exactly(name, data_dir):
    images, labels = real_subset(data_dir, "mnist", TINY_SUBSET)
    histories = {}
    for mode in ("f32", "bf16"):
        cfg = tiny_config(name, precision=mode, steps=4, log_every=1)
        model = registry.get(name).build(cfg)
        history = []
        trainer.fit(model, cfg, images, labels, show_progress=False,
                  on_log=lambda step, epoch, values, rate: history.append(values))
        histories[mode] = history
    for key in histories["f32"][0]:
        exact = np.array([h[key] for h in histories["f32"]])
        mixed = np.array([h[key] for h in histories["bf16"]])
        assert np.isfinite(mixed).all()
        np.testing.assert_allclose(mixed, exact, rtol=0.05, atol=0.02)
    assert any(h32 != h16 for h32, h16 in zip(histories["f32"], histories["bf16"]))


def test_a_study_in_bf16_has_its_own_setting_and_an_f32_one_keeps_its_old_name():
    f32 = study.training_settings(1, 0.5, None)
    assert "precision" not in f32  # studies started before --precision existed continue unchanged
    assert study.setting_tag(f32, 10000, 2) == "e1-w0.5-sNone-ev10000x2"
    bf16 = study.training_settings(1, 0.5, None, "bf16")
    assert study.setting_tag(bf16, 10000, 2) == "e1-w0.5-sNone-ev10000x2-bf16"
    assert study.job_config(study.Job("dcgan", "mnist", 0), bf16).precision == "bf16"


def test_cli_records_the_precision_and_a_resume_cannot_change_it(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    # The shape the bf16 training test above trains dcgan at: one compilation of this step for the suite.
    common = (*TINY_FLAGS, "--data-dir", str(data_dir))
    done = call_cli("train", "dcgan", "--precision", "bf16", "--steps", "2", "--out", str(run_dir), *common)
    assert done.returncode == 0, done.stderr
    assert json.loads((run_dir / "config.json").read_text())["config"]["precision"] == "bf16"
    changed = call_cli("train", "--resume", str(run_dir), "--precision", "f32", "--steps", "3")
    assert changed.returncode != 0 and len(changed.stderr.strip().splitlines()) == 1
    assert "precision" in changed.stderr
    bad = call_cli("train", "dcgan", "--precision", "fp8", *common)
    assert bad.returncode != 0 and "f32, bf16" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
