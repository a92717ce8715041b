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


# The two 4x4 stride-2 convolutions below are written as matrix products because that is what
# XLA:CPU runs fast: its dot kernels reach ~300 GFLOP/s on this model's shapes, while the
# convolutions autodiff derives from them do not. The kernel of a transposed convolution is
# lhs-dilated (3/4 of its multiplications hit inserted zeros) and the gradient of its kernel
# is an rhs-dilated convolution that XLA:CPU hands to a generic Eigen loop: at batch 64 that
# one op took 360 ms of a 650 ms step. As im2col/col2im plus one matmul, every forward and
# backward product is a plain dense dot, and the gathers around it are cheap fusions.
# Parameters keep nnx.Conv's names and (4, 4, in, out) HWIO shape, so checkpoints and the
# PyTorch weight copy (experiments/torch_reference.py) are unchanged.


def down_patches(x):
    """(B, H, W, C) -> (B, H/2, W/2, 16*C): the 4x4 stride-2 window of each output pixel over x
    zero-padded by 1, flattened in (kh, kw, c) order, the order of a (4, 4, C, out) kernel."""
    _, height, width, _ = x.shape
    out_h, out_w = height // 2, width // 2
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    taps = [padded[:, kh : kh + 2 * out_h - 1 : 2, kw : kw + 2 * out_w - 1 : 2, :] for kh in range(4) for kw in range(4)]
    return jnp.concatenate(taps, axis=-1)


def down_conv(x, kernel, bias):
    """PyTorch's Conv2d(k=4, s=2, p=1) on NHWC x with an HWIO kernel, as im2col + one matmul."""
    patches = down_patches(x)
    out = jnp.dot(patches.reshape(-1, patches.shape[-1]), kernel.reshape(-1, kernel.shape[-1]))
    return out.reshape(*patches.shape[:3], -1) + bias


def _shifted(rows, axis: int, by: int):
    """rows moved `by` (+1 or -1) places along `axis`, zero-filled: out[r] = rows[r - by]."""
    n = rows.shape[axis]
    kept = jax.lax.slice_in_dim(rows, 0, n - 1, axis=axis) if by > 0 else jax.lax.slice_in_dim(rows, 1, n, axis=axis)
    pad = [(0, 0)] * rows.ndim
    pad[axis] = (1, 0) if by > 0 else (0, 1)
    return jnp.pad(kept, pad)


def _overlap_add(taps, axis: int):
    """Sum the 4 kernel taps of a stride-2 transposed convolution along one spatial axis.

    taps[k][i] is input position i times kernel row k; it lands on output position 2i + 2 - k
    (padding 2 of the dilated input, unflipped kernel: nnx.ConvTranspose's convention). So even
    outputs 2r collect taps 0 (from i = r - 1) and 2 (from i = r), odd outputs 2r + 1 collect taps
    1 (i = r) and 3 (i = r + 1). Returns (even, odd), each the length of the input.
    """
    even = _shifted(taps[0], axis, +1) + taps[2]
    odd = taps[1] + _shifted(taps[3], axis, -1)
    return even, odd


def up_conv(x, kernel, bias):
    """nnx.ConvTranspose(k=4, s=2, padding 2) = PyTorch's ConvTranspose2d(k=4, s=2, p=1) with the
    kernel flipped, as one matmul + col2im: every input pixel times all 16 kernel taps, then each
    output pixel sums the 4 taps that reach it. No multiplication by an inserted zero."""
    batch, height, width, n_in = x.shape
    n_out = kernel.shape[-1]
    taps = jnp.einsum("bhwc,klco->klbhwo", x, kernel)  # (4, 4, B, H, W, out): taps leading, so slicing them is cheap
    row_phases = _overlap_add(taps, axis=2)  # 2 x (4, B, H, W, out)
    phases = [jnp.stack(_overlap_add(rows, axis=2), axis=3) for rows in row_phases]  # 2 x (B, H, W, 2, out)
    out = jnp.stack(phases, axis=2)  # (B, H, 2, W, 2, out): output row 2r + u, column 2c + v
    return out.reshape(batch, 2 * height, 2 * width, n_out) + bias


class _Conv4x4(nnx.Module):
    """kernel (4, 4, in, out) and bias (out,), drawn exactly as nnx.Conv draws them (one params key
    each, in that order), so a model built from the same seed gets the same weights."""

    def __init__(self, n_in: int, n_out: int, rngs: nnx.Rngs):
        self.kernel = nnx.Param(normal_init(rngs.params(), (4, 4, n_in, n_out), jnp.float32))
        self.bias = nnx.Param(nnx.initializers.zeros_init()(rngs.params(), (n_out,), jnp.float32))


class DownConv(_Conv4x4):
    def __call__(self, x):
        return down_conv(x, self.kernel[...], self.bias[...])


class UpConv(_Conv4x4):
    def __call__(self, x):
        return up_conv(x, self.kernel[...], self.bias[...])


def conv_down(n_in: int, n_out: int, rngs: nnx.Rngs) -> DownConv:
    """4x4 stride-2 convolution, padding 1 (PyTorch's Conv2d(k=4, s=2, p=1)): halves H and W.
    Same parameters as nnx.Conv(n_in, n_out, (4, 4), (2, 2), padding=((1, 1), (1, 1)))."""
    return DownConv(n_in, n_out, rngs)


def conv_up(n_in: int, n_out: int, rngs: nnx.Rngs) -> UpConv:
    """4x4 stride-2 transposed convolution that doubles H and W.

    Same parameters and outputs as nnx.ConvTranspose(n_in, n_out, (4, 4), (2, 2),
    padding=((2, 2), (2, 2))). Padding (2, 2) of the stride-dilated input equals PyTorch's
    ConvTranspose2d(k=4, s=2, p=1) (k - 1 - p = 2), with the kernel flipped spatially.
    """
    return UpConv(n_in, n_out, rngs)


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
