"""WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Algorithm 1).

WGAN's critic and losses (models/wgan.py) with the Lipschitz constraint enforced softly instead of by
clipping: lambda (||grad D(xhat)||_2 - 1)^2 at xhat = alpha x + (1 - alpha) G(z), alpha ~ U[0, 1) one
per real/fake pair (models/penalties.py).

Defaults are the paper's (Algorithm 1): lambda = 10, n_critic = 5, Adam lr 1e-4, b1 = 0, b2 = 0.9,
batch 64; z = 62, the infoGAN MNIST nets and 25 epochs as every gan_lab GAN. The critic has no
BatchNorm (the paper, sec. 4: the penalty is per sample, which batch normalisation breaks) and no
sigmoid. The TF/PyTorch "generative model collections" use Adam 2e-4, b1 0.5, b2 0.999 and lambda
0.25, keep BatchNorm in the critic and (PyTorch, in the version read) draw alpha per pixel and
penalise the gradient of D's sigmoid output; `--lr 2e-4 --b1 0.5 --b2 0.999
--gp-weight 0.25` gives their optimiser and weight.

    python -m gan_lab train --model wgan-gp --dataset mnist
"""

from __future__ import annotations

import optax

from gan_lab import nets
from gan_lab.models.adversarial import build_model
from gan_lab.models.penalties import GP_WEIGHT, N_CRITIC, gradient_penalty, interpolate_real_fake
from gan_lab.models.wgan import critic_parts
from gan_lab.registry import register


@register("wgan-gp", "WGAN with gradient penalty (lambda 10) on real-fake interpolates, critic without BN, "
          "5 critic updates, Adam 1e-4 b1=0 b2=0.9", settings={"width": nets.WIDTH, "n_critic": N_CRITIC,
                                                             "gp_weight": GP_WEIGHT},
          lr=1e-4, b1=0.0, b2=0.9, batch_size=64, z_dim=62, epochs=25)
def build(cfg):
    tx = optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2)
    return build_model(critic_parts(cfg, tx, penalty=gradient_penalty(interpolate_real_fake, cfg.gp_weight)))
