"""Conditional GAN (Mirza & Osindero 2014) on the DCGAN backbone.

G sees z concatenated with the one-hot label; D sees the label as 10 constant channels beside
the image, as in the TF/PyTorch collections.
"""

from gan_lab import losses, nets
from gan_lab.models.gan import build_gan
from gan_lab.registry import register


@register("cgan", "conditional GAN: label one-hot into G's input and as 10 channels into D; DCGAN backbone",
          family="conditional GANs", settings={"width": nets.WIDTH, "loss": losses.LOSS})
def build(cfg):
    return build_gan(cfg, conditional=True)
