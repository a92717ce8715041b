"""The original GAN objective (Goodfellow et al. 2014, eq. 1): D maximises log D(x) + log(1 - D(G(z)))
and G *minimises* log(1 - D(G(z))), the minimax game itself, on the collections' infoGAN backbone.

The paper notes that this G loss saturates early in training (D rejects G's samples easily and
log(1 - D(G(z))) has a vanishing gradient there) and proposes the non-saturating -log D(G(z)),
which is what the TF/PyTorch collections' "GAN" and gan_lab's `dcgan` train with. `gan` keeps the
minimax loss so the difference can be measured. Defaults as dcgan's: Adam 2e-4, b1 0.5, batch 64,
z = 62 (the collections' setting; the paper used SGD with momentum on MLPs).
"""

from gan_lab import nets
from gan_lab.models.gan import build_gan
from gan_lab.registry import register


@register("gan", "the original minimax GAN loss log(1 - D(G(z))) (Goodfellow 2014), DCGAN backbone",
          settings={"width": nets.WIDTH})
def build(cfg):
    return build_gan(cfg, conditional=False, loss="minimax")
