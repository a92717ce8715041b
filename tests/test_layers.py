"""nets' matmul-based 4x4 stride-2 layers are drop-in replacements for the plain Flax layers: same
parameters (names, shapes, initial values), same outputs, same gradients w.r.t. input and params."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gan_lab import nets
from gan_lab.errors import UserError


# (fast, plain, input shape NHWC, out channels): the model's shapes, odd channel counts, non-square
# inputs (odd-sized for the transposed convolution), and single-channel ends (D's input, G's output).
CASES = [
    pytest.param(nets.conv_down, nets.plain_conv_down, (3, 28, 28, 1), 64, id="down-28x28-1to64"),
    pytest.param(nets.conv_down, nets.plain_conv_down, (2, 14, 14, 19), 37, id="down-14x14-19to37"),
    pytest.param(nets.conv_down, nets.plain_conv_down, (2, 10, 6, 5), 3, id="down-10x6-5to3"),
    pytest.param(nets.conv_up, nets.plain_conv_up, (3, 7, 7, 38), 19, id="up-7x7-38to19"),
    pytest.param(nets.conv_up, nets.plain_conv_up, (2, 14, 14, 19), 1, id="up-14x14-19to1"),
    pytest.param(nets.conv_up, nets.plain_conv_up, (2, 5, 3, 3), 7, id="up-5x3-3to7"),
]


def rngs():
    # An "rbg" key: threefry's initialiser compiles anew for every kernel shape (~1 s each).
    return nnx.Rngs(jax.random.key(3, impl="rbg"))


def layer_pair(fast, plain, n_in, n_out):
    """Both layers from the same seed, with a random (nonzero) bias so the bias path is tested too."""
    fast_layer, plain_layer = fast(n_in, n_out, rngs()), plain(n_in, n_out, rngs())
    bias = jnp.asarray(np.random.RandomState(4).randn(n_out), jnp.float32)
    fast_layer.bias[...] = bias
    plain_layer.bias[...] = bias
    return fast_layer, plain_layer


def output_and_grads(layer, x, cotangent):
    """(layer(x), d<layer(x), cotangent>/dx, d<...>/dparams) as pure arrays, in one compiled call."""
    graphdef, params = nnx.split(layer, nnx.Param)

    @jax.jit
    def run(params, x, cotangent):
        out, pullback = jax.vjp(lambda params, x: nnx.merge(graphdef, params)(x), params, x)
        return (out, *pullback(cotangent))

    out, params_grad, x_grad = run(params, x, cotangent)
    return out, x_grad, nnx.to_pure_dict(params_grad)


@pytest.mark.parametrize("fast, plain, shape, n_out", CASES)
def test_same_parameters_as_plain_layer(fast, plain, shape, n_out):
    fast_params = nnx.to_pure_dict(nnx.state(fast(shape[-1], n_out, rngs()), nnx.Param))
    plain_params = nnx.to_pure_dict(nnx.state(plain(shape[-1], n_out, rngs()), nnx.Param))
    assert jax.tree.structure(fast_params) == jax.tree.structure(plain_params)
    assert fast_params["kernel"].shape == (4, 4, shape[-1], n_out)
    # Same initial values from the same seed: a model keeps its weights, not just their shapes.
    jax.tree.map(np.testing.assert_array_equal, fast_params, plain_params)


@pytest.mark.parametrize("form", ["matmul", "native"])
@pytest.mark.parametrize("fast, plain, shape, n_out", CASES)
def test_forward_and_gradients_match_plain_layer(fast, plain, shape, n_out, form, monkeypatch):
    """Both forms of the layers (CPU's matmul, a GPU's native convolution) against the plain Flax layers."""
    monkeypatch.setenv(nets.CONV_ENV, form)
    assert nets.conv_form() == form
    fast_layer, plain_layer = layer_pair(fast, plain, shape[-1], n_out)
    # numpy draws: a jax.random draw compiles anew for every shape, which would dominate this file.
    x = jnp.asarray(np.random.RandomState(1).randn(*shape), jnp.float32)
    out_shape = jax.eval_shape(plain_layer, x).shape
    cotangent = jnp.asarray(np.random.RandomState(2).randn(*out_shape), jnp.float32)

    fast_results = output_and_grads(fast_layer, x, cotangent)
    plain_results = output_and_grads(plain_layer, x, cotangent)
    for fast_value, plain_value in zip(jax.tree.leaves(fast_results), jax.tree.leaves(plain_results)):
        scale = float(jnp.max(jnp.abs(plain_value)))
        np.testing.assert_allclose(fast_value, plain_value, rtol=1e-5, atol=1e-5 * scale)
    assert fast_results[0].shape == out_shape



def test_the_form_is_chosen_per_backend_and_a_bad_choice_is_one_line(monkeypatch):
    monkeypatch.delenv(nets.CONV_ENV, raising=False)
    assert nets.conv_form() == ("matmul" if jax.default_backend() == "cpu" else "native")
    monkeypatch.setenv(nets.CONV_ENV, "cudnn")
    with pytest.raises(UserError, match="GAN_LAB_CONV='cudnn' is not one of auto, matmul, native"):
        nets.conv_form()


def test_odd_input_size_of_a_strided_conv_is_refused():
    layer = nets.conv_down(3, 4, rngs())
    with pytest.raises(ValueError, match="even spatial sizes, got 9x6"):
        layer(jnp.zeros((1, 9, 6, 3)))


def test_grouped_discriminator_call_equals_consecutive_calls():
    """D on [real; fake] with groups=2 gives the logits, BatchNorm statistics and parameter gradient
    of D on real, then D on fake."""
    graphdef, params, rest = nets.split_module(nets.Discriminator(1, 0.3, rngs()))
    real, fake = (jnp.asarray(np.random.RandomState(seed).uniform(-1, 1, (4, 28, 28, 1)), jnp.float32) for seed in (5, 6))

    def consecutive(params):
        real_logits, after_real = nets.apply(graphdef, params, rest, real, train=True)
        fake_logits, after_both = nets.apply(graphdef, params, after_real, fake, train=True)
        return jnp.sum(real_logits) - jnp.sum(fake_logits), (jnp.concatenate([real_logits, fake_logits]), after_both)

    def grouped(params):
        logits, after = nets.apply(graphdef, params, rest, jnp.concatenate([real, fake]), train=True, groups=2)
        return jnp.sum(logits[:4]) - jnp.sum(logits[4:]), (logits, after)

    expected = jax.jit(jax.grad(consecutive, has_aux=True))(params)
    actual = jax.jit(jax.grad(grouped, has_aux=True))(params)
    for actual_leaf, expected_leaf in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        # atol: a bias feeding BatchNorm has a gradient of rounding noise (~1e-6) in both versions.
        np.testing.assert_allclose(actual_leaf, expected_leaf, rtol=1e-5, atol=1e-5)


def test_statistics_after_second_pass_equals_running_the_generator_again():
    """The premise of reusing G's forward pass: in train mode a second pass over the same z gives
    the same images, and moves the running statistics as statistics_after_second_pass says."""
    graphdef, params, rest = nets.split_module(nets.Generator(6, 0.3, rngs()))
    z = jnp.asarray(np.random.RandomState(7).randn(8, 6), jnp.float32)
    run = jax.jit(lambda rest: nets.apply(graphdef, params, rest, z, train=True))
    first_images, after_one = run(rest)
    second_images, after_two = run(after_one)
    np.testing.assert_array_equal(first_images, second_images)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 nets.statistics_after_second_pass(rest, after_one), after_two)
    assert not np.allclose(after_two["bn3"]["mean"], after_one["bn3"]["mean"])
