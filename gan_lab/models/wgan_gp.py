"""WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Algorithm 1).

WGAN's critic and losses (models/wgan.py) with the Lipschitz constraint enforced softly instead of by
clipping: lambda (||grad D(xhat)||_2 - 1)^2 at xhat = alpha x + (1 - alpha) G(z), alpha ~ U[0, 1) one
per real/fake pair (models/penalties.py).

Defaults are the paper's (Algorithm 1): lambda = 10, n_critic = 5, Adam lr 1e-4, b1 = 0, b2 = 0.9,
batch 64; z = 62, the infoGAN MNIST nets and 25 epochs as every gan_lab GAN. The critic has no
BatchNorm (the paper, sec. 4: the penalty is per sample, which batch normalisation breaks) and no
sigmoid. The "generative model collections" differ from the paper and from each other (read at
their newest commits, of 2018; an older PyTorch WGAN_GP.py had lambda 0.25, alpha per pixel and a
sigmoid, which this docstring used to cite):
- PyTorch's WGAN_GP.py: lambda 10, one alpha per sample, no sigmoid, n_critic 5, but BatchNorm kept in
  the critic and Adam 2e-4 (b1 0.5, b2 0.999) for both nets: `--lr 2e-4 --b1 0.5 --b2 0.999`.
- TF's WGAN_GP.py: lambda 0.25 on the logit, alpha per pixel, BatchNorm in the critic, one critic step
  per G step with G's learning rate 5x D's (Adam 2e-4, b1 0.5), and its slope norm sums the squared
  gradient over one image axis only (`reduction_indices=[1]` of a (B, 28, 28, 1) tensor).
Whether the paper's settings learn at the lab's budget is measured in issue 26.

    python -m gan_lab train wgan-gp --dataset mnist
"""

from __future__ import annotations

from gan_lab import nets
from gan_lab.models.adversarial import G_LR_SCALE, adam_pair, build_model
from gan_lab.models.penalties import GP_WEIGHT, N_CRITIC, gradient_penalty, interpolate_real_fake
from gan_lab.models.wgan import critic_parts
from gan_lab.registry import register


@register("wgan-gp", "WGAN with gradient penalty (lambda 10) on real-fake interpolates, critic without BN, "
          "5 critic updates, Adam 1e-4 b1=0 b2=0.9", settings={"width": nets.WIDTH, "n_critic": N_CRITIC,
                                                             "gp_weight": GP_WEIGHT, "g_lr_scale": G_LR_SCALE},
          lr=1e-4, b1=0.0, b2=0.9, batch_size=64, z_dim=62, epochs=25)
def build(cfg):
    return build_model(critic_parts(cfg, *adam_pair(cfg), penalty=gradient_penalty(interpolate_real_fake, cfg.gp_weight)))
