"""WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Algorithm 1).

WGAN's critic and losses (models/wgan.py) with the Lipschitz constraint enforced softly instead of by
clipping: lambda (||grad D(xhat)||_2 - 1)^2 at xhat = alpha x + (1 - alpha) G(z), alpha ~ U[0, 1) one
per real/fake pair (models/penalties.py).

Defaults: the paper's lambda = 10, with DCGAN's optimiser (Adam 2e-4, b1 0.5, b2 0.999) for both
nets, one critic update per G update, and LayerNorm in the critic (--critic-norm layer); batch 64,
z = 62, the infoGAN MNIST nets and 25 epochs as every gan_lab GAN. The paper's Algorithm 1 with its
MNIST critic (n_critic 5, Adam 1e-4, b1 0, b2 0.9, no normalisation) is `--preset paper`.
Measured at the study's CPU budget (1 epoch = 60,000 images, width 0.5, seed 0;
experiments/defaults_search.py, experiments/results/defaults_search.md; FD, x dcgan's): the paper's
settings reach FD 1309.1 on MNIST (5.3x, half the classes) and 588.2 on Fashion-MNIST (3.8x): five
critic updates leave 187 G updates in the epoch. Adam 2e-4 with 5 critic updates (the PyTorch
collection's): 1208.1, 535.9. One critic update with G at 5x (the TF collection's schedule): 779.3,
445.5, and its critic falls behind (its loss turns positive: the fakes score above the reals). One
critic update, D at 4x G's rate (TTUR's direction): 678.1, 364.4. One critic update, one rate: 536.8
(2.2x, every class) and 389.8 (2.5x, 8 of 10 classes). The same with LayerNorm in the critic, the
drop-in for BatchNorm that the paper recommends (sec. 4): 314.3 and 198.3 (1.26x and 1.29x, every
class on both), recognisable digits and garments: these defaults. (WGAN's critic learned once it had
its BatchNorm back, models/wgan.py; the penalty rules BatchNorm out here.)

The critic has no BatchNorm (the paper, sec. 4: the penalty is per sample, which batch normalisation
breaks; LayerNorm normalises each image alone, so the penalty stays per sample) and no sigmoid. The "generative model collections" differ from the paper and from each other (read at
their newest commits, of 2018; an older PyTorch WGAN_GP.py had lambda 0.25, alpha per pixel and a
sigmoid, which this docstring used to cite):
- PyTorch's WGAN_GP.py: lambda 10, one alpha per sample, no sigmoid, n_critic 5, but BatchNorm kept in
  the critic and Adam 2e-4 (b1 0.5, b2 0.999) for both nets: `--lr 2e-4 --b1 0.5 --b2 0.999`.
- TF's WGAN_GP.py: lambda 0.25 on the logit, alpha per pixel, BatchNorm in the critic, one critic step
  per G step with G's learning rate 5x D's (Adam 2e-4, b1 0.5), and its slope norm sums the squared
  gradient over one image axis only (`reduction_indices=[1]` of a (B, 28, 28, 1) tensor).

    python -m gan_lab train wgan-gp --dataset mnist
"""

from __future__ import annotations

from gan_lab import nets
from gan_lab.config import Setting, one_of
from gan_lab.models.adversarial import G_LR_SCALE, adam_pair, build_model
from gan_lab.models.penalties import GP_WEIGHT, N_CRITIC, gradient_penalty, interpolate_real_fake
from gan_lab.models.wgan import critic_parts
from gan_lab.registry import register


CRITIC_NORM = Setting("layer", "WGAN-GP: the critic's normalisation: layer (LayerNorm, the paper's recommended "
                      "drop-in for BatchNorm, which the penalty rules out) or none (the paper's MNIST critic)",
                      choices=("none", "layer"), search=one_of("none", "layer"),
                      absent="none")  # runs saved before this setting had critics without normalisation


@register("wgan-gp", "WGAN with gradient penalty (lambda 10) on real-fake interpolates, LayerNorm critic, "
          "1 critic update, Adam 2e-4", settings={"width": nets.WIDTH, "n_critic": N_CRITIC,
                                                 "gp_weight": GP_WEIGHT, "g_lr_scale": G_LR_SCALE,
                                                 "critic_norm": CRITIC_NORM},
          presets={"paper": {"n_critic": 5, "lr": 1e-4, "b1": 0.0, "b2": 0.9, "critic_norm": "none"}},
          n_critic=1, lr=2e-4, b1=0.5, b2=0.999, batch_size=64, z_dim=62, epochs=25)
def build(cfg):
    return build_model(critic_parts(cfg, *adam_pair(cfg), penalty=gradient_penalty(interpolate_real_fake, cfg.gp_weight)))
