"""ACGAN (Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs").

G sees z and the one-hot label; D does not see the label but names the class of every image it sees
with an auxiliary classifier head (10 class logits) beside its real/fake logit. D is trained to get
both right on real and on generated images, G to make images D calls real *and* of the asked class:
  D: BCE(real/fake) + CE(class | real) + CE(class | fake)
  G: non-saturating BCE + CE(class | fake)
(the paper's L_S + L_C for D and L_C - L_S for G, with G's L_S in its non-saturating form). The
class CE on fakes belongs in D's loss too: it is the paper's L_C, and the PyTorch collection adds it.

The class terms weigh 0.1 by default (`--class-weight`; `--preset paper` gives the paper's 1). At
weight 1, in the study's CPU budget (1 epoch, width 0.5), acgan drew one or five digits on 2 of 3 MNIST
seeds (seed 0: FD 1420.3, 1 class): G is rewarded for whatever D's classifier reads as the asked digit,
and that reward can win over looking real. Measured on seed 0, 10,000 samples (`python
experiments/defaults_search.py --models acgan`): weight 0.1: MNIST FD 110.6, Fashion-MNIST 117.0 (149.7
at weight 1), every class; weight 0.3: 145.5 and 116.3. Seed 1 on MNIST at weight 0.1 (`gan_lab train
acgan --dataset mnist --width 0.5 --epochs 1 --seed 1`, then `gan_lab eval RUN_DIR`): FD 136.3, every
class, 78% of samples of the asked digit (the study's seed 1 at weight 1: 1117.6, 5 classes). The weight is not the collections' either:
both weigh the class terms 1 (the TF one through a separate optimiser, below).

Defaults: Adam 2e-4, b1 0.5 for both networks, batch 64, z = 62 (the collections' MNIST settings on
the infoGAN MNIST backbone, nets.Generator / nets.Discriminator; the paper's ImageNet/CIFAR nets are
another architecture). Fakes are drawn for the real batch's labels, as both collections do.
The class head is one linear layer on D's FC1024 features, as in the paper and the PyTorch
collection (znxlwm, ACGAN.py: `cl = Linear(1024, 10)`). The TF collection (hwalsuklee, ACGAN.py)
differs: its classifier is FC128-BN-LReLU-FC10, D's own loss is the BCE only, and the class CE on
real and fake trains D, the classifier and G through a third Adam at 1e-3 (G too runs at 1e-3).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from gan_lab import nets
from gan_lab.config import Setting, around
from gan_lab.data import NUM_CLASSES
from gan_lab.models.adversarial import GANParts, build_model
from gan_lab.models.gan import logit_losses
from gan_lab.registry import register


class AuxiliaryClassifierDiscriminator(nnx.Module):
    """images (B, 28, 28, 1) -> (real/fake logits (B,), class logits (B, 10))."""

    def __init__(self, width: float, rngs: nnx.Rngs):
        self.trunk = nets.Discriminator(1, width, rngs=rngs)
        self.classes = nets.dense(nets.channels(1024, width), NUM_CLASSES, rngs)

    def __call__(self, images, train: bool):
        logits, features = self.trunk(images, train, features=True)
        return logits, self.classes(features)


def class_cross_entropy(class_logits, labels):
    """Mean softmax cross-entropy against one-hot labels. Not optax's *_with_integer_labels: its
    gradient is a scatter-add, and with gan_lab's multi-output fusion flag (runtime.py) XLA:CPU
    (jaxlib 0.10.2) fuses the real and fake halves' scatters into one kernel and aborts the process
    while emitting it. The one-hot form has a dense gradient and the same value."""
    return jnp.mean(optax.softmax_cross_entropy(class_logits, jax.nn.one_hot(labels, NUM_CLASSES)))


CLASS_WEIGHT = Setting(0.1, "ACGAN: weight of the class cross-entropy terms in D's and G's losses (the paper: 1; "
                       "--preset paper)", minimum=0, search=around(10), absent=1.0)


def acgan_losses(class_weight: float):
    """(d_loss, g_loss) of GANParts on D's (logit, class logits) outputs, the class terms x class_weight."""
    adversarial_d_loss, adversarial_g_loss = logit_losses("bce")

    def d_loss(real_out, fake_out, batch, extra):
        (real_logits, real_classes), (fake_logits, fake_classes) = real_out, fake_out
        loss, metrics, extra = adversarial_d_loss(real_logits, fake_logits, batch, extra)
        class_real = class_cross_entropy(real_classes, batch.labels)
        class_fake = class_cross_entropy(fake_classes, batch.labels)  # fakes were asked for the batch's labels
        return loss + class_weight * (class_real + class_fake), {**metrics, "class_real": class_real,
                                                                 "class_fake": class_fake}, extra

    def g_loss(fake_out, batch, extra):
        fake_logits, fake_classes = fake_out
        loss, metrics = adversarial_g_loss(fake_logits, batch, extra)
        return loss + class_weight * class_cross_entropy(fake_classes, batch.labels), metrics

    return d_loss, g_loss


@register("acgan", "ACGAN: label one-hot into G; D unconditioned, with a 10-class head beside its logit",
          family="conditional GANs", settings={"width": nets.WIDTH, "class_weight": CLASS_WEIGHT},
          presets={"paper": {"class_weight": 1.0}})
def build(cfg):
    tx = optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2)
    d_loss, g_loss = acgan_losses(cfg.class_weight)
    return build_model(GANParts(
        make_g=lambda rngs: nets.Generator(cfg.z_dim + NUM_CLASSES, cfg.width, rngs=rngs),
        make_d=lambda rngs: AuxiliaryClassifierDiscriminator(cfg.width, rngs=rngs),
        latent_dim=cfg.z_dim, d_loss=d_loss, g_loss=g_loss, g_tx=tx, d_tx=tx, g_sees_labels=True,
    ))
