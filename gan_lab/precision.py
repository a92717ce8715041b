"""Mixed precision: the networks' matrix products in bfloat16, everything else in float32.

With `--precision bf16` a model's training step multiplies in bfloat16 and accumulates in float32
(the products' outputs are float32), while its weights, optimizer state, BatchNorm, activations and
losses stay float32: the usual "bf16 mixed precision" of PyTorch's autocast or Flax's `dtype`
argument, without a loss scale (bfloat16 has float32's exponent range). Recent GPUs run such
products several times faster than float32 ones. XLA:CPU (jaxlib 0.10) does not: its compiler
gives 18 of the DCGAN step's 28 products, every backward one, float32 operands again (convert
fusions in front of float32 dots), so on a CPU the step mostly gains the casts' cost (0.83x and
0.96x the float32 step at batch 64 and 256 on an AMD EPYC with AVX512-BF16:
experiments/results/bench-dcgan-amd.md).

Only the training step changes: sampling, evaluation and the evaluator networks compute in float32
from the float32 weights, so a bf16-trained model's checkpoint is an ordinary one.

The layers read the precision while the step is traced (`computing_in`, a context like
`jax.default_matmul_precision`), so no model has to pass it down: a layer asks `matmul`, `to_compute`
or `conv_kwargs`, and outside the context they are plain float32.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import jax
import jax.numpy as jnp

# The --precision values: what they are called on the command line -> the products' input dtype.
PRECISIONS = {"f32": None, "bf16": jnp.bfloat16}

_compute_dtype: contextvars.ContextVar = contextvars.ContextVar("gan_lab_compute_dtype", default=None)


@contextlib.contextmanager
def computing_in(precision: str):
    """Within this block, layers traced multiply in `precision` ('f32' or 'bf16')."""
    token = _compute_dtype.set(PRECISIONS[precision])
    try:
        yield
    finally:
        _compute_dtype.reset(token)


def compute_dtype():
    """The dtype products take their inputs in (None: float32, nothing changes)."""
    return _compute_dtype.get()


def to_compute(x):
    """x in the products' input dtype: bfloat16 under bf16 (an activation that only feeds a product
    is cast before the gathers around it, which then move half the bytes), else x unchanged."""
    dtype = compute_dtype()
    return x if dtype is None else x.astype(dtype)


def _dtype_marker(x):
    return jnp.zeros((), x.dtype)  # a residual that carries an input's dtype to the backward pass


@jax.custom_vjp
def mixed_dot(a, b):
    """a (M, K) @ b (K, N) with bfloat16 inputs and a float32 result."""
    return jnp.dot(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), preferred_element_type=jnp.float32)


def _mixed_dot_forward(a, b):
    a16, b16 = a.astype(jnp.bfloat16), b.astype(jnp.bfloat16)
    out = jnp.dot(a16, b16, preferred_element_type=jnp.float32)
    return out, (a16, b16, _dtype_marker(a), _dtype_marker(b))


def _mixed_dot_backward(residuals, d_out):
    # Both backward products in bfloat16 too, accumulated in float32. Each gradient is returned in its
    # input's dtype: a float32 weight gets a float32 gradient (not one rounded to bfloat16, as the
    # gradient of a cast weight would be), a bfloat16 activation a bfloat16 one.
    a16, b16, a_marker, b_marker = residuals
    d16 = d_out.astype(jnp.bfloat16)
    d_a = jnp.dot(d16, b16.T, preferred_element_type=jnp.float32)
    d_b = jnp.dot(a16.T, d16, preferred_element_type=jnp.float32)
    return d_a.astype(a_marker.dtype), d_b.astype(b_marker.dtype)


mixed_dot.defvjp(_mixed_dot_forward, _mixed_dot_backward)


def matmul(a, b):
    """a (M, K) @ b (K, N) in the traced precision, with a float32 result."""
    return jnp.dot(a, b) if compute_dtype() is None else mixed_dot(a, b)


def linear_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None, **kwargs):
    """A `dot_general` for nnx.Linear (its `dot_general=` argument) that follows the traced precision."""
    (contracting_lhs, contracting_rhs), batch = dimension_numbers
    if compute_dtype() is None or batch != ((), ()) or contracting_lhs != (lhs.ndim - 1,) or contracting_rhs != (0,):
        return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                                   preferred_element_type=preferred_element_type, **kwargs)
    flat = mixed_dot(lhs.reshape(-1, lhs.shape[-1]), rhs.reshape(rhs.shape[0], -1))
    return flat.reshape(*lhs.shape[:-1], *rhs.shape[1:])


def conv_kwargs() -> dict:
    """Extra arguments for jax.lax's convolutions: a float32 result from bfloat16 inputs under bf16."""
    return {} if compute_dtype() is None else {"preferred_element_type": jnp.float32}


def training_in(model, precision: str):
    """`model` (a registry.Model) whose training step is traced in `precision`; f32 returns it as is."""
    if PRECISIONS[precision] is None:
        return model
    inner = model.step

    @functools.wraps(inner)
    def step(*args, **kwargs):
        with computing_in(precision):
            return inner(*args, **kwargs)

    return model._replace(step=step)
