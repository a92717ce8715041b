"""Shared Flax NNX building blocks: the infoGAN MNIST backbone the TF/PyTorch collections use.

Layers are initialised N(0, 0.02) with zero biases and BatchNorm scales N(1, 0.02), as in the
collections' `initialize_weights`. BatchNorm uses PyTorch's defaults (momentum 0.1, eps 1e-5) so a
reference PyTorch model with copied weights computes the same numbers.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
from flax import nnx

from gan_lab import precision
from gan_lab.config import Setting, one_of
from gan_lab.errors import UserError

normal_init = nnx.initializers.normal(stddev=0.02)


def bn_scale_init(key, shape, dtype=jnp.float32):
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


# The setting of every model built from these layers (its @register line lists it).
WIDTH = Setting(1.0, "channel multiplier of every layer (1.0 = the paper's nets; tests use 0.125)", positive=True,
                search=one_of(0.25, 0.5, 1.0))


def channels(base: int, width: float) -> int:
    """Channel count of a layer whose full-size width is `base`, scaled by the width multiplier."""
    return max(1, round(base * width))


def dense(n_in: int, n_out: int, rngs: nnx.Rngs, **init) -> nnx.Linear:
    """nnx.Linear (N(0, 0.02) weights unless `init` says otherwise) that multiplies in the traced
    precision (gan_lab.precision)."""
    return nnx.Linear(n_in, n_out, **{"kernel_init": normal_init, **init}, dot_general=precision.linear_dot_general,
                      rngs=rngs)


# The two 4x4 stride-2 convolutions below are written as matrix products because that is what
# XLA:CPU runs fast: its (YNNPACK) dot kernels reach 200-300 GFLOP/s on this model's shapes, while
# some convolutions autodiff derives do not. The transposed convolution is lhs-dilated (3/4 of its
# multiplications hit inserted zeros) and the gradient of its kernel is an rhs-dilated convolution
# that XLA:CPU hands to a generic Eigen loop: at batch 64 that one op took 360 ms of a 650 ms step
# (profiled). Here every forward and backward product is one dense dot, between two gathers:
#   window_taps   (im2col) the 16 taps of each output pixel's 4x4 stride-2 window, and
#   overlap_add   (col2im) each output pixel sums the 4 of 16 input-times-tap products that reach it.
# The two are each other's transpose (up to flipping the taps), so each one's gradient is the other,
# written out by hand: autodiff's own transpose of 16 strided slices is 16 zero-padded copies summed.
# Spatial sizes must be even, as in every gan_lab model (28 -> 14 -> 7 and back).
# Parameters keep nnx.Conv's names and (4, 4, in, out) HWIO shape, so checkpoints and the
# PyTorch weight copy (experiments/torch_reference.py) are unchanged.


@jax.custom_vjp
def window_taps(x):
    """(B, H, W, C) -> (B, H/2, W/2, 4, 4, C): out[b, i, j, a, c] = x_padded[b, 2i + a, 2j + c] with x
    zero-padded by 1: the 4x4 stride-2 window of output pixel (i, j), as Conv2d(k=4, s=2, p=1) sees it."""
    batch, height, width, channels_ = x.shape
    if height % 2 or width % 2:
        raise ValueError(f"4x4 stride-2 layers need even spatial sizes, got {height}x{width}")
    rows, cols = height // 2, width // 2
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    # Padded row 2p + u, column pair q holding (column v, channel) contiguously: a free reshape.
    pairs = padded.reshape(batch, rows + 1, 2, cols + 1, 2 * channels_)
    # Window row a = 2p + u of output (i, j) is padded row 2(i + p) + u; its 4 columns 2j .. 2j + 3
    # are the column pairs j and j + 1: 8 slices of contiguous (2 * C)-long runs.
    runs = [pairs[:, a // 2 : a // 2 + rows, a % 2, q : q + cols] for a in range(4) for q in range(2)]
    return jnp.concatenate(runs, axis=-1).reshape(batch, rows, cols, 4, 4, channels_)


# Output row 2r + u of nnx.ConvTranspose(k=4, s=2, padding 2) sums (input row r + offset) x (kernel
# row k) over these (offset, k) pairs: tap k sends input row i to output row 2i + 2 - k (the dilated
# input is padded by 2 and the kernel is not flipped). Columns work the same way.
PHASE_TAPS = (((-1, 0), (0, 2)), ((0, 1), (1, 3)))  # u = 0 (even rows), u = 1 (odd rows)


@jax.custom_vjp
def overlap_add(taps):
    """(B, H, W, 4, 4, C) -> (B, 2H, 2W, C): out[b, 2i + 2 - k, 2j + 2 - l] += taps[b, i, j, k, l]
    (contributions falling outside are dropped), the transposed convolution's col2im."""
    batch, height, width, _, _, channels_ = taps.shape
    phases = [[_sum_of([_at_offset(_at_offset(taps[:, :, :, kh, kw], 1, dh), 2, dw)
                        for dh, kh in PHASE_TAPS[u] for dw, kw in PHASE_TAPS[v]])
               for v in (0, 1)] for u in (0, 1)]
    out = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # (B, H, 2, W, 2, C)
    return out.reshape(batch, 2 * height, 2 * width, channels_)


def _flip_taps(taps):
    return taps[:, :, :, ::-1, ::-1, :]


# The transposes: window row a of pixel i reads input row 2i + a - 1, which tap k = 3 - a of
# overlap_add writes (2i + 2 - k), and vice versa.
window_taps.defvjp(lambda x: (window_taps(x), None), lambda _, d_taps: (overlap_add(_flip_taps(d_taps)),))
overlap_add.defvjp(lambda taps: (overlap_add(taps), None), lambda _, d_out: (_flip_taps(window_taps(d_out)),))


def _at_offset(rows, axis: int, offset: int):
    """out[r] = rows[r + offset] along `axis`, zero where that falls outside."""
    if offset == 0:
        return rows
    n = rows.shape[axis]
    kept = jax.lax.slice_in_dim(rows, max(offset, 0), n + min(offset, 0), axis=axis)
    pad = [(0, 0)] * rows.ndim
    pad[axis] = (max(-offset, 0), max(offset, 0))
    return jnp.pad(kept, pad)


def _sum_of(arrays):
    return sum(arrays[1:], start=arrays[0])  # no `0 +` term for XLA to carry


def down_conv(x, kernel, bias):
    """PyTorch's Conv2d(k=4, s=2, p=1) on NHWC x with an HWIO kernel: im2col + one matmul."""
    taps = window_taps(precision.to_compute(x))  # (B, H/2, W/2, 4, 4, in), the kernel's (kh, kw, in) order
    out = precision.matmul(taps.reshape(-1, kernel.shape[0] * kernel.shape[1] * kernel.shape[2]),
                           kernel.reshape(-1, kernel.shape[-1]))
    return out.reshape(*taps.shape[:3], -1) + bias


def up_conv(x, kernel, bias):
    """nnx.ConvTranspose(k=4, s=2, padding 2) = PyTorch's ConvTranspose2d(k=4, s=2, p=1) with the
    kernel flipped: one matmul (every input pixel times all 16 taps) + col2im. No multiplication
    by an inserted zero."""
    batch, height, width, n_in = x.shape
    n_out = kernel.shape[-1]
    # Taps last, so the matmul writes them in the layout overlap_add reads and its gradient gives.
    products = precision.matmul(x.reshape(-1, n_in), kernel.transpose(2, 0, 1, 3).reshape(n_in, 16 * n_out))
    return overlap_add(products.reshape(batch, height, width, 4, 4, n_out)) + bias


def native_down_conv(x, kernel, bias):
    """down_conv through XLA's own convolution (what nnx.Conv computes): cuDNN's on a GPU."""
    return jax.lax.conv_general_dilated(precision.to_compute(x), precision.to_compute(kernel), (2, 2),
                                        ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        **precision.conv_kwargs()) + bias


def native_up_conv(x, kernel, bias):
    """up_conv through XLA's own transposed convolution (what nnx.ConvTranspose computes)."""
    return jax.lax.conv_transpose(precision.to_compute(x), precision.to_compute(kernel), (2, 2), ((2, 2), (2, 2)),
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"), **precision.conv_kwargs()) + bias


# How the 4x4 layers compute. The matmul forms (im2col/col2im around one matmul) were chosen for
# XLA:CPU, where they make every model's step 1.2-3x faster than nnx.Conv (experiments/results/
# bench_models.md). On a GPU, XLA hands native convolutions to cuDNN, which is what GPU users expect
# and usually faster; this has not been measured here (no GPU). "auto" picks per backend; the
# variable overrides it, for a measurement or a backend where the other form wins. Both forms have
# the same parameters and are tested equal (tests/test_layers.py), so checkpoints move between them.
CONV_ENV = "GAN_LAB_CONV"
CONV_FORMS = {"matmul": (down_conv, up_conv), "native": (native_down_conv, native_up_conv)}


def conv_form() -> str:
    """'matmul' or 'native' for the backend the layers are traced on ($GAN_LAB_CONV: auto|matmul|native)."""
    choice = os.environ.get(CONV_ENV, "auto").strip() or "auto"
    if choice == "auto":
        return "matmul" if jax.default_backend() == "cpu" else "native"
    if choice not in CONV_FORMS:
        raise UserError(f"{CONV_ENV}={choice!r} is not one of auto, {', '.join(CONV_FORMS)}")
    return choice


class _Conv4x4(nnx.Module):
    """kernel (4, 4, in, out) and bias (out,), drawn exactly as nnx.Conv draws them (one params key
    each, in that order), so a model built from the same seed gets the same weights. The kernel is
    drawn by `kernel_init` (the GANs' N(0, 0.02) unless the model says otherwise)."""

    def __init__(self, n_in: int, n_out: int, rngs: nnx.Rngs, kernel_init=normal_init):
        self.kernel = nnx.Param(kernel_init(rngs.params(), (4, 4, n_in, n_out), jnp.float32))
        self.bias = nnx.Param(nnx.initializers.zeros_init()(rngs.params(), (n_out,), jnp.float32))


class DownConv(_Conv4x4):
    def __call__(self, x):
        return CONV_FORMS[conv_form()][0](x, self.kernel[...], self.bias[...])


class UpConv(_Conv4x4):
    def __call__(self, x):
        return CONV_FORMS[conv_form()][1](x, self.kernel[...], self.bias[...])


def conv_down(n_in: int, n_out: int, rngs: nnx.Rngs, kernel_init=normal_init) -> DownConv:
    """4x4 stride-2 convolution, padding 1 (PyTorch's Conv2d(k=4, s=2, p=1)): halves H and W.
    Same parameters as nnx.Conv(n_in, n_out, (4, 4), (2, 2), padding=((1, 1), (1, 1)))."""
    return DownConv(n_in, n_out, rngs, kernel_init)


def conv_up(n_in: int, n_out: int, rngs: nnx.Rngs, kernel_init=normal_init) -> UpConv:
    """4x4 stride-2 transposed convolution that doubles H and W.

    Same parameters and outputs as nnx.ConvTranspose(n_in, n_out, (4, 4), (2, 2),
    padding=((2, 2), (2, 2))). Padding (2, 2) of the stride-dilated input equals PyTorch's
    ConvTranspose2d(k=4, s=2, p=1) (k - 1 - p = 2), with the kernel flipped spatially.
    """
    return UpConv(n_in, n_out, rngs, kernel_init)


def plain_conv_down(n_in: int, n_out: int, rngs: nnx.Rngs) -> nnx.Conv:
    """The plain Flax layer conv_down replaces (tests/test_layers.py checks they are equal; the
    benchmarks swap it back in to measure the difference)."""
    return nnx.Conv(n_in, n_out, (4, 4), (2, 2), padding=((1, 1), (1, 1)), kernel_init=normal_init, rngs=rngs)


def plain_conv_up(n_in: int, n_out: int, rngs: nnx.Rngs) -> nnx.ConvTranspose:
    """The plain Flax layer conv_up replaces (as plain_conv_down)."""
    return nnx.ConvTranspose(n_in, n_out, (4, 4), (2, 2), padding=((2, 2), (2, 2)), kernel_init=normal_init,
                             rngs=rngs)


BN_MOMENTUM = 0.9  # Flax's convention: running = 0.9 running + 0.1 batch (PyTorch's momentum 0.1)


def batch_norm_layer(n: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(n, momentum=BN_MOMENTUM, epsilon=1e-5, scale_init=bn_scale_init, rngs=rngs)


def statistics_after_second_pass(before, after_one_pass):
    """BatchNorm running statistics (a `rest` State) after a second train-mode pass over the same
    batch, without running the network again: one pass moves r0 to r1 = m r0 + (1 - m) s, and a
    second one, seeing the same batch statistics s, to m r1 + (1 - m) s = r1 + m (r1 - r0)."""
    variables = jax.tree.leaves(after_one_pass, is_leaf=lambda x: isinstance(x, nnx.Variable))
    if not all(isinstance(v, nnx.BatchStat) for v in variables):
        # Only a BatchNorm's running statistics (made by batch_norm_layer, momentum BN_MOMENTUM) follow
        # this formula; any other state would be silently corrupted.
        raise TypeError(f"expected BatchNorm statistics only, got {sorted({type(v).__name__ for v in variables})}")
    return jax.tree.map(lambda r1, r0: r1 + BN_MOMENTUM * (r1 - r0), after_one_pass, before)


class Generator(nnx.Module):
    """z (B, in_dim) -> FC1024-BN-ReLU -> FC 7*7*128-BN-ReLU -> deconv 64-BN-ReLU -> deconv 1 -> tanh."""

    def __init__(self, in_dim: int, width: float, rngs: nnx.Rngs):
        fc, c7, c14 = channels(1024, width), channels(128, width), channels(64, width)
        self.c7 = c7
        self.fc1, self.bn1 = dense(in_dim, fc, rngs), batch_norm_layer(fc, rngs)
        self.fc2, self.bn2 = dense(fc, 7 * 7 * c7, rngs), batch_norm_layer(7 * 7 * c7, rngs)
        self.deconv1, self.bn3 = conv_up(c7, c14, rngs), batch_norm_layer(c14, rngs)
        self.deconv2 = conv_up(c14, 1, rngs)

    def __call__(self, z, train: bool):
        frozen = not train  # eval mode normalises with the running averages
        h = jax.nn.relu(self.bn1(self.fc1(z), use_running_average=frozen))
        h = jax.nn.relu(self.bn2(self.fc2(h), use_running_average=frozen))
        h = h.reshape(-1, 7, 7, self.c7)  # NHWC
        h = jax.nn.relu(self.bn3(self.deconv1(h), use_running_average=frozen))
        return jnp.tanh(self.deconv2(h))  # (B, 28, 28, 1) in [-1, 1]


class Discriminator(nnx.Module):
    """x (B, 28, 28, C) -> conv 64-LReLU -> conv 128-BN-LReLU -> FC1024-BN-LReLU -> FC1 (a logit).

    norm="none" drops both BatchNorms (a WGAN critic's gradient penalty is per sample, which a
    batch-normalised critic breaks; Gulrajani et al. 2017, sec. 4); norm="layer" puts LayerNorm in
    their place (each image normalised over its own features: the drop-in the WGAN-GP paper
    recommends). `features` returns the FC1024 activations as well, for variants that put another
    head on them (ACGAN, infoGAN).
    """

    def __init__(self, in_channels: int, width: float, rngs: nnx.Rngs, norm: str = "batch"):
        c14, c7, fc = channels(64, width), channels(128, width), channels(1024, width)

        def normalisation(n, axes):
            if norm == "layer":  # over an image's (H, W, C) or its features, a scale and offset per channel
                return nnx.LayerNorm(n, reduction_axes=axes, epsilon=1e-5, rngs=rngs)
            if norm == "batch":
                return batch_norm_layer(n, rngs)
            if norm != "none":
                raise ValueError(f"norm must be batch, layer or none, not {norm!r}")
            return None

        # Built in this order: each layer's initial weights come from the next keys of `rngs`. bn2 and
        # bn3 hold whichever normalisation there is (the names checkpoints already use).
        self.conv1 = conv_down(in_channels, c14, rngs)
        self.conv2, self.bn2 = conv_down(c14, c7, rngs), normalisation(c7, (-3, -2, -1))
        self.fc1, self.bn3 = dense(7 * 7 * c7, fc, rngs), normalisation(fc, (-1,))
        self.fc2 = dense(fc, 1, rngs)

    def __call__(self, x, train: bool, groups: int = 1, features: bool = False):
        """Logits (B,), or (logits, features (B, 1024 * width)) with features=True. With groups=n, x is
        n equal batches (e.g. real images, then fakes) that share every matmul but are batch-normalised
        apart, exactly as n calls one after the other would be (each group moves the running
        statistics in turn). One call with twice the rows runs the matmuls more efficiently than two."""
        frozen = not train
        h = jax.nn.leaky_relu(self.conv1(x), 0.2)
        h = jax.nn.leaky_relu(normalise_per_group(self.bn2, self.conv2(h), groups, frozen), 0.2)
        h = h.reshape(h.shape[0], -1)
        h = jax.nn.leaky_relu(normalise_per_group(self.bn3, self.fc1(h), groups, frozen), 0.2)
        logits = self.fc2(h)[:, 0]  # (B,)
        return (logits, h) if features else logits


def normalise_per_group(bn: nnx.BatchNorm | nnx.LayerNorm | None, h, groups: int, frozen: bool):
    """bn applied to each of `groups` equal slices of the batch in turn (h itself where bn is None; a
    LayerNorm normalises each image alone, so the groups make no difference to it)."""
    if bn is None:
        return h
    if isinstance(bn, nnx.LayerNorm):
        return bn(h)
    if groups == 1:
        return bn(h, use_running_average=frozen)
    return jnp.concatenate([bn(part, use_running_average=frozen) for part in jnp.split(h, groups)])


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
