"""InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information
Maximizing Generative Adversarial Nets"), the paper's MNIST setting, trained without labels.

G's latent: z (cfg.z_dim = 62, N(0, 1)) + a 10-way categorical code (one-hot, uniform) + 2 continuous
codes U(-1, 1), drawn together by `sample_latent` (so Model.prior / sample draw them). A Q head on D's
FC1024 features (FC128-BN-LReLU -> 10 category logits + 2 means; the paper's Table 1) guesses the codes
of each generated image, and the variational lower bound of the mutual information I(c; G(z, c)),
  L_I = CE(category | Q) + Gaussian NLL of the continuous codes under N(mean_Q, 1),
is added with weight lambda to *both* D's and G's loss, as the official code does (openai/InfoGAN,
infogan_trainer.py: `discriminator_loss -= info_reg_coeff * mi_est` and the same for G): D's update
trains the trunk and Q to read the codes, G's update trains G to write them.

The continuous term is the Gaussian NLL with the standard deviation fixed at 1, i.e.
0.5 * sum over codes of (c - mean)^2 per image (constant dropped): the official MNIST experiment's
`Uniform(1, fix_std=True)` codes, whose Q is a unit-variance Gaussian. It equals the PyTorch
collection's MSELoss (the mean over 2 codes is half the sum); a learned variance is not worth a
head output here, and a fixed one keeps lambda's scale the paper's.

Defaults (the paper and openai/InfoGAN's run_mnist_exp.py): lambda 1, Adam b1 0.5, D (and Q) at
lr 2e-4, G at 1e-3 (`--g-lr`); batch 64 as every gan_lab GAN and both collections (the official
code uses 128). How the collections differ:
  - both use the real labels as the categorical code by default (SUPERVISED=True in main.py /
    the class default): a conditional GAN with a classifier, not InfoGAN. Here the code is drawn.
  - znxlwm (PyTorch, infoGAN.py): no Q head, D's last layer outputs 1 + 2 + 10; z ~ U[0, 1); G and D
    at 2e-4 (main.py's lrG = lrD default); the information loss steps G and D with a third Adam at 2e-4.
  - hwalsuklee (TF, infoGAN.py): Q head FC64 ("reduced by half"); the continuous estimate is taken
    from the *softmax* over all 12 outputs, so it cannot go below 0; squared error summed over codes;
    z ~ U(-1, 1); D at 2e-4, G at 1e-3, and Q's loss steps D, Q and G with a third Adam at 1e-3.
  - the official code draws z ~ U(-1, 1); gan_lab keeps N(0, 1) as for every GAN here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from gan_lab import nets
from gan_lab.config import Setting, around
from gan_lab.models.adversarial import GANParts, build_model
from gan_lab.models.gan import logit_losses
from gan_lab.registry import register
from gan_lab.sampling import LatentCode

N_CATEGORIES = 10  # the categorical code's values: MNIST's digits, if the code finds them
N_CONTINUOUS = 2  # continuous codes, e.g. slant and stroke width on MNIST

INFO_WEIGHT = Setting(1.0, "lambda: weight of the mutual-information term in D's and G's losses (the paper's 1)",
                      minimum=0, search=around(3))
G_LR = Setting(1e-3, "G's learning rate (the paper's 1e-3; D and its Q head use --lr, 2e-4)", positive=True,
               search=around(10))


def latent_codes(z_dim: int) -> tuple:
    """The codes' places in the latent [z (z_dim) | category (10, one-hot) | c1 | c2]."""
    category = LatentCode("category", z_dim, N_CATEGORIES, "categorical")
    continuous = tuple(LatentCode(f"c{i + 1}", z_dim + N_CATEGORIES + i, 1, "uniform") for i in range(N_CONTINUOUS))
    return (category, *continuous)


def latent_sampler(z_dim: int):
    def sample_latent(key, n):
        z_key, category_key, continuous_key = jax.random.split(key, 3)
        z = jax.random.normal(z_key, (n, z_dim))
        category = jax.nn.one_hot(jax.random.randint(category_key, (n,), 0, N_CATEGORIES), N_CATEGORIES)
        continuous = jax.random.uniform(continuous_key, (n, N_CONTINUOUS), minval=-1.0, maxval=1.0)
        return jnp.concatenate([z, category, continuous], -1)  # (n, z_dim + 12)
    return sample_latent


class InfoDiscriminator(nnx.Module):
    """images -> (real/fake logits (B,), category logits (B, 10), continuous code means (B, 2))."""

    def __init__(self, width: float, rngs: nnx.Rngs):
        features, hidden = nets.channels(1024, width), nets.channels(128, width)
        self.trunk = nets.Discriminator(1, width, rngs=rngs)
        self.q_fc, self.q_bn = nets.dense(features, hidden, rngs), nets.batch_norm_layer(hidden, rngs)
        self.q_out = nets.dense(hidden, N_CATEGORIES + N_CONTINUOUS, rngs)

    def __call__(self, images, train: bool):
        logits, features = self.trunk(images, train, features=True)
        h = jax.nn.leaky_relu(self.q_bn(self.q_fc(features), use_running_average=not train), 0.2)
        q = self.q_out(h)
        return logits, q[:, :N_CATEGORIES], q[:, N_CATEGORIES:]


def information_loss(d_out, latent, z_dim: int):
    """-L_I (up to a constant) of the images D saw, generated from `latent`: (loss, metrics)."""
    _, category_logits, code_means = d_out
    category = latent[:, z_dim:z_dim + N_CATEGORIES]
    continuous = latent[:, z_dim + N_CATEGORIES:]
    category_ce = jnp.mean(optax.softmax_cross_entropy(category_logits, category))
    continuous_nll = jnp.mean(0.5 * jnp.sum((continuous - code_means) ** 2, -1))
    return category_ce + continuous_nll, {"info_category": category_ce, "info_continuous": continuous_nll}


def infogan_losses(z_dim: int, info_weight: float):
    adversarial_d_loss, adversarial_g_loss = logit_losses("bce")

    def d_loss(real_out, fake_out, batch, extra):
        loss, metrics, extra = adversarial_d_loss(real_out[0], fake_out[0], batch, extra)
        info, info_metrics = information_loss(fake_out, batch.latent, z_dim)
        return loss + info_weight * info, {**metrics, **info_metrics}, extra

    def g_loss(fake_out, batch, extra):
        loss, metrics = adversarial_g_loss(fake_out[0], batch, extra)
        info, _ = information_loss(fake_out, batch.latent, z_dim)
        return loss + info_weight * info, metrics

    return d_loss, g_loss


def infogan_parts(cfg) -> GANParts:
    d_loss, g_loss = infogan_losses(cfg.z_dim, cfg.info_weight)
    latent_dim = cfg.z_dim + N_CATEGORIES + N_CONTINUOUS
    return GANParts(
        make_g=lambda rngs: nets.Generator(latent_dim, cfg.width, rngs=rngs),
        make_d=lambda rngs: InfoDiscriminator(cfg.width, rngs=rngs),
        latent_dim=latent_dim, d_loss=d_loss, g_loss=g_loss,
        g_tx=optax.adam(cfg.g_lr, b1=cfg.b1, b2=cfg.b2), d_tx=optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2),
        sample_latent=latent_sampler(cfg.z_dim),
    )


@register("infogan", "InfoGAN: 10-way categorical + 2 continuous codes, a Q head on D's features; no labels",
          settings={"width": nets.WIDTH, "info_weight": INFO_WEIGHT, "g_lr": G_LR})
def build(cfg):
    return build_model(infogan_parts(cfg))._replace(codes=latent_codes(cfg.z_dim))
