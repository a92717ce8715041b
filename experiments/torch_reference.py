"""gan_lab's DCGAN and WGAN-GP training steps in PyTorch eager: the references experiments/bench.py
times against (the WGAN-GP step: `make_wgan_gp_step`, checked against gan_lab's penalty in
tests/test_torch_reference.py).

Same networks as gan_lab.nets (the infoGAN MNIST backbone), same step as gan_lab.models.gan:
D is updated on (real, G(z)), then G is updated through the *updated* D with the same z; G runs
in train mode in both halves; BCE-with-logits with the non-saturating G loss; Adam(2e-4,
betas (0.5, 0.999)) for each network; BatchNorm momentum 0.1, eps 1e-5.

`copy_gan_lab_weights` loads gan_lab's parameter States into these modules, so the two frameworks
can be checked against each other (tests/test_torch_reference.py). Layout differences it handles:
  * Flax is NHWC with HWIO conv kernels; torch is NCHW with (out, in, kh, kw) Conv2d weights.
  * torch's ConvTranspose2d weight is (in, out, kh, kw) and is the *spatially flipped* Flax kernel:
    nnx.ConvTranspose (transpose_kernel=False) correlates the dilated input with the kernel as is.
  * G reshapes fc2's output as NHWC (7, 7, C), torch views it as (C, 7, 7); D flattens NHWC before
    fc1, torch flattens NCHW. So fc2's rows (and bn2's features) and fc1's columns are permuted.
One difference is left alone: torch's running variance is the unbiased batch variance, Flax's the
biased one. It only touches eval-mode outputs, never a training step.

This module imports torch and numpy only (no JAX), so a benchmark process running it holds no
JAX runtime. gan_lab itself never imports torch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Z_DIM = 62


def channels(base: int, width: float) -> int:
    """gan_lab.nets.channels, repeated so this module needs no JAX (the weight copy checks shapes)."""
    return max(1, round(base * width))


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) weights, zero biases, BatchNorm scales N(1, 0.02): gan_lab.nets' initialisation."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


class Generator(nn.Module):
    """z (B, in_dim) -> FC1024-BN-ReLU -> FC 7*7*128-BN-ReLU -> deconv 64-BN-ReLU -> deconv 1 -> tanh."""

    def __init__(self, in_dim: int = Z_DIM, width: float = 1.0):
        super().__init__()
        fc, c7, c14 = channels(1024, width), channels(128, width), channels(64, width)
        self.c7 = c7
        self.fc1, self.bn1 = nn.Linear(in_dim, fc), nn.BatchNorm1d(fc)
        self.fc2, self.bn2 = nn.Linear(fc, 7 * 7 * c7), nn.BatchNorm1d(7 * 7 * c7)
        self.deconv1, self.bn3 = nn.ConvTranspose2d(c7, c14, 4, 2, 1), nn.BatchNorm2d(c14)
        self.deconv2 = nn.ConvTranspose2d(c14, 1, 4, 2, 1)
        init_weights(self)

    def forward(self, z):
        h = F.relu(self.bn1(self.fc1(z)))
        h = F.relu(self.bn2(self.fc2(h)))
        h = h.view(-1, self.c7, 7, 7)  # NCHW
        h = F.relu(self.bn3(self.deconv1(h)))
        return torch.tanh(self.deconv2(h))  # (B, 1, 28, 28)


class Discriminator(nn.Module):
    """x (B, C, 28, 28) -> conv 64-LReLU -> conv 128-BN-LReLU -> FC1024-BN-LReLU -> FC1 (a logit).

    batch_norm=False, output_bias=False: gan_lab's WGAN critic (models/wgan.py make_critic)."""

    def __init__(self, in_channels: int = 1, width: float = 1.0, batch_norm: bool = True, output_bias: bool = True):
        super().__init__()
        c14, c7, fc = channels(64, width), channels(128, width), channels(1024, width)
        self.conv1 = nn.Conv2d(in_channels, c14, 4, 2, 1)
        self.conv2, self.bn2 = nn.Conv2d(c14, c7, 4, 2, 1), nn.BatchNorm2d(c7) if batch_norm else nn.Identity()
        self.fc1, self.bn3 = nn.Linear(7 * 7 * c7, fc), nn.BatchNorm1d(fc) if batch_norm else nn.Identity()
        self.fc2 = nn.Linear(fc, 1, bias=output_bias)
        init_weights(self)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.bn2(self.conv2(h)), 0.2)
        h = h.flatten(1)
        h = F.leaky_relu(self.bn3(self.fc1(h)), 0.2)
        return self.fc2(h)[:, 0]  # (B,) logits


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- the training step --------------------------------------------------------------------------


def d_loss_fn(real_logits, fake_logits):
    ones, zeros = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
    return F.binary_cross_entropy_with_logits(real_logits, ones) + F.binary_cross_entropy_with_logits(fake_logits, zeros)


def g_loss_fn(fake_logits):
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def make_step(generator: Generator, discriminator: Discriminator, lr=2e-4, betas=(0.5, 0.999),
              generator_forward_once: bool = False):
    """`step(real_images NCHW, z) -> (d_loss, g_loss)`: one D update, then one G update.

    generator_forward_once: keep the graph of the D half's G forward and backpropagate the G loss
    through it, as gan_lab's models/gan.py does, instead of running G again (the collections' loop).
    Same gradients; G's BatchNorm running statistics then move once per step instead of twice
    (gan_lab adds the second move in closed form). For the benchmark's like-for-like row."""
    g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    d_params = list(discriminator.parameters())

    def step(real_images, z):
        fake_with_graph = generator(z)
        fake_images = fake_with_graph.detach()
        if not generator_forward_once:
            fake_with_graph = None  # the collections' loop runs G again below: free this graph now
        d_opt.zero_grad(set_to_none=True)
        d_loss = d_loss_fn(discriminator(real_images), discriminator(fake_images))
        d_loss.backward()
        d_opt.step()

        g_loss = generator_update(d_params, g_opt, lambda: g_loss_fn(
            discriminator(generator(z) if fake_with_graph is None else fake_with_graph)))
        return d_loss.detach(), g_loss

    return step


def generator_update(d_params, g_opt, g_loss_fn):
    """One G update on g_loss_fn(), whose gradient flows through the updated D. D's own weight
    gradients are not needed here, so autograd is told not to compute them (gan_lab differentiates
    w.r.t. G only, too)."""
    for p in d_params:
        p.requires_grad_(False)
    g_opt.zero_grad(set_to_none=True)
    g_loss = g_loss_fn()
    g_loss.backward()
    g_opt.step()
    for p in d_params:
        p.requires_grad_(True)
    return g_loss.detach()


def gradient_penalty(critic: Discriminator, real, fake, alpha, weight: float):
    """WGAN-GP's weight * mean((||grad D(xhat)||_2 - 1)^2), xhat = alpha real + (1 - alpha) fake, alpha
    (B, 1, 1, 1) one per sample, the norm over all of a sample's pixels, on the critic's raw output:
    gan_lab's models/penalties.py. create_graph=True: the penalty's own gradient (a double backward)."""
    points = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    (grads,) = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    norms = grads.flatten(1).norm(dim=1)
    return weight * ((norms - 1.0) ** 2).mean()


def make_wgan_gp_step(generator: Generator, critic: Discriminator, lr=1e-4, betas=(0.0, 0.9), n_critic: int = 5,
                      gp_weight: float = 10.0):
    """`step(real_batches (n_critic, B, C, H, W), zs (n_critic, B, z), alphas (n_critic, B, 1, 1, 1))
    -> (d_loss, g_loss)`: gan_lab's WGAN-GP step (models/adversarial.py plain_step): n_critic critic
    updates, each on its own real batch and latent, then one G update through the updated critic with
    the last critic update's latent. G runs in train mode throughout; Adam(1e-4, (0, 0.9)) for both."""
    g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    d_opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)
    d_params = list(critic.parameters())

    def step(real_batches, zs, alphas):
        for real, z, alpha in zip(real_batches, zs, alphas):
            with torch.no_grad():
                fake = generator(z)
            d_opt.zero_grad(set_to_none=True)
            d_loss = critic(fake).mean() - critic(real).mean() + gradient_penalty(critic, real, fake, alpha, gp_weight)
            d_loss.backward()
            d_opt.step()
        g_loss = generator_update(d_params, g_opt, lambda: -critic(generator(zs[-1])).mean())
        return d_loss.detach(), g_loss

    return step


# --- weights from gan_lab -----------------------------------------------------------------------


def _array(leaf) -> torch.Tensor:
    """A gan_lab State leaf (an nnx Variable or an array) as a float32 CPU tensor."""
    return torch.from_numpy(np.array(leaf, dtype=np.float32))


def _nhwc_feature_order(c: int, height: int = 7, width: int = 7) -> torch.Tensor:
    """index[f_torch] = f_flax, for a (C, H, W)-flattened (torch) vs (H, W, C)-flattened (Flax) vector."""
    return torch.arange(height * width * c).view(height, width, c).permute(2, 0, 1).reshape(-1)


def _set(tensor: torch.Tensor, value: torch.Tensor) -> None:
    if tensor.shape != value.shape:
        raise ValueError(f"shape mismatch: torch {tuple(tensor.shape)} vs gan_lab {tuple(value.shape)}")
    with torch.no_grad():
        tensor.copy_(value)


def _copy_linear(layer: nn.Linear, params, rows=None, cols=None) -> None:
    weight = _array(params["kernel"]).T  # Flax kernel is (in, out)
    bias = _array(params["bias"]) if "bias" in params else None
    if rows is not None:
        weight, bias = weight[rows], None if bias is None else bias[rows]
    if cols is not None:
        weight = weight[:, cols]
    _set(layer.weight, weight)
    if layer.bias is not None:
        _set(layer.bias, bias)


def _copy_batch_norm(layer: nn.modules.batchnorm._BatchNorm, params, stats, order=None) -> None:
    pick = (lambda t: t) if order is None else (lambda t: t[order])
    _set(layer.weight, pick(_array(params["scale"])))
    _set(layer.bias, pick(_array(params["bias"])))
    _set(layer.running_mean, pick(_array(stats["mean"])))
    _set(layer.running_var, pick(_array(stats["var"])))


def _copy_conv(layer: nn.Conv2d, params) -> None:
    _set(layer.weight, _array(params["kernel"]).permute(3, 2, 0, 1))  # HWIO -> OIHW
    _set(layer.bias, _array(params["bias"]))


def _copy_conv_transpose(layer: nn.ConvTranspose2d, params) -> None:
    kernel = _array(params["kernel"]).flip(0, 1)  # nnx.ConvTranspose does not flip; torch does
    _set(layer.weight, kernel.permute(2, 3, 0, 1))  # HWIO -> (in, out, kh, kw)
    _set(layer.bias, _array(params["bias"]))


def copy_gan_lab_weights(generator: Generator, discriminator: Discriminator, g_params, g_rest, d_params, d_rest) -> None:
    """Load gan_lab's (params, rest) States of nets.Generator / nets.Discriminator into the torch modules."""
    g_order = _nhwc_feature_order(generator.c7)
    _copy_linear(generator.fc1, g_params["fc1"])
    _copy_batch_norm(generator.bn1, g_params["bn1"], g_rest["bn1"])
    _copy_linear(generator.fc2, g_params["fc2"], rows=g_order)
    _copy_batch_norm(generator.bn2, g_params["bn2"], g_rest["bn2"], order=g_order)
    _copy_conv_transpose(generator.deconv1, g_params["deconv1"])
    _copy_batch_norm(generator.bn3, g_params["bn3"], g_rest["bn3"])
    _copy_conv_transpose(generator.deconv2, g_params["deconv2"])

    d_order = _nhwc_feature_order(discriminator.conv2.out_channels)
    _copy_conv(discriminator.conv1, d_params["conv1"])
    _copy_conv(discriminator.conv2, d_params["conv2"])
    _copy_linear(discriminator.fc1, d_params["fc1"], cols=d_order)
    if isinstance(discriminator.bn2, nn.BatchNorm2d):  # not in a WGAN critic
        _copy_batch_norm(discriminator.bn2, d_params["bn2"], d_rest["bn2"])
        _copy_batch_norm(discriminator.bn3, d_params["bn3"], d_rest["bn3"])
    _copy_linear(discriminator.fc2, d_params["fc2"])


def nhwc_to_nchw(images) -> torch.Tensor:
    return torch.from_numpy(np.array(images, dtype=np.float32)).permute(0, 3, 1, 2).contiguous()
