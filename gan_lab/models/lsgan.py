"""Least-squares GAN (Mao et al. 2017): D regresses real images to 1 and fakes to 0 with a squared
error on its raw output (no sigmoid), and G pulls its fakes' outputs towards 1:
    D: 0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2]      G: 0.5 E[(D(G(z)) - 1)^2]
(the paper's a = 0, b = c = 1 coding). The quadratic penalises fakes that D classifies correctly
but that lie far from the data, which is why it gives G gradients where the sigmoid saturates.
Backbone and Adam 2e-4 / b1 0.5 / batch 64 as dcgan (the collections' setting; the paper's LSUN nets
are larger).
"""

from gan_lab import nets
from gan_lab.models.gan import build_gan
from gan_lab.registry import register


@register("lsgan", "least-squares GAN (Mao 2017): squared error on D's raw output, no sigmoid; DCGAN backbone",
          settings={"width": nets.WIDTH})
def build(cfg):
    return build_gan(cfg, conditional=False, loss="lsgan")
