"""DCGAN with the infoGAN MNIST architecture (nets.Generator / nets.Discriminator)."""

from gan_lab.models.gan import build_gan
from gan_lab.registry import register


@register("dcgan", "DCGAN, infoGAN MNIST architecture (z=62), non-saturating loss, Adam 2e-4 b1=0.5",
          ignores=("arch", "hidden"))  # the VAE-only settings
def build(cfg):
    return build_gan(cfg, conditional=False)
