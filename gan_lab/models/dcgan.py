"""DCGAN (Radford et al. 2016) with the infoGAN MNIST architecture the TF/PyTorch collections use
(nets.Generator / nets.Discriminator), Adam 2e-4 b1 0.5, batch 64, z = 62, the non-saturating loss."""

from gan_lab import losses, nets
from gan_lab.models.gan import build_gan
from gan_lab.registry import register


@register("dcgan", "DCGAN, infoGAN MNIST architecture (z=62), non-saturating loss, Adam 2e-4 b1=0.5",
          settings={"width": nets.WIDTH, "loss": losses.LOSS})
def build(cfg):
    return build_gan(cfg, conditional=False)
