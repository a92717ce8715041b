"""Shared Flax NNX building blocks: the infoGAN MNIST backbone the TF/PyTorch collections use.

Layers are initialised N(0, 0.02) with zero biases and BatchNorm scales N(1, 0.02), as in the
collections' `initialize_weights`. BatchNorm uses PyTorch's defaults (momentum 0.1, eps 1e-5) so a
reference PyTorch model with copied weights computes the same numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

normal_init = nnx.initializers.normal(stddev=0.02)


def bn_scale_init(key, shape, dtype=jnp.float32):
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def channels(base: int, width: float) -> int:
    """Channel count of a layer whose full-size width is `base`, scaled by the width multiplier."""
    return max(1, round(base * width))


def dense(n_in: int, n_out: int, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(n_in, n_out, kernel_init=normal_init, rngs=rngs)


def conv_down(n_in: int, n_out: int, rngs: nnx.Rngs) -> nnx.Conv:
    """4x4 stride-2 convolution, padding 1 (PyTorch's Conv2d(k=4, s=2, p=1)): halves H and W."""
    return nnx.Conv(n_in, n_out, (4, 4), (2, 2), padding=((1, 1), (1, 1)), kernel_init=normal_init, rngs=rngs)


def conv_up(n_in: int, n_out: int, rngs: nnx.Rngs) -> nnx.ConvTranspose:
    """4x4 stride-2 transposed convolution that doubles H and W.

    Padding (2, 2) of the stride-dilated input equals PyTorch's ConvTranspose2d(k=4, s=2, p=1)
    (k - 1 - p = 2), with the kernel flipped spatially.
    """
    return nnx.ConvTranspose(
        n_in, n_out, (4, 4), (2, 2), padding=((2, 2), (2, 2)), kernel_init=normal_init, rngs=rngs
    )


def batch_norm(n: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(n, momentum=0.9, epsilon=1e-5, scale_init=bn_scale_init, rngs=rngs)


class Generator(nnx.Module):
    """z (B, in_dim) -> FC1024-BN-ReLU -> FC 7*7*128-BN-ReLU -> deconv 64-BN-ReLU -> deconv 1 -> tanh."""

    def __init__(self, in_dim: int, width: float, rngs: nnx.Rngs):
        fc, c7, c14 = channels(1024, width), channels(128, width), channels(64, width)
        self.c7 = c7
        self.fc1, self.bn1 = dense(in_dim, fc, rngs), batch_norm(fc, rngs)
        self.fc2, self.bn2 = dense(fc, 7 * 7 * c7, rngs), batch_norm(7 * 7 * c7, rngs)
        self.deconv1, self.bn3 = conv_up(c7, c14, rngs), batch_norm(c14, rngs)
        self.deconv2 = conv_up(c14, 1, rngs)

    def __call__(self, z, train: bool):
        frozen = not train  # eval mode normalises with the running averages
        h = jax.nn.relu(self.bn1(self.fc1(z), use_running_average=frozen))
        h = jax.nn.relu(self.bn2(self.fc2(h), use_running_average=frozen))
        h = h.reshape(-1, 7, 7, self.c7)  # NHWC
        h = jax.nn.relu(self.bn3(self.deconv1(h), use_running_average=frozen))
        return jnp.tanh(self.deconv2(h))  # (B, 28, 28, 1) in [-1, 1]


class Discriminator(nnx.Module):
    """x (B, 28, 28, C) -> conv 64-LReLU -> conv 128-BN-LReLU -> FC1024-BN-LReLU -> FC1 (a logit)."""

    def __init__(self, in_channels: int, width: float, rngs: nnx.Rngs):
        c14, c7, fc = channels(64, width), channels(128, width), channels(1024, width)
        self.conv1 = conv_down(in_channels, c14, rngs)
        self.conv2, self.bn2 = conv_down(c14, c7, rngs), batch_norm(c7, rngs)
        self.fc1, self.bn3 = dense(7 * 7 * c7, fc, rngs), batch_norm(fc, rngs)
        self.fc2 = dense(fc, 1, rngs)

    def __call__(self, x, train: bool):
        frozen = not train
        h = jax.nn.leaky_relu(self.conv1(x), 0.2)
        h = jax.nn.leaky_relu(self.bn2(self.conv2(h), use_running_average=frozen), 0.2)
        h = h.reshape(h.shape[0], -1)
        h = jax.nn.leaky_relu(self.bn3(self.fc1(h), use_running_average=frozen), 0.2)
        return self.fc2(h)[:, 0]  # (B,) logits


def split_module(module: nnx.Module):
    """(graphdef, params, rest): trainable parameters apart from everything else (BatchNorm stats)."""
    return nnx.split(module, nnx.Param, ...)


def apply(graphdef, params, rest, *args, **kwargs):
    """Call a split module as a pure function; returns (output, updated rest)."""
    # copy=True: fresh Variables at the current trace level, so BatchNorm may update its statistics
    # when this runs inside jax.grad (Variables unflattened by an outer jit belong to that trace).
    module = nnx.merge(graphdef, params, rest, copy=True)
    out = module(*args, **kwargs)
    return out, split_module(module)[2]


def graphdef_of(make_module) -> nnx.GraphDef:
    """The (static) structure of a module, without allocating or initialising its weights."""
    return split_module(nnx.eval_shape(make_module))[0]
